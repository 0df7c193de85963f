"""Feature-quality probes: does an encoder separate actions from background *within* a video?

Modules, one concept each: :mod:`.spec` (what every probe of a comparison shares, built once
from the params), :mod:`.clip_labels` (the ground-truth rule for a clip), :mod:`.inputs` (feature
arrays checked against the clips table, split for the probes), :mod:`.probes` (linear probes and
their metrics), :mod:`.bootstrap` (intervals over videos, paired differences, the minimum number
of videos for a verdict), :mod:`.evaluate` (one encoder; two encoders compared), :mod:`.verdict`
(trained - initial in one word; the warning when training hurt), :mod:`.plots` (ROC rows,
timeline PNG) and :mod:`.stage` (what stage ``evaluate`` runs: files in, files out; imported by
the stage, not here).
"""

from tsp_pretrain.evaluation.bootstrap import (
    MIN_VIDEOS_FOR_VERDICT,
    Interval,
    align_per_video,
    bootstrap_mean,
    difference_sign,
    paired_bootstrap,
    paired_bootstrap_tables,
    too_few_videos,
)
from tsp_pretrain.evaluation.clip_labels import clip_rule, label_clips
from tsp_pretrain.evaluation.errors import EvaluationError
from tsp_pretrain.evaluation.evaluate import (
    EncoderEvaluation,
    compare_encoders,
    evaluate_encoder,
    separability_differences,
)
from tsp_pretrain.evaluation.inputs import EncoderFolders
from tsp_pretrain.evaluation.plots import plot_timelines, roc_table
from tsp_pretrain.evaluation.spec import EvaluationSpec
from tsp_pretrain.evaluation.verdict import Difference, describe, log_differences

__all__ = [
    "MIN_VIDEOS_FOR_VERDICT",
    "Difference",
    "EncoderEvaluation",
    "EncoderFolders",
    "EvaluationError",
    "EvaluationSpec",
    "Interval",
    "align_per_video",
    "bootstrap_mean",
    "clip_rule",
    "compare_encoders",
    "describe",
    "difference_sign",
    "evaluate_encoder",
    "label_clips",
    "log_differences",
    "paired_bootstrap",
    "paired_bootstrap_tables",
    "plot_timelines",
    "roc_table",
    "separability_differences",
    "too_few_videos",
]
