"""Initialising an encoder: torchvision weights, a checkpoint file, or random.

The machine that trains may have no internet, so torchvision weights are looked up in the torch
hub cache first and a failed download becomes an error naming the exact file to place and where.
Checkpoints come in three layouts (a bare torchvision state dict, this project's training
checkpoint with the backbone under ``backbone.``, the official TSP release with ``features.`` or
``module.features.``); instead of filtering keys by substring, the loader finds the one prefix
under which *all* of the backbone's own keys are present and keeps exactly those. The official
TSP releases are also reachable by name (``tsp:<backbone>-<release>``, see
:mod:`tsp_pretrain.models.releases`), cached and reported like torchvision's weights.
"""

from __future__ import annotations

import argparse
import logging
import re
from collections.abc import Mapping
from pathlib import Path

import torch
import torchvision
from torch import nn

from tsp_pretrain.digest import tracked_file_digest
from tsp_pretrain.models.registry import BackboneSpec

log = logging.getLogger(__name__)

#: Prefixes a checkpoint may put in front of the backbone's own parameter names, tried in order.
CHECKPOINT_PREFIXES = (
    "",
    "backbone.",
    "module.backbone.",
    "features.",
    "module.features.",
    "module.",
)

# Buffers that torch itself fills in when absent (BatchNorm's batch counter, unused with the
# default momentum); old checkpoints lack them, so their absence is not an error.
_OPTIONAL_SUFFIXES = ("num_batches_tracked",)


class WeightsError(RuntimeError):
    """Weights that cannot be found or do not fit; the message names the file and the fix."""


def hub_checkpoint_dir() -> Path:
    """Where torchvision caches downloaded weights: ``$TORCH_HOME/hub/checkpoints``."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def not_cached_error(what: str, file_name: str, url: str, err: BaseException) -> WeightsError:
    """The error for weights that are neither in the hub cache nor downloadable (e.g. offline).

    It names the exact file to place and the folder, the one fix on a machine without network;
    torchvision weights and TSP releases share this message.
    """
    folder = hub_checkpoint_dir()
    return WeightsError(
        f"{what} not cached and could not be downloaded ({type(err).__name__}: {err}). "
        f"Place the file {file_name} (from {url}) in {folder} (that is "
        f"$TORCH_HOME/hub/checkpoints; set TORCH_HOME to use another folder)."
    )


def cached_file_error(cached: Path, what: str, url: str, err: BaseException) -> WeightsError:
    """The error for a cached weights file that does not load (truncated, corrupt, replaced)."""
    return WeightsError(
        f"{cached}: cannot load {what} ({err}); replace the file with a fresh copy of {url}"
    )


def weight_names(spec: BackboneSpec) -> list[str]:
    """The torchvision weight names available for ``spec`` (empty when there are none)."""
    if spec.torchvision_name is None:
        return []
    return [w.name for w in torchvision.models.get_model_weights(spec.torchvision_name)]


def torchvision_state_dict(spec: BackboneSpec, weights_name: str) -> dict[str, torch.Tensor]:
    """The state dict of torchvision's ``weights_name`` for ``spec``, from the cache if present.

    Only when the file is not cached is a download attempted; its failure raises
    :class:`WeightsError` naming the file and the folder to place it in.
    """
    names = weight_names(spec)
    if spec.torchvision_name is None or weights_name not in [*names, "DEFAULT"]:
        raise WeightsError(
            f"{spec.name}: no torchvision weights named {weights_name!r} "
            f"(available: {', '.join(names) or 'none'})"
        )
    weights = torchvision.models.get_model_weights(spec.torchvision_name)[weights_name]
    file_name = Path(weights.url).name
    cached = hub_checkpoint_dir() / file_name
    if cached.is_file():
        log.info("%s: loading %s from %s", spec.name, weights, cached)
    else:
        log.info(
            "%s: %s not cached at %s; trying to download %s",
            spec.name,
            weights,
            cached,
            weights.url,
        )
    try:
        return weights.get_state_dict(
            progress=False, check_hash=True, map_location="cpu", weights_only=True
        )
    except Exception as err:  # urllib, socket, SSL, hash and unpickling errors alike
        if cached.is_file():
            raise cached_file_error(cached, str(weights), weights.url, err) from err
        what = f"{spec.name}: torchvision weights {weights} are"
        raise not_cached_error(what, file_name, weights.url, err) from err


# How torch's weights-only unpickler names a class it refuses ("Unsupported global: GLOBAL x.Y").
_REFUSED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def load_checkpoint(path: str | Path) -> object:
    """What a checkpoint file holds, loaded with ``weights_only=True`` (no arbitrary code from
    pickles); errors are :class:`WeightsError` naming the file.

    ``argparse.Namespace`` is allowed because the official TSP training checkpoints store their
    arguments that way: it is rebuilt as a plain Namespace of its stored values (nothing is
    called). Any other class in the file is refused, and the error names it.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such checkpoint file")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        refused = _REFUSED_GLOBAL.search(str(err))
        if refused:
            raise WeightsError(
                f"{path}: holds an object of class {refused.group(1)}, which loading with "
                f"weights_only=True refuses (only tensors, plain Python values and "
                f"argparse.Namespace are read; nothing in a checkpoint is executed). Re-save the "
                f"checkpoint without it, e.g. with that entry converted to plain values."
            ) from err
        raise WeightsError(f"{path}: not a loadable torch checkpoint ({err})") from err
    return obj


