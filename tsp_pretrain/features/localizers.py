"""Config values for temporal action localizers reading a feature folder as it is.

Two localizers are covered, each read from its own loader code:

* ActionFormer (happyharrycn/actionformer_release, ``libs/datasets/anet.py`` and
  ``thumos14.py``): loads ``feat_folder/<file_prefix><video_id><file_ext>`` with ``np.load``
  (or the dataset ``<file_prefix><video_id>`` of an HDF5 file when ``feat_folder`` contains
  ``.hdf5``), transposes ``T x C`` to ``C x T`` and maps a time t (seconds) to feature units as
  ``(t * fps - 0.5 * num_frames) / feat_stride``: row k is centred at
  ``(k * feat_stride + 0.5 * num_frames) / fps`` (its implicit offset is
  ``0.5 * num_frames / feat_stride`` rows).
* OpenTAD (sming256/OpenTAD, ``LoadFeats`` in ``opentad/datasets/transforms/loading.py`` and the
  padding datasets): loads ``data_path/<prefix><video_name><suffix>.<feat_format>``, skips the
  videos listed in ``block_list`` (lines compared to the annotation's video names), and maps t to
  ``(t * fps - offset_frames) / (feature_stride * sample_stride)``: row k is centred at
  ``(k * feature_stride * sample_stride + offset_frames) / fps``.

Both agree with this project's rule (``row_time`` in ``meta.json``, docs/localizers.md): row k is
the clip starting at frame ``k * stride`` of the video resampled to ``frame_rate``, centred at
``(k * stride + clip_len / 2) / frame_rate``. So ``feat_stride = feature_stride = stride``,
``num_frames = clip_len``, ``offset_frames = clip_len / 2``, ``fps = frame_rate`` (the rate the
clips were sampled at, not the source video's).

Run ``python -m tsp_pretrain.features.localizers data/features/initial`` for the snippets.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from tsp_pretrain.features.outputs import H5_FILE, META_FILE, MISSING_FILE


class LocalizerConfigError(ValueError):
    """A feature folder that a localizer cannot read as it is; the message says why and the fix."""


def actionformer_config(
    folder: str | Path,
    *,
    clip_len: int,
    frame_rate: float,
    stride: int,
    feature_dim: int,
    file_prefix: str,
    h5: bool = False,
) -> dict[str, Any]:
    """The ``dataset:`` values of an ActionFormer config for this folder (variable length)."""
    folder = Path(folder)
    return {
        "feat_folder": str(folder / H5_FILE) if h5 else str(folder),
        "file_prefix": file_prefix,
        "file_ext": ".npy",
        "input_dim": int(feature_dim),
        "feat_stride": int(stride),
        "num_frames": int(clip_len),
        "default_fps": float(frame_rate),
        "downsample_rate": 1,
        # not a config key: ActionFormer's implied offset of row 0, in rows
        "feat_offset": 0.5 * clip_len / stride,
    }


def opentad_config(
    folder: str | Path,
    *,
    clip_len: int,
    frame_rate: float,
    stride: int,
    feature_dim: int,
    file_prefix: str,
) -> dict[str, Any]:
    """The dataset and ``LoadFeats`` values of an OpenTAD config for this folder (padding type).

    OpenTAD casts ``offset_frames`` to int: an odd ``clip_len`` (centre between two frames) is
    an error here rather than a silent half-frame shift.
    """
    if clip_len % 2:
        raise LocalizerConfigError(
            f"clip_len {clip_len} is odd: the clip centre clip_len / 2 is not a whole frame, and "
            "OpenTAD truncates offset_frames to int (a half-frame shift); use an even clip_len"
        )
    folder = Path(folder)
    return {
        "data_path": str(folder),
        "block_list": str(folder / MISSING_FILE),
        "feature_stride": int(stride),
        "sample_stride": 1,
        "offset_frames": clip_len // 2,
        "fps": float(frame_rate),
        "load_feats": {"type": "LoadFeats", "feat_format": "npy", "prefix": file_prefix},
        "in_channels": int(feature_dim),
    }


def read_meta(folder: str | Path) -> dict[str, Any]:
    """The folder's ``meta.json``; errors name the folder and the fix."""
    path = Path(folder) / META_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; run the extract stage (dvc repro) first")
    with path.open() as f:
        meta = json.load(f)
    if meta.get("file_prefix") is None:
        raise LocalizerConfigError(
            f"{path}: the feature files are not all named <prefix><video_id>.npy (they take the "
            "video file's stem), so a localizer cannot find them from the video ids; rename the "
            "video files to <prefix><video_id>.<ext> and re-run, or map names yourself"
        )
    if meta.get("feature_dim") is None:
        raise LocalizerConfigError(f"{path}: the folder holds no features; nothing to configure")
    return meta


def configs_for_folder(folder: str | Path) -> dict[str, dict[str, Any]]:
    """Both localizers' values for a feature folder, from its ``meta.json`` (the params used)."""
    meta = read_meta(folder)
    common = {
        "clip_len": meta["clip_len"],
        "frame_rate": meta["fps"],
        "stride": meta["stride"],
        "feature_dim": meta["feature_dim"],
        "file_prefix": meta["file_prefix"],
    }
    return {
        "actionformer": actionformer_config(folder, h5=meta.get("hdf5") is not None, **common),
        "opentad": opentad_config(folder, **common),
    }


def format_snippets(folder: str | Path) -> str:
    """The YAML (ActionFormer) and Python (OpenTAD) snippets printed by the command line."""
    meta = read_meta(folder)
    configs = configs_for_folder(folder)
    af, ot = configs["actionformer"], configs["opentad"]
    centre = f"(k * {meta['stride']} + {meta['clip_len'] / 2:g}) / {meta['fps']:g} s"
    af_lines = [
        f"# ActionFormer: row k of each feature file is centred at {centre}",
        f"# (feature offset {af['feat_offset']:g} rows = 0.5 * num_frames / feat_stride)",
        "dataset: {",
        *(f"  {k}: {_yaml(v)}," for k, v in af.items() if k != "feat_offset"),
        "  # plus json_file, num_classes, max_seq_len, trunc_thresh, crop_ratio as usual",
        "}",
    ]
    ot_lines = [
        f"# OpenTAD: row k of each feature file is centred at {centre}",
        f"data_path = {json.dumps(ot['data_path'] + '/')}",
        f"block_list = {json.dumps(ot['block_list'])}  # videos without features",
        "dataset_settings = dict(",
        "    data_path=data_path,",
        "    block_list=block_list,",
        f"    feature_stride={ot['feature_stride']},",
        f"    sample_stride={ot['sample_stride']},",
        f"    offset_frames={ot['offset_frames']},",
        f"    fps={ot['fps']:g},",
        ")",
        'load_feats = dict(type="LoadFeats", feat_format="npy", '
        f"prefix={json.dumps(ot['load_feats']['prefix'])})",
        f"# model: in_channels={ot['in_channels']}",
    ]
    return "\n".join([*af_lines, "", *ot_lines]) + "\n"


def _yaml(value: Any) -> str:
    """A scalar as YAML flow text (strings double-quoted: an empty prefix stays a string)."""
    return (
        json.dumps(value)
        if isinstance(value, str)
        else f"{value:g}"
        if isinstance(value, float)
        else str(value)
    )


def main(argv: list[str] | None = None) -> None:
    """Print the ActionFormer and OpenTAD config snippets for a feature folder."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="feature folder, e.g. data/features/initial")
    args = parser.parse_args(argv)
    print(format_snippets(args.folder), end="")


if __name__ == "__main__":
    from tsp_pretrain.cli import run_stage

    run_stage(main)
