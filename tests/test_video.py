"""Decoding, resampling, the frame store and the clip reader."""

from __future__ import annotations

import json
from collections import namedtuple
from types import SimpleNamespace

import av
import numpy as np
import pandas as pd
import pytest
import torch
from videos import (
    decode_all,
    overwrite_with_garbage,
    write_audio_only,
    write_coded,
    write_faststart_video,
    write_marked_video,
    write_video,
)

from tsp_pretrain.atomic import partial_path
from tsp_pretrain.config import ClipSpec
from tsp_pretrain.data.sampling import avoid_lost_frames, sample_clips
from tsp_pretrain.features.extract import _write_clips_table
from tsp_pretrain.video import decode as decode_module
from tsp_pretrain.video.decode import (
    DecodeLog,
    DiskSpaceError,
    decode_dataset,
    decode_frames,
    estimate_store_bytes,
    target_size,
)
from tsp_pretrain.video.probe import TruncatedVideoError, VideoProbeError, probe_video
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
    # The DVC-tracked report describes the store, so a resumed run writes the same bytes.
    assert again.to_json() == report.to_json()
    assert report.to_json()["counts"] == {"stored": 1, "skipped": 4, "damaged": 0}

    changed = StoreSettings(frame_rate=10, short_side=16, store=store)
    third = decode_dataset(table.iloc[:1], videos, out, changed, workers=1, progress=False)
    assert third.decoded == ["good"]
    assert FrameStore(out).open("good").num_frames == 20


def test_a_failed_write_stops_the_run_and_is_no_skipped_video(tmp_path, monkeypatch):
    # A full disk is no bad video: the run stops with the error, as with several workers, and
    # the video is not reported both decoded and skipped.
    videos = tmp_path / "videos"
    write_video(videos / "a.mp4", num_frames=30)
    settings = StoreSettings(frame_rate=15, short_side=16, store="npy")

    def disk_full(out_dir, entry):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(decode_module, "write_pending_entry", disk_full)
    with pytest.raises(OSError, match="No space left"):
        decode_dataset(
            _table(a=1.0), videos, tmp_path / "frames", settings, workers=1, progress=False
        )


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


# ------------------------------------------------------------------------- display rotation


