"""Comparing runs across git revisions and DVC experiments (what `dvc metrics diff` cannot do).

`dvc metrics diff` shows the change of each metric; whether a change is more than noise needs
both runs' per-video results, paired by video, and a study over several runs needs them side
by side::

    python -m tsp_pretrain.experiments verdict                         # did TSP help? (workspace)
    python -m tsp_pretrain.experiments verdict tac                     # ... in experiment tac
    python -m tsp_pretrain.experiments compare tsp tac                 # within-video AUC
    python -m tsp_pretrain.experiments compare tsp tac --metric average_map
    python -m tsp_pretrain.experiments table HEAD tac tsp-seed1 ...
    python -m tsp_pretrain.experiments sweep clip_len --plot docs/figures/clip_len.png

``verdict`` reads one run's trained - initial differences and training health and answers in
one line; ``compare`` puts two runs against each other. Neither calls a difference above or below
zero with fewer than MIN_VIDEOS_FOR_VERDICT validation videos (docs/evaluation.md).

Modules: :mod:`.revisions` (names -> revisions, their files), :mod:`.compare` (paired
bootstrap, tables), :mod:`.verdict` (did fine-tuning help?), :mod:`.sweep` (a one-key sweep's
table and figure), ``__main__`` (the command).
"""

from tsp_pretrain.experiments.compare import (
    METRICS,
    WITHIN_VIDEO_AUC_DRAWS,
    compare,
    default_draws,
    format_comparison,
    read_per_video,
    summary_table,
)
from tsp_pretrain.experiments.revisions import resolve_revision
from tsp_pretrain.experiments.sweep import collect, plot_sweep, sweep_table
from tsp_pretrain.experiments.verdict import format_verdict, run_verdict

__all__ = [
    "METRICS",
    "WITHIN_VIDEO_AUC_DRAWS",
    "collect",
    "compare",
    "default_draws",
    "format_comparison",
    "format_verdict",
    "plot_sweep",
    "read_per_video",
    "resolve_revision",
    "run_verdict",
    "summary_table",
    "sweep_table",
]
