"""Feature-quality probes: does an encoder separate actions from background *within* a video?

Modules, one concept each: :mod:`.clip_labels` (the ground-truth rule for a clip),
:mod:`.inputs` (feature arrays checked against the clips table), :mod:`.probes` (linear probes and
their metrics), :mod:`.bootstrap` (intervals over videos, paired differences), :mod:`.evaluate`
(one encoder; two encoders compared) and :mod:`.plots` (ROC rows, timeline PNG).
"""

from tsp_pretrain.evaluation.bootstrap import (
    Interval,
    align_per_video,
    bootstrap_mean,
    paired_bootstrap,
    paired_bootstrap_tables,
)
from tsp_pretrain.evaluation.clip_labels import clip_rule, label_clips
from tsp_pretrain.evaluation.errors import EvaluationError
from tsp_pretrain.evaluation.evaluate import EncoderEvaluation, compare_encoders, evaluate_encoder
from tsp_pretrain.evaluation.plots import plot_timelines, roc_table

__all__ = [
    "EncoderEvaluation",
    "EvaluationError",
    "Interval",
    "align_per_video",
    "bootstrap_mean",
    "clip_rule",
    "compare_encoders",
    "evaluate_encoder",
    "label_clips",
    "paired_bootstrap",
    "paired_bootstrap_tables",
    "plot_timelines",
    "roc_table",
]
