"""Decoding, resampling, the frame store and the clip reader."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from videos import decode_all, write_video

from tsp_pretrain.video.decode import decode_dataset, decode_frames, target_size
from tsp_pretrain.video.store import FrameStore, FrameStoreError, StoreSettings


def test_resample_30_to_15_takes_every_second_frame(tmp_path):
    src = write_video(tmp_path / "a.mp4", num_frames=60, fps=30)
    direct = decode_all(src)
    frames = list(decode_frames(src, frame_rate=15, short_side=None))
    assert len(direct) == 60
    assert len(frames) == 30
    for k, frame in enumerate(frames):
        np.testing.assert_array_equal(frame, direct[2 * k])


def test_resample_picks_nearest_source_frame(tmp_path):
    # 30 -> 12 fps, FFmpeg's fps rule: output k is the last source frame starting before
    # (k + 0.5) / 12 s, i.e. source frame ceil((k + 0.5) * 2.5) - 1: 1, 3, 6, 8, 11, ...
    src = write_video(tmp_path / "a.mp4", num_frames=60, fps=30)
    direct = decode_all(src)
    frames = list(decode_frames(src, frame_rate=12, short_side=None))
    assert len(frames) == 24
    expected = [int(np.ceil((k + 0.5) * 2.5)) - 1 for k in range(24)]
    for frame, i in zip(frames, expected, strict=True):
        np.testing.assert_array_equal(frame, direct[i])


def test_upsampling_repeats_frames(tmp_path):
    src = write_video(tmp_path / "a.mp4", num_frames=15, fps=15)
    frames = list(decode_frames(src, frame_rate=30, short_side=None))
    assert len(frames) == 30
    np.testing.assert_array_equal(frames[0], frames[1])


def test_resize_to_short_side(tmp_path):
    src = write_video(tmp_path / "a.mp4", num_frames=10, fps=30, height=32, width=48)
    frames = list(decode_frames(src, frame_rate=30, short_side=16))
    assert frames[0].shape == (16, 24, 3)
    assert target_size(128, 171, 112, even=False) == (112, 150)
    assert target_size(720, 1280, 128, even=False) == (128, 228)
    assert target_size(100, 171, 64, even=True) == (64, 110)  # 109.4 -> nearest even


def _table(**durations):
    return pd.DataFrame(
        {
            "video_id": list(durations),
            "filename": [f"{v}.mp4" for v in durations],
            "duration": list(durations.values()),
        }
    )


@pytest.mark.parametrize("store", ["npy", "mp4"])
def test_decode_dataset_reports_bad_files_and_resumes(tmp_path, store):
    videos = tmp_path / "videos"
    write_video(videos / "good.mp4", num_frames=60)
    write_video(videos / "short.mp4", num_frames=30)
    (videos / "empty.mp4").write_bytes(b"")
    good = (videos / "good.mp4").read_bytes()
    (videos / "cut.mp4").write_bytes(good[: len(good) // 2])  # moov atom lost: unreadable
    table = _table(good=2.0, short=9.0, empty=1.0, cut=2.0, gone=2.0)
    settings = StoreSettings(frame_rate=15, short_side=16, store=store)
    out = tmp_path / "frames"

    report = decode_dataset(table, videos, out, settings, workers=1, progress=False)
    assert report.decoded == ["good"]
    reasons = {s["video_id"]: s["reason"] for s in report.skipped}
    assert set(reasons) == {"short", "empty", "cut", "gone"}
    assert "truncated" in reasons["short"]
    assert "0 bytes" in reasons["empty"]
    assert "not found" in reasons["gone"]
    store_ = FrameStore(out)
    assert store_.video_ids == ["good"]
    assert store_.open("good").num_frames == 30

    again = decode_dataset(table, videos, out, settings, workers=1, progress=False)
    assert again.reused == ["good"] and again.decoded == []

    changed = StoreSettings(frame_rate=10, short_side=16, store=store)
    third = decode_dataset(table.iloc[:1], videos, out, changed, workers=1, progress=False)
    assert third.decoded == ["good"]
    assert FrameStore(out).open("good").num_frames == 20


def test_decode_dataset_parallel_matches_serial(tmp_path):
    videos = tmp_path / "videos"
    for name in "abc":
        write_video(videos / f"{name}.mp4", num_frames=30)
    table = _table(a=1.0, b=1.0, c=1.0)
    settings = StoreSettings(frame_rate=15, short_side=16, store="npy")
    decode_dataset(table, videos, tmp_path / "serial", settings, workers=1, progress=False)
    decode_dataset(table, videos, tmp_path / "parallel", settings, workers=2, progress=False)
    for name in "abc":
        a = np.load(tmp_path / "serial" / f"{name}.npy")
        b = np.load(tmp_path / "parallel" / f"{name}.npy")
        np.testing.assert_array_equal(a, b)


SMALL_NPY = StoreSettings(frame_rate=15, short_side=16, store="npy")


def _decoded_store(tmp_path, *names: str):
    """One-second source videos ``names`` decoded into a small npy store: (videos dir, store)."""
    videos, out = tmp_path / "videos", tmp_path / "frames"
    for name in names:
        write_video(videos / f"{name}.mp4", num_frames=30)
    decode_dataset(_table(**dict.fromkeys(names, 1.0)), videos, out, SMALL_NPY, progress=False)
    return videos, out


def test_a_changed_source_of_the_same_size_is_decoded_again(tmp_path):
    videos, out = _decoded_store(tmp_path, "a")
    data = bytearray((videos / "a.mp4").read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other content
    (videos / "a.mp4").write_bytes(bytes(data))
    report = decode_dataset(_table(a=1.0), videos, out, SMALL_NPY, progress=False)
    assert report.reused == [] and (report.decoded == ["a"] or len(report.skipped) == 1)


def test_index_entries_in_an_older_format_are_decoded_again(tmp_path):
    videos, out = _decoded_store(tmp_path, "a")
    index = json.loads((out / "index.json").read_text())
    index["videos"]["a"]["source_bytes"] = index["videos"]["a"].pop("source_digest")
    (out / "index.json").write_text(json.dumps(index))
    report = decode_dataset(_table(a=1.0), videos, out, SMALL_NPY, progress=False)
    assert report.decoded == ["a"]


def test_stale_videos_are_removed(tmp_path):
    videos, out = _decoded_store(tmp_path, "a", "b")
    report = decode_dataset(_table(a=1.0), videos, out, SMALL_NPY, progress=False)
    assert report.removed == ["b"]
    assert not (out / "b.npy").exists()
    assert FrameStore(out).video_ids == ["a"]


def test_temporary_files_of_an_interrupted_run_are_removed(tmp_path):
    videos, out = _decoded_store(tmp_path, "a")
    for name in ("b.npy.tmp", "b.raw.tmp", "index.json.tmp"):
        (out / name).write_bytes(b"partial")
    (out / "notes").mkdir()  # a folder a user put there is left alone, not a crash
    report = decode_dataset(_table(a=1.0), videos, out, SMALL_NPY, progress=False)
    assert report.reused == ["a"]
    assert sorted(p.name for p in out.iterdir()) == ["a.npy", "index.json", "notes"]


@pytest.fixture(params=["npy", "mp4"])
def stored(request, tmp_path):
    write_video(tmp_path / "v" / "a.mp4", num_frames=60)
    settings = StoreSettings(frame_rate=15, short_side=16, store=request.param)
    decode_dataset(_table(a=2.0), tmp_path / "v", tmp_path / "f", settings, progress=False)
    return FrameStore(tmp_path / "f").open("a")


def test_clip_reader_inside_video(stored):
    clip = stored.read_clip(4, 8)
    assert clip.dtype == torch.uint8 and clip.shape == (8, 16, 24, 3)
    frames = np.stack(list(stored.iter_frames()))
    assert len(frames) == stored.num_frames == 30
    np.testing.assert_array_equal(clip.numpy(), frames[4:12])


def test_clip_reader_pads_past_the_end_with_last_frame(stored):
    frames = np.stack(list(stored.iter_frames()))
    clip = stored.read_clip(25, 16).numpy()
    assert clip.shape[0] == 16
    np.testing.assert_array_equal(clip[:5], frames[25:30])
    for k in range(5, 16):
        np.testing.assert_array_equal(clip[k], frames[-1])
    beyond = stored.read_clip(40, 4).numpy()
    np.testing.assert_array_equal(beyond, np.stack([frames[-1]] * 4))


def test_clip_reader_rejects_negative_start(stored):
    with pytest.raises(ValueError, match="start"):
        stored.read_clip(-1, 4)


def test_missing_store_and_video_errors(tmp_path):
    with pytest.raises(FrameStoreError, match="decode stage"):
        FrameStore(tmp_path)
    write_video(tmp_path / "v" / "a.mp4", num_frames=30)
    settings = StoreSettings(frame_rate=15, short_side=16, store="npy")
    decode_dataset(_table(a=1.0), tmp_path / "v", tmp_path / "f", settings, progress=False)
    with pytest.raises(FrameStoreError, match="not in the store"):
        FrameStore(tmp_path / "f").open("zzz")
