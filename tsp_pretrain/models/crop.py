"""The crop size an encoder was trained at, and the check that clips are cut at that size.

A video encoder's features are only meaningful at the spatial scale it learnt: a Kinetics
R(2+1)D fed 32 x 32 crops instead of its 112 x 112 runs without any error and returns features
that are wrong, at full cost. The crop an encoder expects is therefore recorded with it (in
every encoder file this project writes) and checked against ``transform.crop_size`` wherever
clips are cut for it (training and extraction).

Known crops: torchvision's Kinetics weights carry theirs in their transforms (112 for the
ResNets, 224 for S3D, MViT and Swin), the official TSP releases were all trained on 112 x 112
crops of 128 x 171 frames, and this project's encoder files record the crop they were trained
at. An arbitrary checkpoint file has no known crop and is not checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torchvision

from tsp_pretrain.models.registry import get_backbone
from tsp_pretrain.models.releases import is_release_name
from tsp_pretrain.models.state_dicts import WeightsError, load_checkpoint

#: The crop of every official TSP release (the official training and extraction scripts).
RELEASE_CROP = 112

#: Where an encoder file written by this project keeps its crop (``save_encoder``).
CROP_KEY = "crop_size"


class CropMismatchError(ValueError):
    """``transform.crop_size`` differs from the crop the encoder was trained at."""


def torchvision_crop(backbone: str, weights_name: str) -> int | None:
    """The crop of torchvision's ``weights_name`` for ``backbone`` (its evaluation transform)."""
    spec = get_backbone(backbone)
    if spec.torchvision_name is None:
        return None
    try:
        weights = torchvision.models.get_model_weights(spec.torchvision_name)[weights_name]
    except KeyError:
        return None
    crop = getattr(weights.transforms(), "crop_size", None)
    return int(crop[0]) if crop else None


def file_crop(path: str | Path) -> int | None:
    """The crop recorded in an encoder file this project wrote; None for any other file.

    Read as the weights loader reads checkpoints (:func:`~tsp_pretrain.models.state_dicts.
    load_checkpoint`: nothing in the file is executed); a file it cannot read has no known crop
    (the loader itself reports it when the weights are loaded).
    """
    try:
        state = load_checkpoint(path)
    except WeightsError:
        return None
    if isinstance(state, Mapping) and isinstance(state.get(CROP_KEY), int):
        return state[CROP_KEY]
    return None


def weights_crop(backbone: str, weights: str) -> int | None:
    """The crop the encoder named by ``encoder.weights`` was trained at, when it is known."""
    if weights == "none":
        return None
    if is_release_name(weights):
        return RELEASE_CROP
    if Path(weights).is_file():
        return file_crop(weights)
    return torchvision_crop(backbone, weights)


def check_crop(encoder_crop: int | None, crop_size: int, encoder: str, enabled: bool) -> None:
    """Refuse clips cut at another size than the encoder's, unless ``encoder.crop_check`` is off.

    ``encoder`` names the encoder for the message (a file or an ``encoder.weights`` value).
    """
    if encoder_crop is None or encoder_crop == crop_size or not enabled:
        return
    raise CropMismatchError(
        f"{encoder} was trained on {encoder_crop} x {encoder_crop} crops, but "
        f"transform.crop_size is {crop_size}: its features would be computed at the wrong scale. "
        f"Set transform.crop_size: {encoder_crop} (with frames to crop it from: the recipe's "
        f"decode.frame_size: [128, 171] and decode.method: official for 112; presets/"
        f"own-videos.yaml has them), or set encoder.crop_check: false to use {crop_size} on "
        "purpose."
    )
