"""What temporal action localizers need to read a feature folder: annotation files, config values.

Two localizers are covered, each read from its own loader code:

* ActionFormer (happyharrycn/actionformer_release, ``libs/datasets/anet.py`` and
  ``thumos14.py``): loads ``feat_folder/<file_prefix><video_id><file_ext>`` with ``np.load``
  (or the dataset ``<file_prefix><video_id>`` of an HDF5 file when ``feat_folder`` contains
  ``.hdf5``), transposes ``T x C`` to ``C x T`` and maps a time t (seconds) to feature units as
  ``(t * fps - 0.5 * num_frames) / feat_stride``: row k is centred at
  ``(k * feat_stride + 0.5 * num_frames) / fps`` (its implicit offset is
  ``0.5 * num_frames / feat_stride`` rows). Its ``json_file`` is an ActivityNet-style
  ``database`` whose annotations carry ``label_id`` as well as ``label`` (it builds its class
  dictionary from them, so a plain ActivityNet file fails with a KeyError).
* OpenTAD (sming256/OpenTAD, ``LoadFeats`` in ``opentad/datasets/transforms/loading.py`` and the
  padding datasets): loads ``data_path/<prefix><video_name><suffix>.<feat_format>``, skips the
  videos listed in ``block_list`` (lines compared to the annotation's video names), and maps t to
  ``(t * fps - offset_frames) / (feature_stride * sample_stride)``: row k is centred at
  ``(k * feature_stride * sample_stride + offset_frames) / fps``. Its ``ann_file`` is an
  ActivityNet-style ``database`` (``subset``, ``duration``, ``frame`` for THUMOS, annotations
  with ``segment`` and ``label``); the class index is the line of the ``class_map`` text file.

Both agree with this project's rule (``row_time`` in ``meta.json``, docs/localizers.md): row k is
the clip starting at frame ``k * stride`` of the video resampled to ``frame_rate``, centred at
``(k * stride + clip_len / 2) / frame_rate``. So ``feat_stride = feature_stride = stride``,
``num_frames = clip_len``, ``offset_frames = clip_len / 2``, ``fps = frame_rate`` (the rate the
clips were sampled at, not the source video's).

:func:`write_localizer_annotations` writes the annotation files beside the features (the
extraction stage calls it); ``python -m tsp_pretrain.features.localizers data/features/initial``
prints the config snippets that name them.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from tsp_pretrain.atomic import write_json, write_text
from tsp_pretrain.features.outputs import (
    FEATURE_EXT,
    H5_FILE,
    META_FILE,
    MISSING_FILE,
    feature_file,
)
from tsp_pretrain.tables import AnnotationTables, read_annotations

log = logging.getLogger(__name__)

ACTIONFORMER_JSON = "actionformer.json"
OPENTAD_JSON = "opentad.json"
# OpenTAD's class_map file name (its configs: data/<dataset>/annotations/category_idx.txt)
CLASS_LIST = "category_idx.txt"
LOCALIZER_FILES = (ACTIONFORMER_JSON, OPENTAD_JSON, CLASS_LIST)
# Times are written rounded to the microsecond: the same tables give the same bytes everywhere.
_DECIMALS = 6
# ActionFormer's THUMOS loader drops every action whose label_id is 4 (CliffDiving in the
# alphabetical THUMOS14 classes: every CliffDiving is also a Diving).
_THUMOS_DROPPED = (4, "CliffDiving")


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
    num_classes: int | None = None,
) -> dict[str, Any]:
    """The ``dataset:`` values of an ActionFormer config for this folder (variable length)."""
    folder = Path(folder)
    config: dict[str, Any] = {
        "json_file": str(folder / ACTIONFORMER_JSON),
        "feat_folder": str(folder / H5_FILE) if h5 else str(folder),
        "file_prefix": file_prefix,
        "file_ext": FEATURE_EXT,
    }
    if num_classes is not None:
        config["num_classes"] = int(num_classes)
    return config | {
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
        "ann_file": str(folder / OPENTAD_JSON),
        "class_map": str(folder / CLASS_LIST),
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


# --- the annotation files --------------------------------------------------------------------


def write_localizer_annotations(
    annotations_dir: str | Path, features_dir: str | Path
) -> list[Path]:
    """Write the annotation files ActionFormer and OpenTAD read beside the features; return them.

    ``annotations_dir`` holds the canonical tables the features were extracted from
    (``videos.csv``, ``segments.csv``, ``labels.json``), ``features_dir`` a finished feature
    folder (its ``meta.json`` is written last, so call this after the extraction). Written, in
    ``features_dir``:

    ``actionformer.json``
        ``{"database": {id: {"subset", "duration", "fps", "annotations": [{"segment", "label",
        "label_id"}]}}}``: the videos with features that have an action (ActionFormer's
        training asserts every video has one) or are in subset ``testing`` (inference only).
    ``opentad.json``
        ``{"database": {id: {"subset", "duration", "frame", "annotations": [{"segment",
        "label"}]}}}``: every video with features (OpenTAD skips those without an action).
    ``category_idx.txt``
        The class names, one a line: line i (from 0) is ``label_id`` i, OpenTAD's class index.

    Keys are the video ids (the feature files are ``<file_prefix><id>.npy``); ``fps`` is the
    features' frame rate and ``frame`` is ``duration * fps``, so that both localizers map times
    to rows as ``meta.json`` says. Actions are the canonical foreground segments (clipped to the
    file, those shorter than a clip dropped: the annotations report). Sorted keys, times rounded
    to the microsecond, no timestamps: the same inputs give the same bytes on any machine.
    Raises :class:`LocalizerConfigError` when the folder and the tables do not match.
    """
    features_dir = Path(features_dir)
    meta = read_meta(features_dir)
    tables = read_annotations(annotations_dir)
    _check_labels(tables.labels, Path(annotations_dir))
    videos = _videos_with_features(tables, features_dir, meta["file_prefix"], annotations_dir)
    actions = _actions(tables.segments, videos)
    frame_rate = float(meta["frame_rate"])
    af, ot = _databases(videos, actions, frame_rate)
    written = [features_dir / name for name in LOCALIZER_FILES]
    write_json(written[0], {"database": af}, indent=None)
    write_json(written[1], {"database": ot}, indent=None)
    write_text(written[2], "".join(f"{label}\n" for label in tables.labels))
    if len(af) < len(ot):
        log.info(
            "%s: %d of %d videos with features have no action and are not in %s (ActionFormer's "
            "training needs one per video); %s lists them",
            features_dir,
            len(ot) - len(af),
            len(ot),
            ACTIONFORMER_JSON,
            OPENTAD_JSON,
        )
    return written


def _check_labels(labels: list[str], where: Path) -> None:
    """Class names must fit one line each: the class list is read line by line."""
    bad = [label for label in labels if "\n" in label or "\r" in label]
    if bad:
        raise LocalizerConfigError(
            f"{where / 'labels.json'}: class names {bad!r} contain line breaks; OpenTAD reads "
            f"{CLASS_LIST} one name a line: rename those classes in the label map"
        )


def _videos_with_features(
    tables: AnnotationTables, folder: Path, prefix: str, annotations_dir: str | Path
) -> pd.DataFrame:
    """The annotated videos whose feature file is in ``folder``, sorted by id.

    Every video's feature file (the stem of its video file + ``.npy``, as the extraction names
    it) must be ``<prefix><id>.npy``, the path the localizers build from the id; every video
    without one must be in ``missing_files.txt``; every feature file must belong to a video of
    the tables. Anything else means the tables are not the ones the folder was extracted from.
    """
    videos = tables.videos
    expected = [f"{prefix}{vid}{FEATURE_EXT}" for vid in videos["video_id"]]
    _check_feature_names(expected, videos["filename"], folder, prefix)
    on_disk = {e.name for e in os.scandir(folder) if e.is_file() and e.name.endswith(FEATURE_EXT)}
    has = pd.Series([e in on_disk for e in expected], index=videos.index)
    listed = set((folder / MISSING_FILE).read_text().splitlines())
    unlisted = sorted(set(videos.loc[~has, "video_id"]) - listed)
    strays = sorted(on_disk - set(expected))
    problems = []
    if unlisted:
        problems.append(
            f"{len(unlisted)} annotated video(s) have no features and are not in {MISSING_FILE} "
            f"(e.g. {unlisted[0]})"
        )
    if strays:
        problems.append(f"{len(strays)} feature file(s) of no annotated video (e.g. {strays[0]})")
    if problems:
        raise LocalizerConfigError(
            f"{folder} was not extracted from {annotations_dir}: {'; '.join(problems)}; pass the "
            "annotations folder of the same dataset, or re-run the extract stage (dvc repro)"
        )
    return videos[has.to_numpy()].sort_values("video_id", kind="stable")


def _check_feature_names(
    expected: list[str], filenames: pd.Series, folder: Path, prefix: str
) -> None:
    """The extraction names features after the video file: that must be ``<prefix><id>.npy``."""
    named = [feature_file(f) for f in filenames]
    wrong = [(e, n) for e, n in zip(expected, named, strict=True) if e != n]
    if wrong:
        examples = ", ".join(f"{n} (not {e})" for e, n in wrong[:3])
        raise LocalizerConfigError(
            f"{folder}: {len(wrong)} feature file(s) are not named <file_prefix><video id>.npy "
            f"with file_prefix {prefix!r}: {examples}; localizers could not find them. Rename "
            "the video files so that all or none carry the same prefix and re-run (dvc repro)"
        )


def _actions(segments: pd.DataFrame, videos: pd.DataFrame) -> dict[str, list[dict[str, Any]]]:
    """The foreground segments of ``videos``, per video, in start time order."""
    fg = segments[
        (segments["region"] == "foreground") & segments["video_id"].isin(videos["video_id"])
    ]
    fg = fg.sort_values(["video_id", "t_start", "t_end", "label_id"], kind="stable")
    out: dict[str, list[dict[str, Any]]] = {}
    for vid, start, end, label, label_id in zip(
        fg["video_id"], fg["t_start"], fg["t_end"], fg["label"], fg["label_id"], strict=True
    ):
        out.setdefault(vid, []).append(
            {"segment": [_time(start), _time(end)], "label": label, "label_id": int(label_id)}
        )
    return out


def _databases(
    videos: pd.DataFrame, actions: dict[str, list[dict[str, Any]]], frame_rate: float
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ActionFormer and OpenTAD ``database`` objects (see write_localizer_annotations)."""
    af: dict[str, Any] = {}
    ot: dict[str, Any] = {}
    for vid, subset, duration in zip(
        videos["video_id"], videos["subset"], videos["duration"], strict=True
    ):
        acts = actions.get(vid, [])
        common = {"subset": subset, "duration": _time(duration)}
        ot[vid] = common | {
            "frame": _time(duration * frame_rate),
            "annotations": [{"segment": a["segment"], "label": a["label"]} for a in acts],
        }
        if acts or subset == "testing":
            af[vid] = common | {"fps": frame_rate, "annotations": acts}
    return af, ot


