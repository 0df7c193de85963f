"""The 13 official TSP checkpoints, usable by name as ``encoder.weights``.

Names are ``tsp:<backbone>-<release>``, i.e. ``tsp:`` followed by the key of ``MODEL_URLS`` in the
official ``extract_features/extract_features.py`` (HumamAlwassel/TSP), for example
``tsp:r2plus1d_34-tsp_on_activitynet``. The ``tsp:`` prefix keeps them apart from torchvision
weight names and file paths. ``tac_on_kinetics`` is the Kinetics-trained starting point of the
recipe (for r2plus1d_34: IG-65M pretraining fine-tuned on Kinetics); the others are TSP or TAC
fine-tuned on ActivityNet v1.3 or THUMOS14 (``avg_gvf`` / ``no_gvf``: the paper's GVF ablations).

Loading works like torchvision's weights (``state_dicts.torchvision_state_dict``): the file is
looked up in ``$TORCH_HOME/hub/checkpoints/`` under its release file name; only when it is absent
is it downloaded, once, with the SHA-256 prefix in its name checked (as torch.hub does), through an
atomic write so that a failed or wrong download leaves nothing in the cache. A download that fails
(no network) is a :class:`WeightsError` naming the file to place and the folder.

A file placed by hand (the offline route) is checked too, whenever it is used: its SHA-256 must
start with the prefix in its name, or the run fails with both hashes and the fix. Hashing a
500 MB checkpoint takes seconds, so the verified digest is recorded beside the file
(``<file>.sha256.json``: size, modification time, SHA-256) and trusted while the file's size and
modification time are unchanged. The full digest goes into the encoder's description
(:func:`release_sha256`), so features say exactly which file made them.

A release is a training checkpoint of the official ``train/train.py``: ``{"model": ..., "optimizer":
..., "lr_scheduler": ..., "epoch": ..., "args": argparse.Namespace}``, the backbone under
``features.`` and the heads as ``fc`` (TAC, one head) or ``fc1``/``fc2`` (TSP). It is read with
``weights_only=True`` (:func:`tsp_pretrain.models.state_dicts.read_checkpoint`): ``args`` is rebuilt
as a plain ``argparse.Namespace`` of its stored values (no code in the file is run) and is then
ignored, like the optimiser and scheduler states; if it held an object of any other class the load
fails with an error naming that class. Only the backbone's ``features.*`` tensors are used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from tsp_pretrain.atomic import atomic_path, write_json
from tsp_pretrain.models.state_dicts import (
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


#: Ending of the record a verified release file gets beside it (see the module docstring).
RECORD_SUFFIX = ".sha256.json"


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def verified_sha256(release: Release, path: Path) -> str:
    """The SHA-256 of ``path``, which must be ``release``'s file; hashed once per file version.

    The record beside the file is reused while the file's size and modification time match it;
    otherwise the file is hashed and the record rewritten (a read-only cache only costs the
    hashing on every use, with a warning). A digest that does not start with the release's prefix
    is a :class:`WeightsError` with both hashes and the fix, whether it was computed or recorded.
    """
    stat = path.stat()
    key = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    record = path.with_name(path.name + RECORD_SUFFIX)
    try:
        saved = json.loads(record.read_text())
    except (OSError, ValueError):
        saved = {}
    if isinstance(saved, dict) and all(saved.get(k) == v for k, v in key.items()):
        digest = str(saved.get("sha256", ""))
    else:
        log.info(
            "%s: checking the SHA-256 of %s (%.0f MB, once per file)",
            release.name,
            path,
            stat.st_size / 1e6,
        )
        digest = _sha256(path)
        try:
            write_json(record, {**key, "sha256": digest})
        except OSError as err:
            log.warning(
                "%s: cannot record the verified hash (%s); it is re-computed on every run",
                record,
                err,
            )
    if not digest.startswith(release.hash_prefix):
        raise WeightsError(
            f"{path}: this is not the file of release {release.name}: its SHA-256 is {digest}, "
            f"the release's starts with {release.hash_prefix} (the end of its file name). "
            f"Delete the file (the next run downloads it) or replace it with a fresh copy of "
            f"{release.url}"
        )
    return digest


def release_sha256(name: str) -> str:
    """The verified SHA-256 of the cached file of release ``name`` (the encoder's identity)."""
    release = get_release(name)
    return verified_sha256(release, hub_checkpoint_dir() / release.file_name)


def release_file(release: Release) -> Path:
    """The cached file of ``release``, its hash checked; downloaded (hash-checked) if absent."""
    cached = hub_checkpoint_dir() / release.file_name
    if cached.is_file():
        verified_sha256(release, cached)
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
    verified_sha256(release, cached)  # records the digest; the download checked the prefix
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
