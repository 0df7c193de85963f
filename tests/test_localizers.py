"""A real tiny feature folder and its annotation files, read as ActionFormer and OpenTAD read them.

The folder comes from the real chain: tiny mp4 files -> build_annotations (one annotated video has
no file) -> decode_dataset (one video left out, as a decoding skip) -> extract_dataset with the
tiny backbone -> write_localizer_annotations (as the extraction stage does). The loaders below are
re-implemented from the localizers' own code (ActionFormer: libs/datasets/anet.py, thumos14.py;
OpenTAD: datasets/base/padding_dataset.py, anet.py, thumos.py, transforms/loading.py),
independently of tsp_pretrain: only the config values come from tsp_pretrain.features.localizers.
"""

from __future__ import annotations

import json
import os
import shutil

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from videos import write_video

from tsp_pretrain.annotations import (
    AnnotationRules,
    AnnotationSource,
    build_annotations,
    write_annotations,
)
from tsp_pretrain.config import ClipSpec
from tsp_pretrain.digest import file_digest
from tsp_pretrain.features import localizers
from tsp_pretrain.features.extract import extract_dataset
from tsp_pretrain.features.outputs import annotated_but_skipped, write_h5
from tsp_pretrain.features.spec import (
    ExtractionRun,
    FeatureSpec,
    OutputSpec,
    encoder_description,
)
from tsp_pretrain.models.encoder import build_encoder
from tsp_pretrain.models.encoder_file import load_encoder_file, save_encoder
from tsp_pretrain.video.decode import decode_dataset
from tsp_pretrain.video.store import FrameStore, StoreSettings

CLIP_LEN, STRIDE, FPS, LENGTH = 8, 4, 15.0, 5


def _annotations(tmp, videos_dir):
    def entry(subset, seconds, *actions):
        return {
            "subset": subset,
            "duration": seconds,
            "annotations": [{"segment": [s, e], "label": label} for s, e, label in actions],
        }

    database = {
        # overlapping actions, two classes
        "a": entry("training", 3.0, (0.0, 1.0, "A"), (0.5, 1.2, "A"), (1.5, 2.8, "B")),
        # the last action runs past the 2 s file: clipped to [1.5, 2.0]
        "b": entry("validation", 2.0, (0.2, 1.0, "B"), (1.5, 2.5, "C")),
        "c": entry("training", 2.0, (0.0, 1.0, "A")),  # not decoded: no features
        # its only action is shorter than a clip (0.3 s): dropped, the video has no action
        "short": entry("validation", 0.4, (0.0, 0.1, "A")),
        "absent": entry("training", 2.0, (0.0, 1.0, "A")),  # no video file
    }
    path = tmp / "anet.json"
    path.write_text(json.dumps({"database": database}))
    result = build_annotations(
        AnnotationSource("activitynet", path),
        videos_dir,
        AnnotationRules(clip_seconds=0.3, min_background=0.0, duration_tolerance=1.0),
        workers=1,
        progress=False,
    )
    write_annotations(result, tmp / "annotations")
    return database, result.videos


