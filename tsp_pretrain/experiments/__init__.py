"""Comparing runs across git revisions and DVC experiments (what `dvc metrics diff` cannot do).

`dvc metrics diff` shows the change of each metric; whether a change is more than noise needs
both runs' per-video results, paired by video, and a study over several runs needs them side
by side::

    python -m tsp_pretrain.experiments compare tsp tac                 # within-video AUC
    python -m tsp_pretrain.experiments compare tsp tac --metric average_map
    python -m tsp_pretrain.experiments table HEAD tac tsp-seed1 ...
    python -m tsp_pretrain.experiments sweep clip_len --plot docs/figures/clip_len.png

Modules: :mod:`.revisions` (names -> revisions, their files), :mod:`.compare` (paired
bootstrap, tables), :mod:`.sweep` (a one-key sweep's table and figure), ``__main__`` (the
command).
"""

from tsp_pretrain.experiments.compare import METRICS, compare, read_per_video, summary_table
from tsp_pretrain.experiments.revisions import resolve_revision
from tsp_pretrain.experiments.sweep import collect, plot_sweep, sweep_table

__all__ = [
    "METRICS",
    "collect",
    "compare",
    "plot_sweep",
    "read_per_video",
    "resolve_revision",
    "summary_table",
    "sweep_table",
]
