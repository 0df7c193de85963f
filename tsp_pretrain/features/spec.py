"""What a feature extraction run is, decided once from the params and passed down whole.

:class:`FeatureSpec` says what one feature row is and how its numbers are computed (the clip,
the stride between clips, the autocast dtype, the memory format); with the code and the encoder
file it makes the identity of a feature folder (:meth:`FeatureSpec.identity`), the one thing a
resumed run or a merge of shards compares before reusing features. :class:`ExtractionRun` adds
what a run does with them: where and how fast it computes (device, batch size, input workers),
what the folder holds besides the arrays (:class:`OutputSpec`; :mod:`.outputs` writes them),
which videos the annotation stage left out and which shard of the videos it extracts.
:meth:`ExtractionRun.from_params` builds it for the ``extract`` stage; tests and benches build
one directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from tsp_pretrain.config import ClipSpec, Params
from tsp_pretrain.digest import code_digest, file_digest
from tsp_pretrain.runtime import compute_dtype, input_workers, shard_device


@dataclass(frozen=True)
class OutputSpec:
    """What a feature folder holds besides its arrays (:mod:`tsp_pretrain.features.outputs`).

    ``encoder_info``: what ``meta.json`` says about the encoder (:func:`encoder_description`);
    ``h5``: also ``features.hdf5`` (``extract.h5``); ``fixed_length``: also ``resized_<L>/``
    (``extract.fixed_length``; 0: off).
    """

    encoder_info: Mapping = field(default_factory=dict)
    h5: bool = False
    fixed_length: int = 0


def encoder_description(state: Mapping, path: str | Path, digest: str) -> dict:
    """What ``meta.json`` says about the encoder, from a file written by ``save_encoder``.

    ``weights`` is the starting point the init_encoder stage records in ``info`` (e.g.
    KINETICS400_V1, demo-tac, a checkpoint path); ``None`` when the file does not record one (the
    trained encoder, whose ``info`` then says how it was fine-tuned: objective, gvf). Metrics are
    left out of ``info``: meta.json describes how the features were made, not how well.
    """
    info = {k: v for k, v in state.get("info", {}).items() if "metrics" not in k}
    return {
        "backbone": state["backbone"],
        "weights": info.get("weights"),
        "feature_dim": state.get("feature_dim"),
        "file": str(path),
        "digest": digest,
        "info": info,
    }


@dataclass(frozen=True)
class FeatureSpec:
    """What one feature row is: the encoder's output for the ``clip`` starting at frame
    ``k * stride``, computed under ``dtype`` autocast (float32: none) and, with
    ``channels_last_3d``, in the channels-last 3D memory format."""

    clip: ClipSpec
    stride: int
    dtype: torch.dtype = torch.float32
    channels_last_3d: bool = False

    @classmethod
    def from_params(cls, params: Params, device: torch.device) -> FeatureSpec:
        """The spec of the ``extract`` stage on ``device`` (``extract.dtype: auto`` follows it)."""
        p = params.extract
        return cls(params.clip, p.stride, compute_dtype(p.dtype, device), p.channels_last_3d)

    def identity(self, encoder_file: Path) -> dict:
        """The identity of a feature folder of these features made with ``encoder_file``.

        Every video of a folder shares it; the folder's ``index.json`` and every shard record it
        (under the key ``"settings"``), so that resuming or merging reuses only features made
        exactly this way: the code and the encoder file by digest, and every value that changes
        the numbers. The frame store is not here: each video's entry records its own frames
        (:func:`tsp_pretrain.features.extract.frames_record`), so that one new, removed or
        re-decoded video does not re-extract all the others. dtype and channels_last_3d are
        recorded only when they differ from float32 / off, so float32 on the CPU keeps the
        identity (and bytes) of earlier folders.

        The code digest covers the library modules imported so far: call it once everything the
        run uses is imported (the stage imports it all first).
        """
        identity: dict = {
            "code": code_digest(),
            "encoder": file_digest(encoder_file),
            "clip_len": self.clip.clip_len,
            "stride": self.stride,
            "frame_rate": self.clip.frame_rate,
            "crop_size": self.clip.crop_size,
        }
        if self.dtype != torch.float32:
            identity["dtype"] = str(self.dtype).removeprefix("torch.")
        if self.channels_last_3d:
            identity["channels_last_3d"] = True
        return identity


@dataclass(frozen=True)
class ExtractionRun:
    """One run of the extraction: the features, the folder they go to, how they are computed.

    ``identity``: the folder identity (:meth:`FeatureSpec.identity`; any dict in tests).
    ``batch_size`` clips go through the encoder at once on ``device``, read by ``workers`` input
    processes (0: this one). ``skipped``: videos the annotation stage left out, listed without
    features like those missing from the frame store. With ``num_shards > 1`` the run extracts
    shard ``shard``'s share only (:mod:`tsp_pretrain.features.shards`). ``progress``: a progress
    bar on the terminal.
    """

    features: FeatureSpec
    identity: dict
    batch_size: int
    device: torch.device
    workers: int = 0
    outputs: OutputSpec = field(default_factory=OutputSpec)
    skipped: tuple[str, ...] = ()
    shard: int = 0
    num_shards: int = 1
    progress: bool = True

    @classmethod
    def from_params(
        cls,
        params: Params,
        encoder_file: Path,
        encoder_state: Mapping,
        *,
        skipped: tuple[str, ...],
        shard: int,
        num_shards: int,
    ) -> ExtractionRun:
        """The run of the ``extract`` stage for shard ``shard`` of ``num_shards``, with the
        encoder file ``encoder_file`` (read into ``encoder_state``): the device, precision and
        input workers follow the machine (:mod:`tsp_pretrain.runtime`)."""
        p = params.extract
        device = shard_device(p.device, shard, num_shards)
        features = FeatureSpec.from_params(params, device)
        identity = features.identity(encoder_file)
        return cls(
            features=features,
            identity=identity,
            batch_size=p.batch_size,
            device=device,
            workers=input_workers(p.workers, device),
            outputs=OutputSpec(
                encoder_info=encoder_description(encoder_state, encoder_file, identity["encoder"]),
                h5=p.h5,
                fixed_length=p.fixed_length,
            ),
            skipped=tuple(skipped),
            shard=shard,
            num_shards=num_shards,
        )
