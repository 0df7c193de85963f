"""Make a stage import the ``tsp_pretrain`` of its own checkout, whatever is installed.

``pip install -e .`` points the package at the workspace it was installed from. DVC runs queued
and temporary experiments (``dvc exp run --queue``, ``--temp``) in a *copy* of the repository,
where a plain import would load the workspace's library, not the copy's: edit the code while
the queue runs and the experiments would run code other than the code their ``dvc.lock``
records. Every stage script imports this module first; it puts the checkout's root at the front
of ``sys.path``.

It then pins the CPU numerics (:mod:`tsp_pretrain.numerics`) before any stage imports numpy or
torch: the libraries read those settings when they first compute, and the committed results are
the same bytes on every x86-64 machine only with them.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[1])
if sys.path[:1] != [ROOT]:
    sys.path.insert(0, ROOT)

from tsp_pretrain.numerics import pin  # noqa: E402  (after the path, before numpy/torch)

pin()