def _extract(store, videos, out, encoder_file, ann_dir, *, h5, fixed_length):
    state = load_encoder_file(encoder_file)
    run = ExtractionRun(
        FeatureSpec(ClipSpec(CLIP_LEN, FPS, crop_size=16), STRIDE),
        identity={"v": 1},
        batch_size=4,
        device=torch.device("cpu"),
        outputs=OutputSpec(
            encoder_description(state, encoder_file, file_digest(encoder_file)),
            h5=h5,
            fixed_length=fixed_length,
        ),
        skipped=tuple(annotated_but_skipped(ann_dir)),
        progress=False,
    )
    encoder = build_encoder(state["backbone"], str(encoder_file)).module
    return extract_dataset(encoder, store, videos, out, run)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("localizers").resolve()  # the snippets print resolved paths
    videos_dir = tmp / "videos"
    for name, frames in (("a", 90), ("b", 60), ("c", 60), ("short", 12)):
        write_video(videos_dir / f"v_{name}.mp4", num_frames=frames, height=32, width=32)
    database, videos = _annotations(tmp, videos_dir)
    decode_dataset(
        videos[videos["video_id"] != "c"],  # "c": as if decoding had skipped it
        videos_dir,
        tmp / "frames",
        StoreSettings(FPS, 20, "npy"),
        progress=False,
    )
    encoder = build_encoder("r2plus1d_tiny", "none")
    encoder_file = tmp / "encoder.pt"
    save_encoder(
        encoder_file,
        encoder.module,
        backbone_name="r2plus1d_tiny",
        feature_dim=encoder.feature_dim,
        info={"weights": "none", "pretrain_metrics": {"acc": 0.5}},
    )
    out = tmp / "features"
    counts = _extract(
        FrameStore(tmp / "frames"),
        videos,
        out,
        encoder_file,
        tmp / "annotations",
        h5=True,
        fixed_length=LENGTH,
    )
    assert counts == {"extracted": 3, "reused": 0, "missing": 1}
    # what the extraction stage does once the folder is finished
    written = localizers.write_localizer_annotations(tmp / "annotations", out)
    assert [p.name for p in written] == ["actionformer.json", "opentad.json", "category_idx.txt"]
    return {
        "out": out,
        "tmp": tmp,
        "annotations": tmp / "annotations",
        "database": database,
        "videos": videos,
        "encoder_file": encoder_file,
        "feature_dim": encoder.feature_dim,
    }


def _clip_centres(out, vid):
    clips = pd.read_csv(out / "clips.csv", dtype={"video_id": str})
    rows = clips[clips["video_id"] == vid].sort_values("clip_index")
    return rows, (rows["start_frame"].to_numpy() + CLIP_LEN / 2) / FPS


# --- ActionFormer (libs/datasets/anet.py, thumos14.py) -------------------------------------------


def _actionformer_load(cfg, video_id):
    """ActionFormer's __getitem__: path, np.load, T x C -> C x T, and the time of each column."""
    if ".hdf5" in cfg["feat_folder"]:
        with h5py.File(cfg["feat_folder"], "r") as h5:
            feats = np.asarray(h5[cfg["file_prefix"] + video_id][()], dtype=np.float32)
    else:
        filename = os.path.join(cfg["feat_folder"], cfg["file_prefix"] + video_id + cfg["file_ext"])
        feats = np.load(filename).astype(np.float32)
    feat_stride, num_frames, fps = cfg["feat_stride"], cfg["num_frames"], cfg["default_fps"]
    feats = np.ascontiguousarray(feats.transpose())
    # a time t maps to grid (t * fps - 0.5 * num_frames) / feat_stride; column k is at:
    times = (np.arange(feats.shape[1]) * feat_stride + 0.5 * num_frames) / fps
    return feats, times


@pytest.mark.parametrize("hdf5", [False, True])
def test_actionformer_reads_every_video_and_row_times_are_clip_centres(folder, hdf5):
    out = folder["out"]
    cfg = localizers.configs_for_folder(out)["actionformer"]
    if not hdf5:
        cfg = {**cfg, "feat_folder": str(out)}
    assert cfg["feat_folder"] == (str(out / "features.hdf5") if hdf5 else str(out))
    assert cfg["file_prefix"] == "v_" and cfg["file_ext"] == ".npy"
    assert cfg["input_dim"] == folder["feature_dim"]
    for vid in ("a", "b", "short"):
        raw = np.load(out / f"v_{vid}.npy")
        assert raw.dtype == np.float32 and raw.ndim == 2 and raw.shape[1] == cfg["input_dim"]
        feats, times = _actionformer_load(cfg, vid)
        np.testing.assert_array_equal(feats, raw.T)
        rows, centres = _clip_centres(out, vid)
        assert feats.shape[1] == len(rows)
        np.testing.assert_allclose(times, centres, atol=1e-9)
        full = rows["t_end"] - rows["t_start"] > CLIP_LEN / FPS - 1e-3
        np.testing.assert_allclose(
            times[full.to_numpy()], ((rows["t_start"] + rows["t_end"]) / 2)[full], atol=1e-4
        )
    short, short_times = _actionformer_load(cfg, "short")
    assert short.shape[1] == 1 and short_times[0] == pytest.approx(CLIP_LEN / 2 / FPS)


