"""``decode.frame_size``: every frame resized to exactly H x W (the recipe's 128 x 171 rule)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from videos import write_video

from tsp_pretrain.config import ConfigError, DecodeParams, parse_params
from tsp_pretrain.video.decode import decode_dataset, estimate_store_bytes
from tsp_pretrain.video.store import FrameStore, StoreSettings

# a 16:9 source, as most of ActivityNet; frame_size (16, 21) has the recipe's odd width
HEIGHT, WIDTH = 36, 64


def _table() -> pd.DataFrame:
    return pd.DataFrame({"video_id": ["wide"], "filename": ["wide.mp4"], "duration": [2.0]})


@pytest.fixture
def wide(tmp_path):
    write_video(tmp_path / "videos" / "wide.mp4", num_frames=60, height=HEIGHT, width=WIDTH)
    return tmp_path / "videos"


@pytest.mark.parametrize("store", ["npy", "mp4"])
def test_both_size_rules_store_the_expected_shape(tmp_path, wide, store):
    kept = StoreSettings(frame_rate=15, short_side=16, store=store)
    exact = StoreSettings(frame_rate=15, short_side=None, store=store, frame_size=(16, 21))
    # short side 16 keeps 16:9: 16 x 28.4 -> 28 (even for mp4 too); frame_size: exactly 16 x 21
    for settings, shape in ((kept, (16, 28)), (exact, (16, 21))):
        out = tmp_path / f"frames-{shape[1]}"
        report = decode_dataset(_table(), wide, out, settings, progress=False)
        assert report.decoded == ["wide"]
        store_ = FrameStore(out)
        entry = store_.entries["wide"]
        assert (entry.height, entry.width) == shape
        video = store_.open("wide")
        assert tuple(video.read_clip(3, 16).shape) == (16, *shape, 3)
        frames = list(video.iter_frames())
        assert len(frames) == 30 and all(f.shape == (*shape, 3) for f in frames)


def test_the_mp4_store_crops_its_padding_and_matches_the_npy_store(tmp_path, wide):
    """The odd width is coded one column wider in mp4; what comes back is the npy store's
    picture (up to H.264 loss), the padding column gone, the last real column intact."""
    clips = {}
    for store in ("npy", "mp4"):
        settings = StoreSettings(frame_rate=15, short_side=None, store=store, frame_size=(16, 21))
        decode_dataset(_table(), wide, tmp_path / store, settings, progress=False)
        clips[store] = FrameStore(tmp_path / store).read_clip("wide", 0, 30).numpy()
    diff = np.abs(clips["npy"].astype(int) - clips["mp4"].astype(int))
    assert clips["mp4"].shape == clips["npy"].shape == (30, 16, 21, 3)
    assert diff.mean() < 3 and diff[:, :, -1].mean() < 6


def test_changing_frame_size_decodes_again_and_the_same_is_reused(tmp_path, wide):
    out = tmp_path / "frames"
    first = StoreSettings(frame_rate=15, short_side=None, store="npy", frame_size=(16, 21))
    assert decode_dataset(_table(), wide, out, first, progress=False).decoded == ["wide"]
    # read back from index.json (a list there): still equal, so reused
    assert decode_dataset(_table(), wide, out, first, progress=False).reused == ["wide"]
    second = StoreSettings(frame_rate=15, short_side=None, store="npy", frame_size=(20, 24))
    assert decode_dataset(_table(), wide, out, second, progress=False).decoded == ["wide"]
    assert FrameStore(out).open("wide").read_clip(0, 1).shape[1:3] == (20, 24)
    kept = StoreSettings(frame_rate=15, short_side=16, store="npy")
    assert decode_dataset(_table(), wide, out, kept, progress=False).decoded == ["wide"]
    assert FrameStore(out).open("wide").read_clip(0, 1).shape[1:3] == (16, 28)


def test_store_settings_need_exactly_one_size_rule():
    with pytest.raises(ValueError, match="exactly one"):
        StoreSettings(frame_rate=15, short_side=16, store="npy", frame_size=(16, 21))
    with pytest.raises(ValueError, match="exactly one"):
        StoreSettings(frame_rate=15, short_side=None, store="npy")


def test_frame_size_param_is_validated_and_overrides_short_side():
    assert DecodeParams().frame_size is None and DecodeParams().stored_short_side == 128
    recipe = parse_params({"decode": {"frame_size": [128, 171], "short_side": 64}}).decode
    assert recipe.frame_size == (128, 171)
    assert recipe.stored_short_side is None  # editing short_side then re-decodes nothing
    for bad in ([4, 171], [128], [128, 171, 3], "128x171"):
        with pytest.raises(ConfigError, match=r"decode\.frame_size"):
            parse_params({"decode": {"frame_size": bad}})


def test_the_disk_estimate_uses_the_fixed_size():
    table = pd.DataFrame({"duration": [10.0], "width": [1280], "height": [720]})
    npy = StoreSettings(frame_rate=15, short_side=None, store="npy", frame_size=(128, 171))
    assert estimate_store_bytes(table, npy) == 150 * 128 * 171 * 3
    kept = StoreSettings(frame_rate=15, short_side=128, store="npy")
    assert estimate_store_bytes(table, kept) == 150 * 128 * 228 * 3
    at16 = {"frame_size": (128, 171), "mp4_keyint": 16}  # the interval the figures were made at
    mp4 = StoreSettings(frame_rate=15, short_side=None, store="mp4", **at16)
    assert estimate_store_bytes(table, mp4) == int(150 * 128 * 172 * 0.25)  # coded padded
    # the fidelity settings cost more: twice the size per 6 CRF steps down; RGB 2.3x
    fine = StoreSettings(15, None, "mp4", mp4_crf=6, mp4_pix_fmt="yuv444p", **at16)
    assert estimate_store_bytes(table, fine) == int(150 * 128 * 172 * 0.25 * 4)
    rgb = StoreSettings(15, None, "mp4", mp4_crf=18, mp4_pix_fmt="rgb24", **at16)
    assert estimate_store_bytes(table, rgb) == int(150 * 128 * 172 * 0.25 * 2.3)
    # a keyframe every 8 frames (the default): 1.16x (bench/input_pipeline.py)
    every8 = StoreSettings(15, None, "mp4", frame_size=(128, 171))
    assert estimate_store_bytes(table, every8) / estimate_store_bytes(table, mp4) == pytest.approx(
        1.16, abs=0.01
    )
