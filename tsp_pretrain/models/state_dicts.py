"""Weights as state dicts: torchvision's hub cache, checkpoint files, the backbone's own tensors.

The machine that trains may have no internet, so torchvision weights are looked up in the torch
hub cache first and a failed download becomes an error naming the exact file to place and where.
Checkpoints come in three layouts (a bare torchvision state dict, this project's training
checkpoint with the backbone under ``backbone.``, the official TSP release with ``features.`` or
``module.features.``); instead of filtering keys by substring, :func:`select_backbone_state`
finds the one prefix under which *all* of the backbone's own keys are present and keeps exactly
those. The TSP releases (:mod:`.releases`) build on this module (cache folder, errors, checkpoint
reader); which source a value of ``encoder.weights`` names is decided in :mod:`.weights`.
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