def _actionformer_json_db(cfg, split, *, thumos):
    """ActionFormer's _load_json_db (anet.py; thumos14.py when ``thumos``), as written there."""
    with open(cfg["json_file"]) as fid:
        json_db = json.load(fid)["database"]
    label_dict = {}
    for value in json_db.values():
        for act in value["annotations"]:
            label_dict[act["label"]] = act["label_id"]
    if thumos:
        assert len(label_dict) == cfg["num_classes"]
    else:
        assert cfg["num_classes"] == 1 or len(label_dict) == cfg["num_classes"]
    items = []
    for key, value in json_db.items():
        if value["subset"].lower() not in split:
            continue
        feat_file = os.path.join(cfg["feat_folder"], cfg["file_prefix"] + key + cfg["file_ext"])
        if thumos and not os.path.exists(feat_file):
            continue
        # without default_fps ActionFormer reads "fps" (assert False, "Unknown video FPS.")
        fps = cfg["default_fps"] if cfg["default_fps"] is not None else value["fps"]
        duration = value["duration"] if not thumos or "duration" in value else 1e8
        acts = value["annotations"]
        if thumos:  # it drops label_id 4 (CliffDiving, also labelled Diving)
            acts = [act for act in acts if act["label_id"] != 4]
        segments = np.array([act["segment"] for act in acts], dtype=np.float32) if acts else None
        labels = np.array([label_dict[act["label"]] for act in acts], dtype=np.int64)
        items.append(
            {
                "id": key,
                "fps": fps,
                "duration": duration,
                "segments": segments,
                "labels": labels if acts else None,
            }
        )
    return items, label_dict


def _canonical(folder):
    """The foreground segments and the class list of the annotation tables, read with pandas."""
    ann = folder["annotations"]
    segments = pd.read_csv(ann / "segments.csv", dtype={"video_id": str}, keep_default_na=False)
    videos = pd.read_csv(ann / "videos.csv", dtype={"video_id": str}).set_index("video_id")
    fg = segments[segments["region"] == "foreground"]
    return videos, fg, json.loads((ann / "labels.json").read_text())


def _grid_to_seconds(grid, centres):
    """A (fractional) feature row back to seconds with the rows' real times (clips.csv)."""
    return centres[0] + np.asarray(grid) * (centres[1] - centres[0])


@pytest.mark.parametrize("loader", ["anet", "thumos"])
@pytest.mark.parametrize("default_fps", [True, False])
def test_actionformer_reads_every_video_with_features_and_its_actions(folder, loader, default_fps):
    out = folder["out"]
    cfg = {**localizers.configs_for_folder(out)["actionformer"], "feat_folder": str(out)}
    if not default_fps:
        cfg["default_fps"] = None  # then each video's "fps" in json_file is used
    videos, fg, labels = _canonical(folder)
    classes = (out / "category_idx.txt").read_text(encoding="utf8").split("\n")
    assert classes[-1] == "" and classes[:-1] == labels == ["A", "B", "C"]
    assert cfg["num_classes"] == 3  # every class occurs in json_file
    items, label_dict = _actionformer_json_db(
        cfg, ["training", "validation", "testing"], thumos=loader == "thumos"
    )
    # "c": no features; "short": its only action was too short, and ActionFormer's training
    # asserts every video has one (the OpenTAD file keeps it)
    assert [item["id"] for item in items] == ["a", "b"]
    assert {label: labels[i] for label, i in label_dict.items()} == {k: k for k in labels}
    for item in items:
        vid = item["id"]
        expected = fg[fg["video_id"] == vid].sort_values(["t_start", "t_end"])
        np.testing.assert_allclose(
            item["segments"], expected[["t_start", "t_end"]].to_numpy(), rtol=1e-6, atol=1e-6
        )
        assert item["labels"].tolist() == expected["label_id"].tolist()
        assert [classes[i] for i in item["labels"]] == expected["label"].tolist()
        assert item["fps"] == FPS
        assert item["duration"] == pytest.approx(videos.at[vid, "duration"], abs=1e-6)
        # the feature grid ActionFormer trains on, back to seconds with the real row times
        _, times = _actionformer_load(cfg | {"default_fps": item["fps"]}, vid)
        grid = (item["segments"] * item["fps"] - 0.5 * cfg["num_frames"]) / cfg["feat_stride"]
        _, centres = _clip_centres(out, vid)
        np.testing.assert_allclose(times, centres, atol=1e-9)
        np.testing.assert_allclose(_grid_to_seconds(grid, centres), item["segments"], atol=1e-5)
    b = fg[fg["video_id"] == "b"]
    assert b["t_end"].max() == pytest.approx(2.0, abs=0.05)  # clipped to the file, as written


