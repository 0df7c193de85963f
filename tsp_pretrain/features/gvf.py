"""Global video features: one F-vector per video, pooled over all its clip features.

TSP computes them once, with the initial encoder, and keeps them fixed during training; they come
from the initial encoder's extracted features (the same folder that the evaluation uses as the
baseline), so they are never computed twice, or from a table (``train.gvf_file``), such as those
the official repository ships.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Literal

import numpy as np
import pandas as pd
import torch


def global_video_features(
    features: Mapping[str, np.ndarray], pool: Literal["max", "avg"] = "max"
) -> dict[str, torch.Tensor]:
    """Max- (the paper) or average-pool each video's ``T x F`` features over time."""
    if pool not in ("max", "avg"):
        raise ValueError(f"pool must be 'max' or 'avg', got {pool!r}")
    reduce = np.max if pool == "max" else np.mean
    out = {}
    for vid, feats in features.items():
        if feats.ndim != 2 or len(feats) == 0:
            raise ValueError(f"video {vid}: expected T x F features with T >= 1, got {feats.shape}")
        out[vid] = torch.from_numpy(reduce(feats, axis=0).astype(np.float32))
    return out


class GVFTableError(ValueError):
    """A GVF table that cannot serve the videos being trained on; the message names the file."""


def read_gvf_table(path: str | Path, videos: pd.DataFrame) -> dict[str, torch.Tensor]:
    """The GVF of every video of ``videos`` (columns video_id, filename) from an HDF5 table.

    The official releases ship GVF tables (``r2plus1d_34-max_gvf.h5``) with one 1-D dataset per
    video, keyed by the video file's name without extension (``v_<id>`` on ActivityNet). A video
    is looked up by its file stem, then by its id, then ``v_<id>``. Every video must be found and
    every vector must have the same length: a GVF silently missing for some videos would train
    those clips on another input.
    """
    import h5py  # only this optional route needs it

    path = Path(path)
    if not path.is_file():
        raise GVFTableError(f"{path}: no such GVF table (train.gvf_file)")
    out: dict[str, torch.Tensor] = {}
    missing: list[str] = []
    try:
        table = h5py.File(path, "r")
    except OSError as err:
        raise GVFTableError(f"{path}: not an HDF5 file ({err})") from err
    with table:
        for video_id, filename in videos[["video_id", "filename"]].itertuples(index=False):
            keys = (PurePosixPath(filename).stem, video_id, f"v_{video_id}")
            key = next((k for k in keys if k in table), None)
            if key is None:
                missing.append(video_id)
                continue
            vector = np.asarray(table[key][()], dtype=np.float32)
            if vector.ndim != 1:
                raise GVFTableError(
                    f"{path}: entry {key!r} has shape {vector.shape}; expected one vector per video"
                )
            out[video_id] = torch.from_numpy(vector)
    if missing:
        raise GVFTableError(
            f"{path}: no GVF for {len(missing)} of {len(videos)} videos (looked up by file stem, "
            f"id and v_<id>), e.g. {missing[:5]}; use a table computed for this dataset, or set "
            "train.gvf_file: null to pool the initial encoder's features instead"
        )
    sizes = {len(v) for v in out.values()}
    if len(sizes) > 1:
        raise GVFTableError(f"{path}: GVF vectors of different lengths {sorted(sizes)}")
    return out


def training_gvf(
    videos: pd.DataFrame,
    *,
    feature_dim: int,
    gvf_file: str | Path | None,
    initial_features: Mapping[str, np.ndarray] | None,
    pool: Literal["max", "avg"] = "max",
) -> dict[str, torch.Tensor]:
    """The fixed GVF of every video trained or validated on, from the one source configured.

    ``gvf_file`` (a table, :func:`read_gvf_table`) when given, else the ``pool`` of the initial
    encoder's features. Either way every vector must have the model's feature size F: the region
    head takes concat(local, GVF).
    """
    if gvf_file is not None:
        gvf, source = read_gvf_table(gvf_file, videos), str(gvf_file)
    else:
        if initial_features is None:
            raise ValueError("initial_features are required when no gvf_file is given")
        wanted = set(videos["video_id"])
        gvf = global_video_features(
            {vid: f for vid, f in initial_features.items() if vid in wanted}, pool
        )
        source = "the initial encoder's features"
    sizes = {len(v) for v in gvf.values()}
    if sizes and sizes != {feature_dim}:
        raise GVFTableError(
            f"{source}: GVF vectors have size {sorted(sizes)}, the encoder's features "
            f"{feature_dim}: a GVF table made with another backbone?"
        )
    return gvf
