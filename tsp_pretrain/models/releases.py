"""The 13 official TSP checkpoints, usable by name as ``encoder.weights``.

Names are ``tsp:<backbone>-<release>``, i.e. ``tsp:`` followed by the key of ``MODEL_URLS`` in the
official ``extract_features/extract_features.py`` (HumamAlwassel/TSP), for example
``tsp:r2plus1d_34-tsp_on_activitynet``. The ``tsp:`` prefix keeps them apart from torchvision
weight names and file paths. ``tac_on_kinetics`` is the Kinetics-trained starting point of the
recipe (for r2plus1d_34: IG-65M pretraining fine-tuned on Kinetics); the others are TSP or TAC
fine-tuned on ActivityNet v1.3 or THUMOS14 (``avg_gvf`` / ``no_gvf``: the paper's GVF ablations).

Loading works like torchvision's weights (``weights.torchvision_state_dict``): the file is looked
up in ``$TORCH_HOME/hub/checkpoints/`` under its release file name; only when it is absent is it
downloaded, once, with the SHA-256 prefix in its name checked (as torch.hub does), through an
atomic write so that a failed or wrong download leaves nothing in the cache. A download that fails
(no network) is a :class:`WeightsError` naming the file to place and the folder.

A release is a training checkpoint of the official ``train/train.py``: ``{"model": ..., "optimizer":
..., "lr_scheduler": ..., "epoch": ..., "args": argparse.Namespace}``, the backbone under
``features.`` and the heads as ``fc`` (TAC, one head) or ``fc1``/``fc2`` (TSP). It is read with
``weights_only=True`` (:func:`tsp_pretrain.models.weights.read_checkpoint`): ``args`` is rebuilt
as a plain ``argparse.Namespace`` of its stored values (no code in the file is run) and is then
ignored, like the optimiser and scheduler states; if it held an object of any other class the load
fails with an error naming that class. Only the backbone's ``features.*`` tensors are used.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from tsp_pretrain.atomic import atomic_path
from tsp_pretrain.models.weights import (
    WeightsError,
    cached_file_error,
    hub_checkpoint_dir,
    not_cached_error,
    read_checkpoint,
)

log = logging.getLogger(__name__)

#: What marks an ``encoder.weights`` value as a release name.
PREFIX = "tsp:"

_BASE_URL = "https://github.com/HumamAlwassel/TSP/releases/download/model_weights/"
# torch.hub's convention: the file name ends in "-<first hex digits of its SHA-256>.pth".
_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,})\.pth$")


@dataclass(frozen=True)
class Release:
    """One released checkpoint: its name, the backbone it fits and where it is published."""

    name: str
    backbone: str
    url: str

    @property
    def file_name(self) -> str:
        """The name the file has in the hub cache (the URL's last part, as torch.hub keeps it)."""
        return self.url.rsplit("/", 1)[-1]

    @property
    def hash_prefix(self) -> str:
        """The leading hex digits of the file's SHA-256, taken from its name."""
        match = _HASH_IN_NAME.search(self.file_name)
        if match is None:
            raise WeightsError(f"{self.name}: {self.file_name} carries no -<sha256 prefix>.pth")
        return match.group(1)


# (backbone, release, file name) as published; copied from the official MODEL_URLS.
_PUBLISHED = (
    # main TSP models
    (
        "r2plus1d_34",
        "tsp_on_activitynet",
        "r2plus1d_34-tsp_on_activitynet-max_gvf-backbone_lr_0.0001-fc_lr_0.002-epoch_5-0d2cf854.pth",
    ),
    (
        "r2plus1d_34",
        "tsp_on_thumos14",
        "r2plus1d_34-tsp_on_thumos14-max_gvf-backbone_lr_0.0001-fc_lr_0.004-epoch_4-e6a30b2f.pth",
    ),
    # main TAC baselines
    (
        "r2plus1d_34",
        "tac_on_activitynet",
        "r2plus1d_34-tac_on_activitynet-backbone_lr_0.0001-fc_lr_0.002-epoch_5-98ccac94.pth",
    ),
    (
        "r2plus1d_34",
        "tac_on_thumos14",
        "r2plus1d_34-tac_on_thumos14-backbone_lr_0.00001-fc_lr_0.002-epoch_3-54b5c8aa.pth",
    ),
    ("r2plus1d_34", "tac_on_kinetics", "r2plus1d_34-tac_on_kinetics-0547130e.pth"),
    # GVF and backbone ablations
    (
        "r2plus1d_34",
        "tsp_on_activitynet-avg_gvf",
        "r2plus1d_34-tsp_on_activitynet-avg_gvf-backbone_lr_0.0001-fc_lr_0.004-epoch_5-8b74eaa2.pth",
    ),
    (
        "r2plus1d_34",
        "tsp_on_activitynet-no_gvf",
        "r2plus1d_34-tsp_on_activitynet-no_gvf-backbone_lr_0.0001-fc_lr_0.004-epoch_5-fb38fdd2.pth",
    ),
    (
        "r2plus1d_18",
        "tsp_on_activitynet",
        "r2plus1d_18-tsp_on_activitynet-max_gvf-backbone_lr_0.0001-fc_lr_0.002-epoch_6-22835b73.pth",
    ),
    (
        "r2plus1d_18",
        "tac_on_activitynet",
        "r2plus1d_18-tac_on_activitynet-backbone_lr_0.0001-fc_lr_0.004-epoch_5-9f56941a.pth",
    ),
    ("r2plus1d_18", "tac_on_kinetics", "r2plus1d_18-tac_on_kinetics-76ce975c.pth"),
    (
        "r3d_18",
        "tsp_on_activitynet",
        "r3d_18-tsp_on_activitynet-max_gvf-backbone_lr_0.0001-fc_lr_0.002-epoch_6-85584422.pth",
    ),
    (
        "r3d_18",
        "tac_on_activitynet",
        "r3d_18-tac_on_activitynet-backbone_lr_0.001-fc_lr_0.01-epoch_5-31fd6e95.pth",
    ),
    ("r3d_18", "tac_on_kinetics", "r3d_18-tac_on_kinetics-dcd952c6.pth"),
)

#: Every release by its user-facing name ``tsp:<backbone>-<release>``.
RELEASES: dict[str, Release] = {
    f"{PREFIX}{backbone}-{release}": Release(
        f"{PREFIX}{backbone}-{release}", backbone, _BASE_URL + file_name
    )
    for backbone, release, file_name in _PUBLISHED
}


def is_release_name(weights: str) -> bool:
    """Whether ``weights`` is meant as a release name (valid or not: it starts with ``tsp:``)."""
    return weights.startswith(PREFIX)


def get_release(name: str) -> Release:
    """The release called ``name``, or an error listing every valid name."""
    try:
        return RELEASES[name]
    except KeyError:
        raise WeightsError(
            f"unknown TSP release {name!r}; valid names: {', '.join(RELEASES)}"
        ) from None


def release_file(release: Release) -> Path:
    """The cached file of ``release``, downloaded (hash-checked) into the cache if absent."""
    cached = hub_checkpoint_dir() / release.file_name
    if cached.is_file():
        log.info("%s: loading %s", release.name, cached)
        return cached
    log.info("%s: not cached at %s; downloading %s", release.name, cached, release.url)
    try:
        with atomic_path(cached) as partial:
            torch.hub.download_url_to_file(
                release.url, str(partial), hash_prefix=release.hash_prefix, progress=False
            )
    except Exception as err:  # urllib, socket, SSL and hash errors alike
        raise not_cached_error(
            f"TSP release {release.name} is", release.file_name, release.url, err
        ) from err
    return cached


def release_state_dict(name: str, backbone: str) -> Mapping[str, torch.Tensor]:
    """The ``model`` state dict of release ``name``, which must fit backbone ``backbone``.

    The backbone check comes first, so a mismatch is reported before anything is downloaded.
    """
    release = get_release(name)
    if release.backbone != backbone:
        own = [n for n, r in RELEASES.items() if r.backbone == backbone]
        alternative = (
            f"releases of {backbone}: {', '.join(own)}" if own else f"no release is {backbone}"
        )
        raise WeightsError(
            f"{name} is a checkpoint of backbone {release.backbone}, but the encoder is "
            f"{backbone}; set encoder.backbone to {release.backbone} ({alternative})"
        )
    cached = release_file(release)
    try:
        return read_checkpoint(cached)
    except WeightsError as err:
        raise cached_file_error(cached, name, release.url, err) from err