# --- OpenTAD (PaddingDataset, LoadFeats, Anet/ThumosPaddingDataset) ----------------------------


def _opentad_gt(cfg, info, class_map, *, thumos):
    """Anet/ThumosPaddingDataset.get_gt (filter_gt False), then __getitem__'s shift to rows."""
    segments, labels = [], []
    for anno in info["annotations"]:
        if thumos:
            if anno["label"] == "Ambiguous":
                continue
            start = int(anno["segment"][0] / info["duration"] * info["frame"])
            end = int(anno["segment"][1] / info["duration"] * info["frame"])
        else:
            fps = cfg["fps"] if cfg["fps"] > 0 else info["frame"] / info["duration"]
            start, end = anno["segment"][0] * fps, anno["segment"][1] * fps
        segments.append([start, end])
        labels.append(class_map.index(anno["label"]))
    if not segments:
        return None  # OpenTAD: "have no valid gt", the video is skipped
    snippet_stride = int(cfg["feature_stride"] * cfg["sample_stride"])
    rows = (np.array(segments, dtype=np.float32) - int(cfg["offset_frames"])) / snippet_stride
    return {"gt_segments": rows, "gt_labels": np.array(labels, dtype=np.int32)}


def _opentad_dataset(cfg, subset_name, *, thumos=False, test_mode=False):
    """PaddingDataset.get_class_map and get_dataset, and LoadFeats for every video it keeps."""
    with open(cfg["class_map"], encoding="utf8") as f:
        class_map = [item.rstrip("\n") for item in f.readlines()]
    with open(cfg["ann_file"]) as f:
        database = json.load(f)["database"]
    with open(cfg["block_list"]) as f:
        blocked = [line.rstrip("\n") for line in f]
    snippet_stride = int(cfg["feature_stride"] * cfg["sample_stride"])
    loaded = {}
    for video_name, info in database.items():
        if video_name in blocked or info["subset"] not in subset_name:
            continue
        anno = {} if test_mode else _opentad_gt(cfg, info, class_map, thumos=thumos)
        if anno is None:
            continue
        load = cfg["load_feats"]
        path = os.path.join(
            cfg["data_path"], f"{load['prefix']}{video_name}{''}.{load['feat_format']}"
        )
        feats = np.load(path).astype(np.float32)[:: cfg["sample_stride"]]
        fps = info["frame"] / info["duration"] if thumos else cfg["fps"]
        # gt (t * fps - offset_frames) / snippet_stride, so feature k is centred at:
        times = (np.arange(len(feats)) * snippet_stride + int(cfg["offset_frames"])) / fps
        loaded[video_name] = feats, times, anno
    return blocked, class_map, loaded


@pytest.mark.parametrize("thumos", [False, True])
def test_opentad_reads_every_video_with_features_its_actions_and_class_indices(folder, thumos):
    out = folder["out"]
    cfg = localizers.configs_for_folder(out)["opentad"]
    _, fg, labels = _canonical(folder)
    _, class_map, train = _opentad_dataset(cfg, "training", thumos=thumos)
    blocked, _, valid = _opentad_dataset(cfg, "validation", thumos=thumos)
    _, _, test = _opentad_dataset(cfg, "validation", thumos=thumos, test_mode=True)
    # "absent": annotated, no file (annotation report); "c": not in the frame store (decoding)
    assert blocked == ["absent", "c"]
    assert class_map == labels
    assert sorted(train) == ["a"] and sorted(valid) == ["b"]
    assert sorted(test) == ["b", "short"]  # "short" has no action: only inference reads it
    for vid, (feats, times, anno) in (train | valid).items():
        assert feats.shape[1] == cfg["in_channels"] == folder["feature_dim"]
        _, centres = _clip_centres(out, vid)
        np.testing.assert_allclose(times, centres, atol=1e-9)
        expected = fg[fg["video_id"] == vid].sort_values(["t_start", "t_end"])
        assert anno["gt_labels"].tolist() == expected["label_id"].tolist()
        seconds = _grid_to_seconds(anno["gt_segments"], centres)
        # ThumosPaddingDataset truncates to whole frames (its own rule): 1 frame at most
        np.testing.assert_allclose(
            seconds, expected[["t_start", "t_end"]].to_numpy(), atol=1 / FPS if thumos else 1e-5
        )