def read_checkpoint(path: str | Path) -> Mapping[str, torch.Tensor]:
    """The state dict stored in ``path``: either the file itself or its ``"model"`` entry
    (:func:`load_checkpoint`; every other entry is ignored)."""
    obj = load_checkpoint(path)
    if isinstance(obj, Mapping) and isinstance(obj.get("model"), Mapping):
        obj = obj["model"]
    if not isinstance(obj, Mapping) or not any(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(
            f"{path}: expected a state dict or a dict with a 'model' state dict, "
            f"got {type(obj).__name__}"
        )
    return obj


def select_backbone_state(
    state: Mapping[str, torch.Tensor], model: nn.Module, source: str
) -> dict[str, torch.Tensor]:
    """Exactly ``model``'s own entries of ``state``, found under one of :data:`CHECKPOINT_PREFIXES`.

    The prefix chosen is the first under which every required key of ``model`` is present; all
    other entries (classifiers, TSP heads, optimiser leftovers) are dropped and logged. Raises
    :class:`WeightsError` naming ``source`` and the first missing keys, or the first shape mismatch.
    """
    own = model.state_dict()
    required = {k for k in own if not k.endswith(_OPTIONAL_SUFFIXES)}
    best_prefix, best_found = "", -1
    for prefix in CHECKPOINT_PREFIXES:
        found = sum(1 for k in required if prefix + k in state)
        if found > best_found:
            best_prefix, best_found = prefix, found
        if found == len(required):
            break
    missing = sorted(k for k in required if best_prefix + k not in state)
    if missing:
        raise WeightsError(
            f"{source}: {len(missing)} of the backbone's {len(required)} keys are missing "
            f"(best prefix tried: {best_prefix!r}); first missing: {missing[:5]}"
        )
    selected = {k: state[best_prefix + k] for k in own if best_prefix + k in state}
    mismatched = [
        f"{best_prefix}{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in selected.items()
        if v.shape != own[k].shape
    ]
    if mismatched:
        raise WeightsError(
            f"{source}: {len(mismatched)} backbone tensors have the wrong shape (a checkpoint "
            f"of another backbone?); first: {mismatched[:3]}"
        )
    used = {best_prefix + k for k in selected}
    dropped = [k for k in state if k not in used]
    if dropped:
        log.info(
            "%s: kept %d backbone tensors under prefix %r, dropped %d: %s",
            source,
            len(selected),
            best_prefix,
            len(dropped),
            ", ".join(dropped),
        )
    return selected


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
        # releases imports this module
        from tsp_pretrain.models.releases import is_release_name, release_sha256

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
    # Deferred: releases builds on this module (cache folder, errors, checkpoint reader).
    from tsp_pretrain.models.releases import is_release_name, release_state_dict

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
