"""Initialising an encoder from ``encoder.weights``: torchvision weights, a TSP release, a file, or
random.

This module decides what a value of ``encoder.weights`` names (:func:`load_encoder_weights`) and
records where the weights came from (:func:`describe_weights`). The sources themselves live
below it: torchvision's hub cache and checkpoint files in :mod:`.state_dicts` (which also picks
the backbone's own tensors out of any of the accepted checkpoint layouts: a bare state dict, a
dict with a ``model`` state dict, this project's encoder files, the official TSP training
checkpoints with ``features.*`` keys), the official TSP releases (``tsp:<backbone>-<release>``,
cached and reported like torchvision's weights) in :mod:`.releases`. Imports run one way:
``weights`` -> ``releases`` -> ``state_dicts``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from torch import nn

from tsp_pretrain.digest import tracked_file_digest
from tsp_pretrain.models.registry import BackboneSpec
from tsp_pretrain.models.releases import is_release_name, release_sha256, release_state_dict
from tsp_pretrain.models.state_dicts import (
    WeightsError,
    read_checkpoint,
    select_backbone_state,
    torchvision_state_dict,
    weight_names,
)

log = logging.getLogger(__name__)


def _looks_like_path(weights: str) -> bool:
    return "/" in weights or Path(weights).suffix in (".pt", ".pth", ".ckpt", ".tar")


def describe_weights(weights: str, tracked_dir: str | Path) -> dict[str, str]:
    """Where ``weights`` (a value of ``encoder.weights``, already loaded) came from.

    Recorded in the initial encoder file and, from there, in the feature folder's metadata, so
    features say which encoder made them. A checkpoint file gets its content digest (with a
    warning when it lies outside ``tracked_dir``, the folder stage ``init_encoder`` depends on).
    """
    if weights == "none":
        return {"weights": weights, "kind": "random initialisation"}
    path = Path(weights)
    if not path.is_file():
        if is_release_name(weights):
            kind, sha256 = "released TSP checkpoint", release_sha256(weights)
            return {"weights": weights, "kind": kind, "sha256": sha256}
        return {"weights": weights, "kind": "torchvision weights"}
    digest = tracked_file_digest(path, tracked_dir, "encoder.weights")
    return {"weights": weights, "kind": "checkpoint file", "digest": digest}


def load_encoder_weights(model: nn.Module, spec: BackboneSpec, weights: str) -> None:
    """Initialise ``model`` (``spec``'s network, classifier already removed) from ``weights``.

    ``weights`` is ``"none"`` (keep the random initialisation), a torchvision weight name such as
    ``"KINETICS400_V1"``, an official TSP release name such as
    ``"tsp:r2plus1d_34-tsp_on_activitynet"``, or a path to a checkpoint file. Anything else is an
    error: a string that names none of these is not silently ignored.
    """
    if weights == "none":
        log.info("%s: random initialisation (weights: none)", spec.name)
        return
    if is_release_name(weights):
        state = release_state_dict(weights, spec.name)
        source = weights
    elif weights in weight_names(spec) or (weights == "DEFAULT" and spec.torchvision_name):
        state = torchvision_state_dict(spec, weights)
        source = f"torchvision {spec.name} {weights}"
    elif Path(weights).is_file():
        state = read_checkpoint(weights)
        source = str(weights)
    elif _looks_like_path(weights):
        raise WeightsError(
            f"{weights}: no such checkpoint file (encoder.weights). A file in models/weights/ "
            "named after a pretraining run is written by stage pretrain@<run> (pretrain.runs); "
            "your own checkpoint: copy it there and `dvc add` it"
        )
    else:
        names = weight_names(spec)
        raise WeightsError(
            f"{spec.name}: weights {weights!r} is neither 'none', a torchvision weight name "
            f"({', '.join(names) or 'none published for this backbone'}), a TSP release name "
            f"(tsp:<backbone>-<release>) nor an existing checkpoint file"
        )
    model.load_state_dict(select_backbone_state(state, model, source))
    log.info("%s: initialised from %s", spec.name, source)
