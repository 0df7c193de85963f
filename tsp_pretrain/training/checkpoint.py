"""Epoch checkpoints that make an interrupted training run resumable.

A checkpoint holds model, optimizer, scheduler and AMP-scaler state, the last finished epoch and
a *fingerprint* of everything the run depends on (its params, the initial encoder and the
annotations). A checkpoint whose fingerprint differs belongs to another run and is never resumed
(it is reported and replaced). Encoders for extraction are saved without heads, with the
backbone name and feature size, so they load without the training code's params.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import torch

from tsp_pretrain.atomic import atomic_path, write_text
from tsp_pretrain.models.crop import CROP_KEY

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


def save_encoder(
    path: str | Path,
    backbone: torch.nn.Module,
    *,
    backbone_name: str,
    feature_dim: int,
    info: dict,
    crop_size: int | None = None,
) -> None:
    """The encoder alone (no heads): what extraction and the GVF need.

    The state dict sits under ``"model"`` with torchvision's own key names, so the file is also a
    valid ``encoder.weights`` path for another experiment. ``crop_size`` is the crop the encoder
    was trained at (None: unknown), which :mod:`tsp_pretrain.models.crop` checks clips against.
    """
    save_atomic(
        {
            "backbone": backbone_name,
            "feature_dim": feature_dim,
            "model": backbone.state_dict(),
            "info": info,
            CROP_KEY: crop_size,
        },
        path,
    )


def load_encoder_file(path: str | Path) -> dict:
    """Read a file written by :func:`save_encoder`; errors name the file and the fix."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: encoder file missing; run `dvc repro` to produce it")
    state = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(state, dict) or "model" not in state or "backbone" not in state:
        raise ValueError(f"{path}: not an encoder file written by this project (save_encoder)")
    return state
