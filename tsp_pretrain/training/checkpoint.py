"""Epoch checkpoints that make an interrupted training run resumable.

A checkpoint holds model, optimizer, scheduler and AMP-scaler state, the last finished epoch and
a *fingerprint* of everything the run depends on (its params, the initial encoder and the
annotations). A checkpoint whose fingerprint differs belongs to another run and is never resumed
(it is reported and replaced). The trained encoder itself is an encoder file
(:mod:`tsp_pretrain.models.encoder_file`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import torch

from tsp_pretrain.atomic import atomic_path, write_text

log = logging.getLogger(__name__)


def fingerprint(**parts: Any) -> str:
    """A stable hash of JSON-serialisable parts (params dicts, file digests)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def save_atomic(obj: Any, path: str | Path) -> None:
    """torch.save through :func:`~tsp_pretrain.atomic.atomic_path`: never half a checkpoint."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def forget_logged_steps(live_dir: str | Path, first_step: int) -> None:
    """Drop the dvclive rows of steps >= ``first_step`` (the epochs a resumed run does again).

    dvclive appends each metric's row as soon as it is logged, before the epoch's checkpoint is
    written. A run killed between the two has logged an epoch its checkpoint does not hold; the
    resumed run logs that epoch again, and without this the plots would hold the step twice.
    """
    for path in sorted((Path(live_dir) / "plots").rglob("*.tsv")):
        header, *rows = path.read_text().splitlines(keepends=True)
        step = header.rstrip("\n").split("\t").index("step")
        kept = [row for row in rows if int(row.split("\t")[step]) < first_step]
        if len(kept) < len(rows):
            write_text(path, "".join([header, *kept]))


def load_resumable(path: str | Path, expected_fingerprint: str) -> dict | None:
    """The checkpoint at ``path`` if it belongs to this run, else ``None`` (logged)."""
    path = Path(path)
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("fingerprint") != expected_fingerprint:
        log.warning("%s belongs to another run (params or inputs changed): starting afresh", path)
        return None
    log.info("resuming from %s (epoch %d finished)", path, state["epoch"])
    return state