def _time(value: float) -> float:
    """Seconds (or frames) rounded to the microsecond, ``-0.0`` written as ``0.0``."""
    return round(float(value), _DECIMALS) + 0.0


# --- reading them back for the snippets -------------------------------------------------------


def read_localizer_files(folder: str | Path) -> dict[str, Any]:
    """What the snippets say about the annotation files: classes, used labels, subsets.

    An error when the folder lacks them (extracted before they were written).
    """
    folder = Path(folder)
    absent = [name for name in LOCALIZER_FILES if not (folder / name).is_file()]
    if absent:
        raise LocalizerConfigError(
            f"{folder}: no {', '.join(absent)}: the folder was extracted before these files were "
            "written; run the extract stage again (dvc repro) to write them"
        )
    labels = (folder / CLASS_LIST).read_text().splitlines()
    af = json.loads((folder / ACTIONFORMER_JSON).read_text())["database"]
    ot = json.loads((folder / OPENTAD_JSON).read_text())["database"]
    used = {a["label_id"] for v in af.values() for a in v["annotations"]}
    return {
        "labels": labels,
        "used_label_ids": sorted(used),
        "actionformer_subsets": dict(sorted(Counter(v["subset"] for v in af.values()).items())),
        "opentad_subsets": dict(sorted(Counter(v["subset"] for v in ot.values()).items())),
    }


