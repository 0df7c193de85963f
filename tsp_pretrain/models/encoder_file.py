"""Encoder files: a video encoder without heads, as extraction, the GVF and fine-tuning read it.

The state dict sits under ``"model"`` with torchvision's own key names, beside the backbone
name, the feature size, what the file records of its making (``info``) and the crop it was
trained at (:mod:`tsp_pretrain.models.crop`). ``init_encoder``, ``pretrain`` and ``train`` write
them; a file is also a valid ``encoder.weights`` path for another experiment.
"""

from __future__ import annotations

from pathlib import Path

import torch

from tsp_pretrain.atomic import atomic_path
from tsp_pretrain.models.crop import CROP_KEY


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
    with atomic_path(path) as tmp:
        torch.save(
            {
                "backbone": backbone_name,
                "feature_dim": feature_dim,
                "model": backbone.state_dict(),
                "info": info,
                CROP_KEY: crop_size,
            },
            tmp,
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
