"""Make a stage import the ``tsp_pretrain`` of its own checkout, whatever is installed.

``pip install -e .`` points the package at the workspace it was installed from. DVC runs queued
and temporary experiments (``dvc exp run --queue``, ``--temp``) in a *copy* of the repository,
where a plain import would load the workspace's library, not the copy's: edit the code while
the queue runs and the experiments would run code other than the code their ``dvc.lock``
records. Every stage script imports this module first; it puts the checkout's root at the front
of ``sys.path``.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[1])
if sys.path[:1] != [ROOT]:
    sys.path.insert(0, ROOT)
