"""The built-in synthetic dataset: a small, honest test of temporal sensitivity.

Real datasets cannot be downloaded here, so the demo provides untrimmed videos in which the same
actor in the same scene either performs one of five class-specific periodic motions (foreground) or
moves randomly (background) -- as fast and as far as in that video's actions, so that neither
appearance nor the amount of motion tells the two apart; only the motion's structure does, which is
the property TSP pretraining is meant to capture and TAC pretraining is not.

Modules: :mod:`.motions` (trajectories), :mod:`.render` (drawing), :mod:`.plan` (what each video
contains), :mod:`.writer` (mp4 and ActivityNet JSON), :mod:`.dataset` (the whole dataset on disk).
"""

from .dataset import ANNOTATION_FILE, DemoSummary, SubsetSummary, make_demo_dataset
from .motions import CLASSES

__all__ = ["ANNOTATION_FILE", "CLASSES", "DemoSummary", "SubsetSummary", "make_demo_dataset"]