def configs_for_folder(folder: str | Path) -> dict[str, dict[str, Any]]:
    """Both localizers' values for a feature folder (absolute paths), from its ``meta.json``."""
    folder = Path(folder).resolve()
    return _configs(folder, read_meta(folder), read_localizer_files(folder))


def _configs(folder: Path, meta: dict[str, Any], files: dict[str, Any]) -> dict[str, Any]:
    common = {
        "clip_len": meta["clip_len"],
        "frame_rate": meta["frame_rate"],
        "stride": meta["stride"],
        "feature_dim": meta["feature_dim"],
        "file_prefix": meta["file_prefix"],
    }
    return {
        "actionformer": actionformer_config(
            folder,
            h5=meta.get("hdf5") is not None,
            num_classes=_actionformer_classes(files),
            **common,
        ),
        "opentad": opentad_config(folder, **common),
    }


def _actionformer_classes(files: dict[str, Any]) -> int:
    """``num_classes``: ActionFormer asserts it equals the labels its json_file uses (or is 1)."""
    return len(files["labels"]) if len(files["used_label_ids"]) == len(files["labels"]) else 1


# --- the command line ---------------------------------------------------------------------------


def format_snippets(folder: str | Path) -> str:
    """The YAML (ActionFormer) and Python (OpenTAD) snippets printed by the command line."""
    folder = Path(folder).resolve()
    meta = read_meta(folder)
    files = read_localizer_files(folder)
    configs = _configs(folder, meta, files)
    offset, rate = _number(meta["clip_len"] / 2), _number(meta["frame_rate"])
    centre = f"(k * {meta['stride']} + {offset}) / {rate} s"
    lines = [
        *_actionformer_lines(configs["actionformer"], files, centre),
        "",
        *_opentad_lines(configs["opentad"], files, centre),
    ]
    return "\n".join(lines) + "\n"