def test_missing_files_is_empty_when_nothing_is_missing(folder, tmp_path):
    tmp = folder["tmp"]
    videos = folder["videos"]
    ann = tmp_path / "annotations"
    ann.mkdir()
    (ann / "report.csv").write_text("video_id,t_start,t_end,label,issue,action,detail,source\n")
    _extract(
        FrameStore(tmp / "frames"),
        videos[videos["video_id"] != "c"],
        tmp_path / "f",
        folder["encoder_file"],
        ann,
        h5=False,
        fixed_length=0,
    )
    assert (tmp_path / "f" / "missing_files.txt").read_bytes() == b""


# --- meta.json --------------------------------------------------------------------------------


def test_meta_json_describes_the_folder(folder):
    out = folder["out"]
    text = (out / "meta.json").read_text()
    meta = json.loads(text)
    assert text == json.dumps(meta, indent=1, sort_keys=True) + "\n"  # sorted, deterministic
    assert meta["frame_rate"] == FPS and meta["clip_len"] == CLIP_LEN and meta["stride"] == STRIDE
    assert meta["first_clip_start_frame"] == 0 and meta["offset_frames"] == CLIP_LEN / 2
    assert meta["feature_dim"] == folder["feature_dim"]
    assert meta["file_prefix"] == "v_" and meta["file_ext"] == ".npy"
    assert meta["num_videos"] == 3 and meta["num_missing"] == 2
    enc = meta["encoder"]
    assert enc["backbone"] == "r2plus1d_tiny" and enc["weights"] == "none"
    assert enc["digest"] == file_digest(folder["encoder_file"])
    assert "pretrain_metrics" not in enc["info"]
    assert meta["hdf5"]["file"] == "features.hdf5"
    assert meta["fixed_length"]["folder"] == f"resized_{LENGTH}"
    assert "(k * stride + clip_len / 2) / frame_rate" in meta["row_time"]


# --- HDF5 -------------------------------------------------------------------------------------


def test_h5_equals_the_npy_files_and_its_bytes_are_reproducible(folder, tmp_path):
    out = folder["out"]
    files = sorted(p.name for p in out.glob("*.npy"))
    with h5py.File(out / "features.hdf5", "r") as h5:
        assert sorted(h5.keys()) == [f[:-4] for f in files] == ["v_a", "v_b", "v_short"]
        for f in files:
            ds = h5[f[:-4]]
            assert ds.dtype == np.float32 and ds.compression == "gzip"
            np.testing.assert_array_equal(ds[()], np.load(out / f))
            # no creation/modification time stored (it would change the bytes run to run)
            info = h5py.h5o.get_info(ds.id)
            assert (info.atime, info.mtime, info.ctime, info.btime) == (0, 0, 0, 0)
    write_h5(tmp_path / "again.hdf5", out, files)
    assert (tmp_path / "again.hdf5").read_bytes() == (out / "features.hdf5").read_bytes()
    assert not list(out.glob("*partial*"))


# --- fixed length -----------------------------------------------------------------------------


def test_fixed_length_equals_linear_interpolation(folder):
    out = folder["out"]
    sub = out / f"resized_{LENGTH}"
    assert sorted(p.name for p in sub.glob("*.npy")) == ["v_a.npy", "v_b.npy", "v_short.npy"]
    for name in ("v_a.npy", "v_b.npy", "v_short.npy"):
        feats = np.load(out / name)
        resized = np.load(sub / name)
        assert resized.shape == (LENGTH, feats.shape[1]) and resized.dtype == np.float32
        t = len(feats)
        positions = (np.arange(LENGTH) + 0.5) * t / LENGTH - 0.5  # align_corners=False
        expected = np.stack(
            [np.interp(positions, np.arange(t), feats[:, c]) for c in range(feats.shape[1])],
            axis=1,
        )
        np.testing.assert_allclose(resized, expected, rtol=1e-6, atol=1e-6)
        # the torch call OpenTAD's ResizeFeat("interpolate") and ActionFormer make
        ref = torch.nn.functional.interpolate(
            torch.from_numpy(feats).T[None], size=LENGTH, mode="linear", align_corners=False
        )[0].T.numpy()
        np.testing.assert_allclose(resized, ref, rtol=1e-5, atol=1e-5)
    with h5py.File(sub / "features.hdf5", "r") as h5:
        np.testing.assert_array_equal(h5["v_a"][()], np.load(sub / "v_a.npy"))


