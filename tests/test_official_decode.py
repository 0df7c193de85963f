"""``decode.method: official``: the released TSP code's frames (tsp_pretrain/video/official.py).

The expected frames are computed here independently: the 30 fps standardisation's rule from the
source timestamps (a frame at time t falls in slot round_half_up(30 t); slot n shows the last
frame in slot n or earlier), then every 2nd slot; and the resize as the official transform
writes it (float / 255, bilinear, no antialiasing), compared in float.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
import torch
from videos import decode_all, frame_pattern

from tsp_pretrain.cli import is_user_error
from tsp_pretrain.video.decode import _subsampled_ranges, decode_dataset, decode_frames
from tsp_pretrain.video.encode import DETERMINISTIC_X264
from tsp_pretrain.video.official import OfficialRateError, bilinear_resize, subsampling_step
from tsp_pretrain.video.store import FrameStore, StoreSettings, read_index


def write_at_rate(path: Path, num_frames: int, fps: Fraction, height=32, width=48) -> Path:
    """Frame i (:func:`frame_pattern`) at exactly ``i / fps`` seconds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = 1 / fps
        stream.options = {"x264-params": DETERMINISTIC_X264, "crf": "0"}
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(frame_pattern(i, height, width), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def official_source_indices(num_frames: int, fps: Fraction, step: int = 2) -> list[int]:
    """Which source frame each stored frame is, by the official two-step rule."""
    slots = [math.floor(30 * Fraction(i) / fps + Fraction(1, 2)) for i in range(num_frames)]
    shown, j = [], 0
    for n in range(slots[0], slots[-1] + 1):
        while j + 1 < num_frames and slots[j + 1] <= n:
            j += 1
        shown.append(j)
    return shown[::step]


@pytest.mark.parametrize("fps", [Fraction(24), Fraction(25), Fraction(30000, 1001), Fraction(50)])
def test_official_frames_follow_the_two_step_rule(tmp_path, fps):
    num = int(40 * fps)  # 40 s: at 29.97 fps the two rules part only after a few seconds
    src = write_at_rate(tmp_path / "src.mp4", num, fps, height=16, width=24)
    source = decode_all(src)
    expected = official_source_indices(num, fps)
    frames = list(decode_frames(src, 15, short_side=None, method="official"))
    assert abs(len(frames) - len(expected)) <= 1  # the filter's end may add or drop one
    n = min(len(frames), len(expected))
    wrong = [k for k in range(n) if not np.array_equal(frames[k], source[expected[k]])]
    assert wrong == []
    # the one-step fps filter picks other frames for these sources
    one_step = list(decode_frames(src, 15, short_side=None, method="ffmpeg"))
    moved = [k for k in range(n) if not np.array_equal(one_step[k], source[expected[k]])]
    assert len(moved) > n // 20, len(moved)


def test_official_at_30_fps_is_every_second_frame_with_a_ceil_count(tmp_path):
    src = write_at_rate(tmp_path / "src.mp4", 61, Fraction(30))
    source = decode_all(src)
    frames = list(decode_frames(src, 15, short_side=None, method="official"))
    assert len(frames) == 31  # ceil(61 / 2): the official slice [::2]
    for k, frame in enumerate(frames):
        np.testing.assert_array_equal(frame, source[2 * k])
    ten = list(decode_frames(src, 10, short_side=None, method="official"))
    assert len(ten) == 21 and np.array_equal(ten[5], source[15])


def test_official_resize_is_float_bilinear_without_antialiasing(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "src.mp4"
    with av.open(str(path), "w") as container:  # detailed frames: antialiasing would show
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        stream.options = {"x264-params": DETERMINISTIC_X264}
        for i in range(8):
            image = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    source = np.stack(decode_all(path)[::2])
    stored = np.stack(list(decode_frames(path, 15, None, frame_size=(37, 53), method="official")))
    assert stored.shape == (4, 37, 53, 3)
    x = torch.from_numpy(source).permute(0, 3, 1, 2).float() / 255
    for antialias, close in ((False, True), (True, False)):
        ref = torch.nn.functional.interpolate(
            x, size=(37, 53), mode="bilinear", align_corners=False, antialias=antialias
        )
        diff = np.abs(stored / 255 - ref.permute(0, 2, 3, 1).numpy()).max()
        assert (diff <= 0.5 / 255 + 1e-6) == close, (antialias, diff)
    area = np.stack(list(decode_frames(path, 15, None, frame_size=(37, 53), method="ffmpeg")))
    assert np.abs(area.astype(int) - stored).max() > 10  # the other method really differs


def test_bilinear_resize_keeps_frames_already_at_size():
    frames = np.arange(2 * 4 * 6 * 3, dtype=np.uint8).reshape(2, 4, 6, 3)
    assert bilinear_resize(frames, (4, 6)) is frames


def test_official_rate_must_divide_30(tmp_path):
    assert [subsampling_step(r) for r in (30, 15, 10, 7.5, 1)] == [1, 2, 3, 4, 30]
    with pytest.raises(OfficialRateError, match=r"30/8 is not an integer.*decode.method: ffmpeg"):
        subsampling_step(8)
    src = write_at_rate(tmp_path / "v" / "a.mp4", 30, Fraction(30))
    videos = pd.DataFrame({"video_id": ["a"], "filename": ["a.mp4"], "duration": [1.0]})
    settings = StoreSettings(8, 16, "npy", method="official")
    with pytest.raises(OfficialRateError) as err:  # before anything is decoded
        decode_dataset(videos, src.parent, tmp_path / "store", settings, progress=False)
    assert is_user_error(err.value)
    assert not (tmp_path / "store").exists()


def test_lost_frames_map_onto_the_subsampled_frames():
    # 30 fps frames 3..6 lost: stored (every 2nd) frames 2 and 3 stand for them
    assert _subsampled_ranges([(3, 7)], 2) == [(2, 4)]
    assert _subsampled_ranges([(3, 4)], 2) == []  # an odd frame alone is never stored
    assert _subsampled_ranges([(0, 2), (10, 31)], 2) == [(0, 1), (5, 16)]
    assert _subsampled_ranges([(3, 7)], 1) == [(3, 7)]


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv444p", "rgb24"])
def test_mp4_store_pixel_formats_read_back_at_the_odd_recipe_width(tmp_path, pix_fmt):
    src = write_at_rate(tmp_path / "v" / "a.mp4", 30, Fraction(30), height=64, width=96)
    videos = pd.DataFrame({"video_id": ["a"], "filename": ["a.mp4"], "duration": [1.0]})
    common = {"frame_rate": 15, "short_side": None, "frame_size": (32, 43), "method": "official"}
    npy = StoreSettings(store="npy", **common)
    mp4 = StoreSettings(store="mp4", mp4_crf=0, mp4_pix_fmt=pix_fmt, **common)
    decode_dataset(videos, src.parent, tmp_path / "npy", npy, progress=False)
    decode_dataset(videos, src.parent, tmp_path / "mp4", mp4, progress=False)
    raw = FrameStore(tmp_path / "npy").open("a").read_array(0, 15).astype(int)
    coded = FrameStore(tmp_path / "mp4").open("a").read_array(0, 15).astype(int)
    assert coded.shape == raw.shape == (15, 32, 43, 3)
    error = np.abs(coded - raw).mean()
    # CRF 0: lossless in the coded format; RGB -> YUV -> RGB rounding remains, and 4:2:0
    # halves the colour resolution
    assert error < {"rgb24": 0.01, "yuv444p": 1.5, "yuv420p": 12}[pix_fmt], error
    entry = json.loads((tmp_path / "mp4" / "index.json").read_text())["videos"]["a"]["settings"]
    assert entry["mp4_crf"] == 0 and entry["mp4_pix_fmt"] == pix_fmt
    assert entry["method"] == "official"


def test_store_settings_read_from_an_older_index_are_the_ffmpeg_method(tmp_path):
    """An index written before ``method`` and the mp4 options existed: what it was made with."""
    old = {"frame_rate": 15, "short_side": 16, "store": "mp4", "code": "x", "frame_size": None}
    entry = {
        "video_id": "a",
        "file": "a.mp4",
        "num_frames": 3,
        "height": 16,
        "width": 24,
        "source": "a.mp4",
        "source_digest": "d",
        "settings": old,
    }
    (tmp_path / "index.json").write_text(json.dumps({"videos": {"a": entry}}))
    settings = read_index(tmp_path)["a"].settings
    assert (settings.method, settings.mp4_crf, settings.mp4_pix_fmt) == ("ffmpeg", 18, "yuv420p")
    assert StoreSettings(15, 16, "npy", mp4_crf=5).mp4_crf is None  # npy has no mp4 options


def test_official_store_is_the_same_with_worker_processes(tmp_path):
    for name in ("a", "b"):
        write_at_rate(tmp_path / "v" / f"{name}.mp4", 20, Fraction(25), height=48, width=64)
    videos = pd.DataFrame({"video_id": ["a", "b"], "filename": ["a.mp4", "b.mp4"]})
    videos["duration"] = 0.8
    settings = StoreSettings(15, None, "npy", frame_size=(32, 43), method="official")
    for workers in (1, 2):
        decode_dataset(videos, tmp_path / "v", tmp_path / f"w{workers}", settings, workers, False)
    for name in ("a", "b"):
        one = (tmp_path / "w1" / f"{name}.npy").read_bytes()
        assert one == (tmp_path / "w2" / f"{name}.npy").read_bytes()
