"""A real tiny feature folder, read the way ActionFormer and OpenTAD read theirs.

The folder comes from the real chain: tiny mp4 files -> build_annotations (one annotated video has
no file) -> decode_dataset (one video left out, as a decoding skip) -> extract_dataset with the
tiny backbone. The loaders below are re-implemented from the localizers' own code, independently
of tsp_pretrain (only the config values come from tsp_pretrain.features.localizers).
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

from tsp_pretrain.annotations import build_annotations, write_annotations
from tsp_pretrain.digest import file_digest
from tsp_pretrain.features import localizers
from tsp_pretrain.features.extract import extract_dataset
from tsp_pretrain.features.outputs import annotated_but_skipped, encoder_description, write_h5
from tsp_pretrain.models.encoder import build_encoder
from tsp_pretrain.training.checkpoint import load_encoder_file, save_encoder
from tsp_pretrain.video.decode import decode_dataset
from tsp_pretrain.video.store import FrameStore, StoreSettings

CLIP_LEN, STRIDE, FPS, LENGTH = 8, 4, 15.0, 5


def _annotations(tmp, videos_dir):
    database = {
        vid: {
            "subset": "training",
            "duration": seconds,
            "annotations": [{"segment": [0.0, min(seconds, 1.0)], "label": "A"}],
        }
        for vid, seconds in (("a", 3.0), ("b", 2.0), ("c", 2.0), ("short", 0.4), ("absent", 2.0))
    }
    path = tmp / "anet.json"
    path.write_text(json.dumps({"database": database}))
    result = build_annotations(
        "activitynet",
        path,
        videos_dir,
        clip_seconds=0.3,
        min_background=0.0,
        duration_tolerance=1.0,
        workers=1,
        progress=False,
    )
    write_annotations(result, tmp / "annotations")
    return database, result.videos


def _extract(store, videos, out, encoder_file, ann_dir, *, h5, fixed_length):
    state = load_encoder_file(encoder_file)
    return extract_dataset(
        build_encoder(state["backbone"], str(encoder_file)).module,
        store,
        videos,
        out,
        settings={"v": 1},
        clip_len=CLIP_LEN,
        stride=STRIDE,
        frame_rate=FPS,
        crop_size=16,
        batch_size=4,
        device=torch.device("cpu"),
        encoder_info=encoder_description(state, encoder_file, file_digest(encoder_file)),
        skipped=annotated_but_skipped(ann_dir),
        h5=h5,
        fixed_length=fixed_length,
        progress=False,
    )


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("localizers")
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
    return {
        "out": out,
        "tmp": tmp,
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


# --- OpenTAD (PaddingDataset.get_dataset, LoadFeats, AnetPaddingDataset) -------------------------


def _opentad_dataset(cfg, database):
    """OpenTAD's get_dataset (block_list) and LoadFeats for every video it keeps."""
    with open(cfg["block_list"]) as f:
        blocked = [line.rstrip("\n") for line in f]
    snippet_stride = int(cfg["feature_stride"] * cfg["sample_stride"])
    loaded = {}
    for video_name in database:
        if video_name in blocked:
            continue
        load = cfg["load_feats"]
        path = os.path.join(
            cfg["data_path"], f"{load['prefix']}{video_name}{''}.{load['feat_format']}"
        )
        feats = np.load(path).astype(np.float32)[:: cfg["sample_stride"]]
        # gt (t * fps - offset_frames) / snippet_stride, so feature k is centred at:
        times = (np.arange(len(feats)) * snippet_stride + int(cfg["offset_frames"])) / cfg["fps"]
        loaded[video_name] = feats, times
    return blocked, loaded


def test_opentad_blocks_exactly_the_videos_without_features_and_times_match(folder):
    out = folder["out"]
    cfg = localizers.configs_for_folder(out)["opentad"]
    blocked, loaded = _opentad_dataset(cfg, folder["database"])
    # "absent": annotated, no file (annotation report); "c": not in the frame store (decoding)
    assert blocked == ["absent", "c"]
    assert sorted(loaded) == ["a", "b", "short"]
    for vid, (feats, times) in loaded.items():
        assert feats.shape[1] == cfg["in_channels"] == folder["feature_dim"]
        _, centres = _clip_centres(out, vid)
        np.testing.assert_allclose(times, centres, atol=1e-9)


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
    assert meta["fps"] == FPS and meta["clip_len"] == CLIP_LEN and meta["stride"] == STRIDE
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
    assert "(k * stride + clip_len / 2) / fps" in meta["row_time"]


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


def test_cli_prints_snippets_that_parse_to_the_folder_values(folder, capsys):
    out = folder["out"]
    localizers.main([str(out)])
    text = capsys.readouterr().out
    af_text, ot_text = text.split("\n\n")
    af = yaml.safe_load(af_text)["dataset"]
    assert af == {
        "feat_folder": str(out / "features.hdf5"),
        "file_prefix": "v_",
        "file_ext": ".npy",
        "input_dim": folder["feature_dim"],
        "feat_stride": STRIDE,
        "num_frames": CLIP_LEN,
        "default_fps": FPS,
        "downsample_rate": 1,
    }
    namespace: dict = {}
    exec(ot_text, namespace)  # the OpenTAD snippet is Python by design
    ds, load = namespace["dataset_settings"], namespace["load_feats"]
    assert ds["data_path"] == f"{out}/" and ds["block_list"] == str(out / "missing_files.txt")
    assert (ds["feature_stride"], ds["sample_stride"], ds["offset_frames"], ds["fps"]) == (
        STRIDE,
        1,
        CLIP_LEN // 2,
        FPS,
    )
    assert load == {"type": "LoadFeats", "feat_format": "npy", "prefix": "v_"}


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