def test_turning_the_options_off_leaves_no_stale_copies(folder, tmp_path):
    copy = tmp_path / "features"
    shutil.copytree(folder["out"], copy)
    tmp, videos = folder["tmp"], folder["videos"]
    counts = _extract(
        FrameStore(tmp / "frames"),
        videos,
        copy,
        folder["encoder_file"],
        tmp / "annotations",
        h5=False,
        fixed_length=0,
    )
    assert counts["reused"] == 3 and counts["extracted"] == 0
    assert not (copy / "features.hdf5").exists()
    assert not (copy / f"resized_{LENGTH}").exists()
    meta = json.loads((copy / "meta.json").read_text())
    assert meta["hdf5"] is None and meta["fixed_length"] is None


# --- the command line and the published recipes ------------------------------------------------


def test_cli_prints_snippets_that_parse_to_the_folder_values(folder, capsys, monkeypatch):
    out = folder["out"]
    monkeypatch.chdir(out.parent)
    localizers.main(["features"])  # a relative folder: absolute paths in the snippets
    text = capsys.readouterr().out
    af_text, ot_text = text.split("\n\n")
    assert "as usual" not in text
    af = yaml.safe_load(af_text)["dataset"]
    assert af == {
        "json_file": str(out / "actionformer.json"),
        "feat_folder": str(out / "features.hdf5"),
        "file_prefix": "v_",
        "file_ext": ".npy",
        "num_classes": 3,
        "input_dim": folder["feature_dim"],
        "feat_stride": STRIDE,
        "num_frames": CLIP_LEN,
        "default_fps": FPS,
        "downsample_rate": 1,
    }
    assert (
        "# json_file subsets (set train_split / val_split): training (1 video), "
        "validation (1 video)" in af_text
    )
    namespace: dict = {}
    exec(ot_text, namespace)  # the OpenTAD snippet is Python by design
    ds, load = namespace["dataset_settings"], namespace["load_feats"]
    assert ds["type"] == "AnetPaddingDataset"
    assert ds["ann_file"] == str(out / "opentad.json")
    assert ds["class_map"] == str(out / "category_idx.txt")
    assert ds["data_path"] == f"{out}/" and ds["block_list"] == str(out / "missing_files.txt")
    assert (ds["feature_stride"], ds["sample_stride"], ds["offset_frames"], ds["fps"]) == (
        STRIDE,
        1,
        CLIP_LEN // 2,
        FPS,
    )
    assert load == {"type": "LoadFeats", "feat_format": "npy", "prefix": "v_"}
    assert "subset_name): training (1 video), validation (2 videos)" in ot_text
    assert "num_classes=3" in ot_text
    for path in (af["json_file"], af["feat_folder"], ds["ann_file"], ds["class_map"]):
        assert os.path.isabs(path) and os.path.exists(path)


def test_activitynet_recipe_gives_the_published_configs():
    common = dict(clip_len=16, frame_rate=15, stride=16, feature_dim=512, file_prefix="v_")
    af = localizers.actionformer_config("data/anet_1.3/tsp_features", **common)
    # happyharrycn/actionformer_release configs/anet_tsp.yaml
    assert {k: af[k] for k in ("file_prefix", "file_ext", "input_dim", "feat_stride")} == {
        "file_prefix": "v_",
        "file_ext": ".npy",
        "input_dim": 512,
        "feat_stride": 16,
    }
    assert af["num_frames"] == 16 and af["default_fps"] == 15 and af["feat_offset"] == 0.5
    ot = localizers.opentad_config("data/anet", **common)
    # sming256/OpenTAD configs/_base_/datasets/activitynet-1.3/features_tsp_pad.py
    assert (ot["feature_stride"], ot["sample_stride"], ot["offset_frames"], ot["fps"]) == (
        16,
        1,
        8,
        15,
    )
    assert ot["load_feats"] == {"type": "LoadFeats", "feat_format": "npy", "prefix": "v_"}
    thumos = localizers.opentad_config("x", **{**common, "stride": 1, "file_prefix": ""})
    assert thumos["feature_stride"] == 1 and thumos["offset_frames"] == 8