def _marker_corner(frame: np.ndarray) -> str:
    """Which corner of ``frame`` holds the bright marker."""
    h, w = frame.shape[:2]
    corners = {
        "top-left": frame[: h // 4, : w // 4],
        "top-right": frame[: h // 4, -w // 4 :],
        "bottom-left": frame[-h // 4 :, : w // 4],
        "bottom-right": frame[-h // 4 :, -w // 4 :],
    }
    return max(corners, key=lambda k: corners[k].mean())


@pytest.mark.parametrize(
    ("pyav_degrees", "clockwise", "corner"),
    [
        (None, 0, "top-left"),
        (-90, 90, "top-right"),
        (90, 270, "bottom-left"),
        (180, 180, "bottom-right"),
    ],
)
def test_display_rotation_is_applied_as_ffmpeg_does(tmp_path, pyav_degrees, clockwise, corner):
    # A phone held upright stores a landscape picture and a display matrix saying "turn it 90
    # degrees clockwise" (ffprobe: rotation -90, `rotate=90` in old FFmpeg's metadata).
    src = write_marked_video(tmp_path / "phone.mp4", display_rotation=pyav_degrees)
    info = probe_video(src)
    portrait = clockwise in (90, 270)
    assert info.rotation == clockwise
    assert (info.width, info.height) == ((32, 48) if portrait else (48, 32))
    frames = list(decode_frames(src, frame_rate=30, short_side=None))
    assert frames[0].shape == ((48, 32, 3) if portrait else (32, 48, 3))
    assert _marker_corner(frames[0]) == corner
    settings = StoreSettings(frame_rate=30, short_side=16, store="mp4")
    decode_dataset(_table(phone=0.2), tmp_path, tmp_path / "f", settings, progress=False)
    entry = FrameStore(tmp_path / "f").entries["phone"]
    assert (entry.height, entry.width) == ((24, 16) if portrait else (16, 24))


# ------------------------------------------------------------------------- truncated downloads


def test_probe_detects_a_partial_download_with_the_index_first(tmp_path):
    src = write_faststart_video(tmp_path / "full.mp4", num_frames=150)
    assert probe_video(src).duration == pytest.approx(5.0)
    data = src.read_bytes()
    cut = tmp_path / "part.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    with pytest.raises(TruncatedVideoError, match=r"part\.mp4: truncated") as caught:
        probe_video(cut)
    err = caught.value
    assert err.duration == pytest.approx(5.0)
    assert 1.0 < err.readable_duration < 4.0
    assert f"{err.readable_duration:.2f} s" in str(err) and "% readable" in str(err)
    # decoding it directly (no annotation stage in between) skips it the same way, unpadded
    settings = StoreSettings(frame_rate=15, short_side=16, store="npy")
    report = decode_dataset(_table(part=5.0), tmp_path, tmp_path / "f", settings, progress=False)
    assert report.decoded == [] and "part.mp4: truncated" in report.skipped[0]["reason"]


def test_the_annotation_stage_reports_a_partial_download_as_unreadable(tmp_path):
    from tsp_pretrain.annotations.canonical import probe_videos
    from tsp_pretrain.video.manifest import VideoIndex, manifest_frame, scan_videos

    data = write_faststart_video(tmp_path / "full.mp4", num_frames=150).read_bytes()
    (tmp_path / "part.mp4").write_bytes(data[: int(len(data) * 0.6)])
    videos = pd.DataFrame({"video_id": ["full", "part"], "filename": ["full.mp4", "part.mp4"]})
    index = VideoIndex(manifest_frame(scan_videos(tmp_path)[0]), tmp_path)
    probed = probe_videos(videos, tmp_path, locate=index.locate, workers=1, progress=False)
    probed = probed.set_index("video_id")
    assert probed.at["full", "problem"] == "" and probed.at["full", "duration"] == 5.0
    assert probed.at["part", "problem"] == "unreadable_video"
    assert "part.mp4: truncated" in probed.at["part", "message"]


# ------------------------------------------------------------------------- corrupt stretches


def _corrupt_source(tmp_path):
    """A 5 s 30 fps faststart video with garbage over its middle, and its clean 15 fps frames."""
    src = write_faststart_video(tmp_path / "videos" / "bad.mp4", num_frames=150, keyint=30)
    clean = list(decode_frames(src, frame_rate=15, short_side=None))
    overwrite_with_garbage(src, at=0.5, size=600)
    return src, clean


def test_decoding_goes_past_corrupt_packets_and_records_the_lost_frames(tmp_path):
    src, clean = _corrupt_source(tmp_path)
    log = DecodeLog()
    frames = list(decode_frames(src, frame_rate=15, short_side=None, report=log))
    assert len(frames) == len(clean) == 75  # the timeline is kept
    assert log.bad_packets > 0 and "Invalid data" in log.first_error
    assert len(log.lost) == 1
    lo, hi = log.lost[0]
    assert 0 < lo < hi < 75 and log.lost_frames == hi - lo < 40
    for k in [*range(lo), *range(hi, 75)]:  # outside the lost range: the clean pixels
        np.testing.assert_array_equal(frames[k], clean[k])
    for k in range(lo, hi - 1):  # inside: the last good frame repeated
        np.testing.assert_array_equal(frames[k], frames[lo])

    settings = StoreSettings(frame_rate=15, short_side=64, store="npy")
    report = decode_dataset(_table(bad=5.0), src.parent, tmp_path / "f", settings, progress=False)
    assert report.decoded == ["bad"] and report.skipped == []
    (damage,) = report.to_json()["damaged"]
    assert damage["lost_frames"] == hi - lo and damage["lost_frame_ranges"] == [[lo, hi]]
    assert damage["lost_seconds"] == [[round(lo / 15, 3), round(hi / 15, 3)]]
    stored = FrameStore(tmp_path / "f").open("bad")
    assert stored.lost == ((lo, hi),) and stored.num_frames == 75
    np.testing.assert_array_equal(np.stack(list(stored.iter_frames())), np.stack(frames))


def test_a_lost_end_keeps_the_timeline_and_is_marked_lost(tmp_path):
    # garbage near the end and no keyframe after it: nothing decodes after the damage
    src = write_faststart_video(tmp_path / "videos" / "end.mp4", num_frames=150, keyint=250)
    overwrite_with_garbage(src, at=0.95, size=300)
    settings = StoreSettings(frame_rate=15, short_side=64, store="npy")
    report = decode_dataset(_table(end=5.0), src.parent, tmp_path / "f", settings, progress=False)
    assert report.decoded == ["end"]
    (damage,) = report.damaged
    lo, hi = damage["lost_frame_ranges"][-1]
    assert 50 < lo < hi == 75
    stored = FrameStore(tmp_path / "f").open("end")
    assert stored.num_frames == 75 and stored.lost[-1] == (lo, hi)
    frames = np.stack(list(stored.iter_frames()))
    for k in range(lo, hi):  # the last good frame repeated to the end
        np.testing.assert_array_equal(frames[k], frames[lo])


def test_a_video_mostly_unreadable_is_skipped_with_the_fraction(tmp_path):
    src, _ = _corrupt_source(tmp_path)
    settings = StoreSettings(frame_rate=15, short_side=64, store="npy")
    report = decode_dataset(
        _table(bad=5.0),
        src.parent,
        tmp_path / "f",
        settings,
        progress=False,
        min_readable_fraction=0.9,
    )
    (skip,) = report.skipped
    assert "bad.mp4: corrupt" in skip["reason"] and "min_readable_fraction=0.9" in skip["reason"]
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == ["index.json"]


def test_training_never_samples_clips_over_lost_frames():
    segments = pd.DataFrame(
        {
            "video_id": ["a", "a", "b"],
            "t_start": [0.0, 10.0, 0.0],
            "t_end": [8.0, 11.5, 8.0],
            "region": ["foreground", "background", "foreground"],
            "label_id": [3, -1, 4],
        }
    )
    lost = {"a": [(30, 60)], "b": []}  # a: frames 30-59 (2 s .. 4 s at 15 fps)
    rng = np.random.default_rng(0)
    clip = ClipSpec(clip_len=16, frame_rate=15, crop_size=112)
    clips = sample_clips(segments, clip=clip, clips_per_segment=200, rng=rng, lost=lost)
    a = clips[clips["video_id"] == "a"]["start_frame"].to_numpy()
    assert len(clips) == 600
    assert not ((a > 30 - 16) & (a < 60)).any()
    assert (a <= 14).any() and (a >= 60).any()  # both sides of the gap are still used
    # a segment with no clip free of lost frames gives no clips
    assert avoid_lost_frames(20, 15, 25, 16, [(10, 50)]) is None
    assert avoid_lost_frames(20, 0, 100, 16, [(30, 40)]) == 14
    validation = sample_clips(
        segments.iloc[:1],
        clip=clip,
        clips_per_segment=5,
        rng=None,
        lost={"a": [(0, 200)]},
    )
    assert validation.empty


def test_extraction_marks_windows_over_lost_frames(tmp_path):
    index = SimpleNamespace(
        videos={"a": {"file": "a.npy", "num_clips": 5, "num_frames": 80, "lost": [[30, 40]]}}
    )
    _write_clips_table(index, tmp_path, clip_len=16, stride=16, frame_rate=15)
    clips = pd.read_csv(tmp_path / "clips.csv")
    assert clips["start_frame"].tolist() == [0, 16, 32, 48, 64]  # one row per window
    assert clips["lost_frames"].tolist() == [0, 1, 1, 0, 0]


# ------------------------------------------------------------------------- failures leave nothing


def test_a_failed_decode_leaves_only_the_index_and_finished_videos(tmp_path):
    videos, out = tmp_path / "videos", tmp_path / "frames"
    write_video(videos / "good.mp4", num_frames=30)
    (videos / "junk.mp4").write_bytes(np.random.default_rng(0).bytes(5000))
    write_video(videos / "short.mp4", num_frames=30)  # decodes, then fails the length check
    out.mkdir()
    # an older decode of junk.mp4 (its source since replaced), dropped from the index as outdated
    (out / "junk.npy").write_bytes(b"frames of an older junk.mp4")
    killed = partial_path(out / "short.npy")  # what a killed worker leaves behind
    killed.write_bytes(b"half a video")
    table = _table(good=1.0, junk=1.0, short=9.0)
    settings = StoreSettings(frame_rate=15, short_side=16, store="npy")
    report = decode_dataset(table, videos, out, settings, progress=False)
    assert report.decoded == ["good"] and len(report.skipped) == 2
    assert sorted(p.name for p in out.iterdir()) == ["good.npy", "index.json"]


# ------------------------------------------------------------------------- disk space


DiskUsage = namedtuple("DiskUsage", "total used free")


def test_decode_fails_early_when_the_store_cannot_fit(tmp_path, monkeypatch):
    videos, out = tmp_path / "videos", tmp_path / "frames"
    write_video(videos / "a.mp4", num_frames=30)
    table = _table(a=1.0).assign(width=48, height=32)
    settings = StoreSettings(frame_rate=15, short_side=16, store="npy")
    assert estimate_store_bytes(table, settings) == 15 * 16 * 24 * 3
    free = {"bytes": 10_000}
    monkeypatch.setattr(
        decode_module.shutil,
        "disk_usage",
        lambda path: DiskUsage(total=10**12, used=0, free=free["bytes"]),
    )
    hours = _table(a=3 * 3600.0)  # no size columns: 16:9 assumed
    with pytest.raises(DiskSpaceError) as caught:
        decode_dataset(hours, videos, out, settings, progress=False)
    message = str(caught.value)
    assert "needs ~" in message and "GB in" in message and str(out) in message
    assert "decode.store: mp4" in message and "decode.short_side" in message
    assert sorted(p.name for p in out.iterdir()) == ["index.json"]  # nothing decoded
    free["bytes"] = 10**9
    report = decode_dataset(_table(a=1.0), videos, out, settings, progress=False)
    assert report.decoded == ["a"]


# ------------------------------------------------------------------------- the usual odd inputs

ODD_BUT_VALID = {
    # name: (writer arguments, expected stored (frames, height, width) at 15 fps, short side 16)
    "one.mp4": ({"codec": "libx264", "num_frames": 1}, (1, 16, 24)),
    "tiny.mp4": ({"codec": "libx264", "height": 16, "width": 16}, (5, 16, 16)),
    "odd.mkv": ({"codec": "ffv1", "height": 33, "width": 47, "pix_fmt": "yuv444p"}, (5, 16, 23)),
    "hevc10.mp4": (
        {
            "codec": "libx265",
            "height": 64,
            "width": 96,
            "pix_fmt": "yuv420p10le",
            "options": {"x265-params": "log-level=error"},
        },
        (5, 16, 24),
    ),
    "vfr.mp4": ({"codec": "libx264", "num_frames": 20, "vfr": True}, (15, 16, 24)),
    "seven.mp4": ({"codec": "libx264", "num_frames": 14, "fps": 7}, (30, 16, 24)),
    "portrait.mp4": ({"codec": "libx264", "height": 48, "width": 32}, (5, 24, 16)),
    "vp9.webm": ({"codec": "libvpx-vp9"}, (5, 16, 24)),
    "av1.mkv": ({"codec": "libsvtav1", "height": 64, "width": 64}, (5, 16, 16)),
    "naïve 日本.mp4": ({"codec": "libx264"}, (5, 16, 24)),
}


@pytest.mark.parametrize("name", sorted(ODD_BUT_VALID))
def test_odd_but_valid_videos_are_probed_and_decoded(tmp_path, name):
    kwargs, (frames, height, width) = ODD_BUT_VALID[name]
    src = write_coded(tmp_path / "v" / name, **kwargs)
    info = probe_video(src)
    assert info.rotation == 0 and info.num_frames > 0
    table = pd.DataFrame({"video_id": ["x"], "filename": [name], "duration": [info.duration]})
    settings = StoreSettings(frame_rate=15, short_side=16, store="npy")
    report = decode_dataset(table, tmp_path / "v", tmp_path / "f", settings, progress=False)
    assert report.decoded == ["x"] and report.damaged == []
    stored = FrameStore(tmp_path / "f").open("x")
    assert (stored.num_frames, stored.entry.height, stored.entry.width) == (frames, height, width)


def test_unusable_files_are_reported_by_the_probe(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("not a video")
    write_audio_only(tmp_path / "audio.mp4")
    expected = {"empty.mp4": "0 bytes", "text.mp4": "cannot be read", "audio.mp4": "no video"}
    for name, reason in expected.items():
        with pytest.raises(VideoProbeError, match=reason):
            probe_video(tmp_path / name)


def test_a_lost_start_keeps_the_timeline(tmp_path):
    """Damage in the first keyframe: without padding, the fps filter would start the timeline at
    the next keyframe (1 s later) and shift every frame, and every annotation, by 1 s."""
    src = write_faststart_video(tmp_path / "start.mp4", num_frames=150, keyint=30)
    clean = list(decode_frames(src, frame_rate=15, short_side=None))
    with av.open(str(src)) as container:
        first = next(p for p in container.demux(video=0) if p.size)
        pos, size = first.pos, first.size
    data = bytearray(src.read_bytes())
    data[pos + size // 2 : pos + size] = np.random.default_rng(0).bytes(size - size // 2)
    src.write_bytes(bytes(data))
    log = DecodeLog()
    frames = list(decode_frames(src, frame_rate=15, short_side=None, report=log))
    assert log.bad_packets > 0 and len(frames) == len(clean) == 75
    lo, hi = log.lost[0]
    assert lo == 0 and 10 < hi < 40  # the first keyframe interval (1 s = 15 frames) and margins
    for k in range(hi, 75):  # after the lost start: the clean frame of the same index
        np.testing.assert_array_equal(frames[k], clean[k])
    for k in range(hi - 1):  # the lost start holds the first good frame
        np.testing.assert_array_equal(frames[k], frames[hi - 1])
