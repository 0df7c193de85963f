"""The one vocabulary of clip regions and of the action label that background carries.

A segment (``segments.csv``) or a clip is in the foreground (inside an annotated action) or the
background. Every module that names a region or the background's label uses these names: the
annotation parsers writing the tables, clip sampling, the TSP losses, evaluation and the
localization read-out. A module of its own, with no imports, so that reading the vocabulary
costs no stage a dependency on the annotation parsers.
"""

FOREGROUND, BACKGROUND = "foreground", "background"
REGIONS = (BACKGROUND, FOREGROUND)  # the region head's classes, in target order: 0, 1

# label_id of background segments and clips: no action class (the action loss ignores it).
BACKGROUND_LABEL_ID = -1