def test_odd_clip_len_is_refused_for_opentad():
    with pytest.raises(localizers.LocalizerConfigError, match="odd"):
        localizers.opentad_config(
            "x", clip_len=15, frame_rate=15, stride=1, feature_dim=8, file_prefix=""
        )


def test_files_not_named_by_video_id_are_an_error_for_the_cli(tmp_path):
    from tsp_pretrain.features.outputs import file_prefix

    assert file_prefix({"a": "v_a.npy", "b": "v_b.npy"}) == "v_"
    assert file_prefix({"a": "v_a.npy", "b": "b.npy"}) is None  # two prefixes
    assert file_prefix({"a": "clip_7.npy"}) is None  # the stem does not end in the id
    (tmp_path / "meta.json").write_text(json.dumps({"file_prefix": None, "feature_dim": 8}))
    with pytest.raises(localizers.LocalizerConfigError, match="not all named"):
        localizers.main([str(tmp_path)])
    with pytest.raises(FileNotFoundError, match="run the extract stage"):
        localizers.main([str(tmp_path / "nothing")])


# --- the annotation files on hand-made tables -------------------------------------------------

VIDEO_COLUMNS = ["video_id", "filename", "subset", "duration", "fps", "num_frames"]
SEGMENT_COLUMNS = ["video_id", "t_start", "t_end", "label", "label_id", "region"]
LABELS = ["Jump", "Run", "Swim", "Walk", "Zumba"]


def _hand_made(root, *, prefix="", labels=LABELS, stray=False, unlisted=False):
    """Canonical tables and a finished feature folder (meta.json, missing_files.txt, .npy)."""
    videos = [
        ("z", f"sub/{prefix}z.mp4", "training", 10.123456789, 30.0, 304),
        ("a", f"{prefix}a.mp4", "testing", 4.0, 25.0, 100),  # unlabelled: no segment
        ("m", f"{prefix}m.mp4", "validation", 6.0, 30.0, 180),  # labelled, no action left
        ("q", f"{prefix}q.mp4", "training", 5.0, 30.0, 150),  # no features (decoding skipped)
    ]
    segments = [
        ("m", 0.0, 6.0, "", -1, "background"),
        ("z", 0.0, 0.1 + 0.2, "", -1, "background"),
        ("z", 0.1 + 0.2, 1.0, "Jump", 0, "foreground"),
        ("z", 2.0000004, 5.1234567, "Run", 1, "foreground"),
        ("z", 5.1234567, 10.123456789, "", -1, "background"),
        ("q", 1.0, 2.0, "Run", 1, "foreground"),
    ]
    ann = root / "annotations"
    ann.mkdir(parents=True)
    pd.DataFrame(videos, columns=VIDEO_COLUMNS).to_csv(ann / "videos.csv", index=False)
    pd.DataFrame(segments, columns=SEGMENT_COLUMNS).to_csv(ann / "segments.csv", index=False)
    (ann / "labels.json").write_text(json.dumps(labels))
    features = root / "features"
    features.mkdir()
    for vid, filename, *_ in videos:
        if vid != "q":  # features take the video file's stem
            stem = os.path.splitext(os.path.basename(filename))[0]
            np.save(features / f"{stem}.npy", np.ones((3, 4), np.float32))
    if stray:
        np.save(features / f"{prefix}other.npy", np.ones((3, 4), np.float32))
    (features / "missing_files.txt").write_text("" if unlisted else "q\n")
    meta = {
        "frame_rate": 15.0,
        "clip_len": 16,
        "stride": 16,
        "feature_dim": 4,
        "file_prefix": prefix,
    }
    (features / "meta.json").write_text(json.dumps(meta | {"hdf5": None}))
    return ann, features