def _actionformer_lines(af: dict[str, Any], files: dict[str, Any], centre: str) -> list[str]:
    labels, n_used = files["labels"], len(files["used_label_ids"])
    notes = [
        f"# ActionFormer (config YAML): row k of each feature file is centred at {centre}",
        f"# (feature offset: {_number(af['feat_offset'])} row(s) = 0.5 * num_frames / feat_stride)",
        f"# json_file subsets (set train_split / val_split): {_subsets(files, 'actionformer')}",
        f"# label_id i is line i (from 0) of {CLASS_LIST}",
    ]
    left_out = sum(files["opentad_subsets"].values()) - sum(files["actionformer_subsets"].values())
    if left_out:
        notes.append(
            f"# {left_out} video(s) with features but no action are left out of json_file "
            f"(ActionFormer's training asserts every video has one; {OPENTAD_JSON} has them)"
        )
    if n_used < len(labels):
        notes.append(
            f"# only {n_used} of the {len(labels)} classes occur in json_file, and ActionFormer "
            "asserts num_classes == the classes it finds: num_classes 1 (class-agnostic) here"
        )
    index, name = _THUMOS_DROPPED
    if len(labels) > index and labels[index] != name:
        notes.append(
            f"# dataset_name: thumos drops every label_id {index} (THUMOS14's {name}); here that "
            f"is {json.dumps(labels[index])}: use dataset_name: anet"
        )
    return [
        *notes,
        "dataset: {",
        *(f"  {k}: {_yaml(v)}," for k, v in af.items() if k != "feat_offset"),
        "  # plus max_seq_len, trunc_thresh, crop_ratio: training choices (ActionFormer's configs)",
        "}",
    ]


def _opentad_lines(ot: dict[str, Any], files: dict[str, Any], centre: str) -> list[str]:
    load = ot["load_feats"]
    return [
        f"# OpenTAD (config Python): row k of each feature file is centred at {centre}",
        f"annotation_path = {json.dumps(ot['ann_file'])}",
        f"class_map = {json.dumps(ot['class_map'])}",
        f"data_path = {json.dumps(ot['data_path'] + '/')}",
        f"block_list = {json.dumps(ot['block_list'])}  # videos without features",
        f"# annotation_path subsets (set subset_name): {_subsets(files, 'opentad')}",
        "dataset_settings = dict(",
        '    type="AnetPaddingDataset",  # ThumosPaddingDataset reads the file the same way',
        "    ann_file=annotation_path,",
        "    class_map=class_map,",
        "    data_path=data_path,",
        "    block_list=block_list,",
        f"    feature_stride={ot['feature_stride']},",
        f"    sample_stride={ot['sample_stride']},",
        f"    offset_frames={ot['offset_frames']},",
        f"    fps={_number(ot['fps'])},",
        ")",
        f'load_feats = dict(type="LoadFeats", feat_format="{load["feat_format"]}", '
        f"prefix={json.dumps(load['prefix'])})",
        f"# model: in_channels={ot['in_channels']}, num_classes={len(files['labels'])} "
        f"(the lines of {CLASS_LIST}; 1 with class_agnostic=True)",
        "# evaluation: ground_truth_filename=annotation_path, subset=<the subset_name tested>",
    ]


def _subsets(files: dict[str, Any], localizer: str) -> str:
    counts = files[f"{localizer}_subsets"]
    if not counts:
        return "none (no video with features has an action)"
    return ", ".join(f"{k} ({n} video{'' if n == 1 else 's'})" for k, n in counts.items())


def _number(value: float) -> str:
    """A number as Python and YAML read it back exactly (``15`` for 15.0)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _yaml(value: Any) -> str:
    """A scalar as YAML flow text (strings double-quoted: an empty prefix stays a string)."""
    return json.dumps(value) if isinstance(value, str) else _number(value)


def main(argv: list[str] | None = None) -> None:
    """Print the ActionFormer and OpenTAD config snippets for a feature folder."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="feature folder, e.g. data/features/initial")
    args = parser.parse_args(argv)
    print(format_snippets(args.folder), end="")


if __name__ == "__main__":
    from tsp_pretrain.cli import run_stage

    run_stage(main)
