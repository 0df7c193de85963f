"""What a feature folder holds besides the per-video arrays, for temporal action localizers.

Written by :func:`tsp_pretrain.features.extract.extract_dataset` after every video is extracted,
always from the per-video ``.npy`` files (those stay the resumable unit; everything here is
rebuilt whole at the end of each run, so it can never describe a half-extracted folder):

``meta.json``
    How to read the folder without this project: the frame rate, clip length, stride, the time
    of row k, the encoder, the feature size, the file naming, the number of videos. Sorted keys
    and no timestamps, so that equal features give equal bytes (the pipeline is
    byte-reproducible).
``missing_files.txt``
    The videos of the dataset without features, one video id a line: what OpenTAD's
    ``block_list`` reads (it compares each line, minus its newline, to the annotation file's
    video names, which are our video ids; e.g. ``---9CpRcKoU``, not ``v_---9CpRcKoU``).
``features.hdf5`` (``extract.h5``)
    All videos in one HDF5 file, one gzip-compressed float32 ``T x F`` dataset per video keyed by
    the ``.npy`` file stem (``v_<id>`` on ActivityNet), as in the official TSP release (its
    ``merge_pkl_files_into_one_h5_feature_file.py``: one gzip dataset per video, keyed by the
    file stem). The name ends in ``.hdf5`` because ActionFormer reads HDF5 only when its
    ``feat_folder`` contains that string. ``track_times`` is off: HDF5 otherwise stores the
    creation time of every dataset and the bytes change from run to run.
``resized_<L>/`` (``extract.fixed_length``)
    Every video resampled to ``L`` rows (the fixed 100 steps G-TAD and BMN use on ActivityNet),
    same file names, plus ``features.hdf5`` when that is on too. See :func:`resize_features`.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from tsp_pretrain.atomic import atomic_path, write_json, write_text
from tsp_pretrain.features.spec import FeatureSpec, OutputSpec
from tsp_pretrain.features.store import write_features

META_FILE = "meta.json"
MISSING_FILE = "missing_files.txt"
H5_FILE = "features.hdf5"
FEATURE_EXT = ".npy"


def feature_file(filename: str) -> str:
    """A video's feature file: its video file's stem + ``.npy`` (``v_<id>.npy`` on ActivityNet,
    as localizers expect). The one naming rule: extraction writes it, the hand-off checks it."""
    return f"{Path(filename).stem}{FEATURE_EXT}"


# The annotation stage's report (tsp_pretrain.annotations.schema.Report.write) and the action it
# records for a video it leaves out of the tables entirely (missing or unreadable file, or an id
# listed with conflicting content); segment-level problems use other actions.
ANNOTATION_REPORT = "report.csv"
VIDEO_SKIPPED = "skipped"


def resized_folder(length: int) -> str:
    """Name of the fixed-length subfolder for ``length`` rows."""
    return f"resized_{length}"


def derived_names() -> tuple[str, ...]:
    """Fixed names of the derived outputs (the ``resized_*`` folders are matched by prefix)."""
    return (META_FILE, MISSING_FILE, H5_FILE)


def is_derived(name: str) -> bool:
    """Whether ``name`` (an entry of a feature folder) is rebuilt at the end of every run."""
    return name in derived_names() or name.startswith("resized_")


def remove_derived(folder: Path) -> None:
    """Delete the derived outputs, so that a run with an option turned off leaves none stale."""
    for path in sorted(folder.iterdir()):
        if is_derived(path.name):
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def file_prefix(files: Mapping[str, str]) -> str | None:
    """The prefix ``p`` with ``file == p + video_id + ".npy"`` for every ``{video_id: file}``.

    Localizers build the path from the annotation's video id as ``prefix + id + ext``; when the
    video files are named otherwise (no common prefix), there is none and ``None`` is returned.
    """
    prefixes = set()
    for vid, file in files.items():
        stem = file[: -len(FEATURE_EXT)] if file.endswith(FEATURE_EXT) else None
        if stem is None or not stem.endswith(vid):
            return None
        prefixes.add(stem[: len(stem) - len(vid)])
    return prefixes.pop() if len(prefixes) == 1 else None


def annotated_but_skipped(annotations_dir: str | Path) -> list[str]:
    """Video ids the annotation stage left out (its ``report.csv`` rows with action skipped)."""
    path = Path(annotations_dir) / ANNOTATION_REPORT
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; run the annotations stage (dvc repro) first")
    report = pd.read_csv(path, dtype={"video_id": str, "action": str}, keep_default_na=False)
    return sorted(set(report.loc[report["action"] == VIDEO_SKIPPED, "video_id"]))


def write_missing(folder: Path, video_ids: Iterable[str]) -> None:
    """``missing_files.txt``: one video id a line, sorted; an empty file when none is missing."""
    ids = sorted(set(video_ids))
    write_text(folder / MISSING_FILE, "".join(f"{vid}\n" for vid in ids))


def resize_features(features: np.ndarray, length: int) -> np.ndarray:
    """Resample ``T x F`` features to ``length x F`` by linear interpolation along time.

    Matches OpenTAD's ``ResizeFeat(tool="interpolate")`` and ActionFormer's ``force_upsampling``,
    both ``torch.nn.functional.interpolate(mode="linear", align_corners=False)``: output row j
    samples the input at position ``x_j = (j + 0.5) * T / length - 0.5`` (in input rows),
    clamped to ``[0, T - 1]``, interpolating linearly between the two nearest rows. Computed in
    float64 and stored as float32 (torch computes in float32: equal up to float32 rounding).
    """
    if features.ndim != 2 or len(features) == 0:
        raise ValueError(f"expected T x F features with T >= 1, got shape {features.shape}")
    if length < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    t = len(features)
    x = np.clip((np.arange(length) + 0.5) * t / length - 0.5, 0, t - 1)
    lo = np.floor(x).astype(np.int64)
    hi = np.minimum(lo + 1, t - 1)
    w = (x - lo)[:, None]
    data = features.astype(np.float64)
    return ((1 - w) * data[lo] + w * data[hi]).astype(np.float32)


def write_h5(path: Path, folder: Path, files: Iterable[str]) -> None:
    """One HDF5 file of the given ``.npy`` files of ``folder``, keyed by file stem, atomically.

    Same features give the same bytes: datasets are written in sorted order, without the
    modification times HDF5 stores by default.
    """
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        for file in sorted(files):
            h5.create_dataset(
                file[: -len(FEATURE_EXT)],
                data=np.load(folder / file).astype(np.float32, copy=False),
                compression="gzip",
                track_times=False,
            )


def write_derived(
    folder: Path,
    files: Mapping[str, str],
    missing: Iterable[str],
    features: FeatureSpec,
    outputs: OutputSpec,
) -> None:
    """Write every derived output of a feature folder (see the module docstring).

    ``files`` maps each extracted video id to its ``.npy`` file name, ``missing`` lists the video
    ids without features; ``features`` and ``outputs`` are what :func:`build_meta` describes.
    """
    remove_derived(folder)
    write_missing(folder, missing)
    if outputs.h5:
        write_h5(folder / H5_FILE, folder, files.values())
    if outputs.fixed_length:
        sub = folder / resized_folder(outputs.fixed_length)
        sub.mkdir()
        for file in sorted(files.values()):
            resized = resize_features(np.load(folder / file), outputs.fixed_length)
            write_features(sub / file, resized)
        if outputs.h5:
            write_h5(sub / H5_FILE, sub, files.values())
    document = build_meta(folder, files, missing, features, outputs)
    write_json(folder / META_FILE, document, indent=1)  # last: its presence says it is complete


def feature_dim(folder: Path, files: Iterable[str]) -> int | None:
    """The common feature size F of the ``.npy`` files (None without files); an error if mixed."""
    dims = {}
    for file in sorted(files):
        array = np.load(folder / file, mmap_mode="r")
        if array.ndim != 2 or array.dtype != np.float32:
            raise ValueError(
                f"{folder / file}: expected a T x F float32 array, got {array.dtype} "
                f"{array.shape}; delete it and re-run the extract stage"
            )
        dims.setdefault(int(array.shape[1]), file)
    if len(dims) > 1:
        raise ValueError(
            f"{folder}: feature files of different sizes {dims}; delete the folder and re-run"
        )
    return next(iter(dims), None)


def build_meta(
    folder: Path,
    files: Mapping[str, str],
    missing: Iterable[str],
    features: FeatureSpec,
    outputs: OutputSpec,
) -> dict:
    """The ``meta.json`` document (plain JSON types only; see the module docstring): how rows
    map to time, the encoder, the arrays, their file names, the videos, the optional copies."""
    encoder = outputs.encoder_info
    document = {
        **_row_times(features),
        "encoder": {k: encoder[k] for k in sorted(encoder)},
        "feature_dim": feature_dim(folder, files.values()),
        "dtype": "float32",
        "layout": "T x F (one row per clip)",
        **_file_naming(file_prefix(files)),
        "num_videos": len(files),
        "num_missing": len(set(missing)),
        "missing_list": MISSING_FILE,
        "lost_frames": (
            "rows whose clip overlaps frames lost in decoding are kept (row k stays at its time) "
            "and flagged lost_frames = 1 in clips.csv"
        ),
        "short_videos": (
            "a video shorter than one clip has one row: its frames padded with the last one"
        ),
        "hdf5": (
            {"file": H5_FILE, "keys": "the .npy file stem", "compression": "gzip"}
            if outputs.h5
            else None
        ),
        "fixed_length": _fixed_length(outputs.fixed_length),
    }
    json.dumps(document)  # plain JSON types only: a numpy scalar here is a bug
    return document


def _row_times(features: FeatureSpec) -> dict:
    """Where row k of every video lies in time: ``frame_rate`` is the rate the video was
    resampled to before the clips were cut (not the source file's)."""
    clip_len = features.clip.clip_len
    return {
        "frame_rate": float(features.clip.frame_rate),
        "clip_len": int(clip_len),
        "stride": int(features.stride),
        "first_clip_start_frame": 0,
        "offset_frames": clip_len / 2,
        "row_time": (
            "row k is the clip of frames [k * stride, k * stride + clip_len) of the video "
            "resampled to frame_rate; its centre is at (k * stride + clip_len / 2) / frame_rate "
            "seconds"
        ),
    }


def _file_naming(prefix: str | None) -> dict:
    """How a video's file is named: ``<prefix><video_id>.npy`` when every file is (see
    :func:`file_prefix`), else the video file's stem."""
    return {
        "file_prefix": prefix,
        "file_ext": FEATURE_EXT,
        "file_naming": (
            f"{prefix}<video_id>{FEATURE_EXT}"
            if prefix is not None
            else "the video file's stem + .npy (no common prefix + video id form: see index.json)"
        ),
    }


def _fixed_length(length: int) -> dict | None:
    """The ``resized_<L>/`` copy (``extract.fixed_length``), or None when it is off."""
    if not length:
        return None
    return {
        "folder": resized_folder(length),
        "length": length,
        "method": (
            "linear interpolation as torch interpolate(mode=linear, align_corners=False): "
            "row j samples original row x_j = (j + 0.5) * T / length - 0.5, "
            "clamped to [0, T - 1]; its time is (x_j * stride + clip_len / 2) / frame_rate"
        ),
    }