def test_the_files_are_sorted_rounded_and_byte_identical_run_to_run(tmp_path):
    ann, features = _hand_made(tmp_path)
    written = localizers.write_localizer_annotations(ann, features)
    first = [p.read_bytes() for p in written]
    localizers.write_localizer_annotations(ann, features)
    assert [p.read_bytes() for p in written] == first
    assert not list(features.glob("*partial*"))
    af_text = (features / "actionformer.json").read_text()
    assert af_text == json.dumps(json.loads(af_text), sort_keys=True) + "\n"
    af = json.loads(af_text)["database"]
    ot = json.loads((features / "opentad.json").read_text())["database"]
    # "a": unlabelled test video, kept for inference; "m": labelled without action (ActionFormer
    # would assert in training), only in OpenTAD's file, which skips it itself; "q": no features
    assert list(af) == ["a", "z"] and list(ot) == ["a", "m", "z"]
    assert af["a"] == {"subset": "testing", "duration": 4.0, "fps": 15.0, "annotations": []}
    assert af["z"] == {
        "subset": "training",
        "duration": 10.123457,
        "fps": 15.0,  # the features' rate, not the video's 30
        "annotations": [
            {"segment": [0.3, 1.0], "label": "Jump", "label_id": 0},
            {"segment": [2.0, 5.123457], "label": "Run", "label_id": 1},
        ],
    }
    assert ot["z"] == {
        "subset": "training",
        "duration": 10.123457,
        "frame": 151.851852,  # duration * 15: OpenTAD's frame / duration is the features' fps
        "annotations": [
            {"segment": [0.3, 1.0], "label": "Jump"},
            {"segment": [2.0, 5.123457], "label": "Run"},
        ],
    }
    assert (features / "category_idx.txt").read_text() == "Jump\nRun\nSwim\nWalk\nZumba\n"


def test_snippets_say_what_actionformer_cannot_take(tmp_path):
    ann, features = _hand_made(tmp_path)
    localizers.write_localizer_annotations(ann, features)
    text = localizers.format_snippets(features)
    af = yaml.safe_load(text.split("\n\n")[0])["dataset"]
    assert af["num_classes"] == 1 and af["file_prefix"] == ""
    assert "only 2 of the 5 classes occur in json_file" in text
    assert "1 video(s) with features but no action are left out of json_file" in text
    assert (
        'label_id 4 (THUMOS14\'s CliffDiving); here that is "Zumba": use dataset_name: anet' in text
    )
    assert "(set train_split / val_split): testing (1 video), training (1 video)\n" in text
    assert "(set subset_name): testing (1 video), training (1 video), validation (1 video)" in text
    assert "num_classes=5" in text


def test_tables_that_do_not_match_the_folder_are_refused(tmp_path):
    stray = r"not extracted from .*1 feature file\(s\) of no annotated video \(e\.g\. other\.npy\)"
    ann, features = _hand_made(tmp_path / "stray", stray=True)
    with pytest.raises(localizers.LocalizerConfigError, match=stray):
        localizers.write_localizer_annotations(ann, features)
    unlisted = r"1 annotated video\(s\) have no features and are not in missing_files\.txt"
    ann, features = _hand_made(tmp_path / "unlisted", unlisted=True)
    with pytest.raises(localizers.LocalizerConfigError, match=unlisted):
        localizers.write_localizer_annotations(ann, features)
    # a folder whose meta.json names another prefix than the files: the localizers' path fails
    ann, features = _hand_made(tmp_path / "prefix", prefix="v_")
    meta = json.loads((features / "meta.json").read_text())
    (features / "meta.json").write_text(json.dumps(meta | {"file_prefix": "x_"}))
    with pytest.raises(localizers.LocalizerConfigError, match=r"v_z\.npy \(not x_z\.npy\)"):
        localizers.write_localizer_annotations(ann, features)


def test_class_names_with_line_breaks_and_folders_without_the_files_are_errors(tmp_path):
    ann, features = _hand_made(tmp_path, labels=["Jump", "Ru\nn"])
    with pytest.raises(localizers.LocalizerConfigError, match="line breaks"):
        localizers.write_localizer_annotations(ann, features)
    with pytest.raises(localizers.LocalizerConfigError, match="run the extract stage again"):
        localizers.format_snippets(features)
