"""Clip sampling, sliding windows, the learning-rate schedule and GVF pooling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from tsp_pretrain.config import ClipSpec
from tsp_pretrain.data.sampling import (
    BACKGROUND_TARGET,
    FOREGROUND_TARGET,
    sample_clips,
    sliding_windows,
)
from tsp_pretrain.features.extract import iter_windows
from tsp_pretrain.features.gvf import global_video_features
from tsp_pretrain.regions import BACKGROUND, BACKGROUND_LABEL_ID, FOREGROUND
from tsp_pretrain.training.schedule import build_scheduler

SEGMENTS = pd.DataFrame(
    {
        "video_id": ["a", "a", "b"],
        "t_start": [0.0, 4.0, 1.0],
        "t_end": [4.0, 10.0, 2.0],
        "label": ["", "jump", "run"],
        "label_id": [-1, 0, 1],
        "region": [BACKGROUND, FOREGROUND, FOREGROUND],
    }
)
RECIPE_CLIP = ClipSpec(clip_len=16, frame_rate=15, crop_size=112)  # 16 / 15 s
ONE_SECOND = ClipSpec(clip_len=10, frame_rate=10, crop_size=112)


def test_training_clips_lie_inside_their_segment():
    clips = sample_clips(
        SEGMENTS,
        clip=RECIPE_CLIP,
        clips_per_segment=50,
        rng=np.random.default_rng(0),
    )
    assert len(clips) == 150
    seg = SEGMENTS.loc[SEGMENTS.index.repeat(50)].reset_index(drop=True)
    start_s = clips["start_frame"] / 15
    assert (start_s >= seg["t_start"] - 0.5 / 15).all()
    assert (
        start_s + 16 / 15 <= np.maximum(seg["t_end"], seg["t_start"] + 16 / 15) + 0.5 / 15
    ).all()
    assert set(clips.loc[seg["region"] == BACKGROUND, "action"]) == {BACKGROUND_LABEL_ID}
    assert set(clips.loc[seg["region"] == BACKGROUND, "region"]) == {BACKGROUND_TARGET}
    assert set(clips.loc[seg["label"] == "jump", "action"]) == {0}
    assert set(clips.loc[seg["label"] == "jump", "region"]) == {FOREGROUND_TARGET}
    # the 1 s segment is shorter than a clip: its clips start at the segment start
    assert set(clips.loc[seg["label"] == "run", "start_frame"]) == {15}


def test_validation_clips_are_evenly_spaced_and_fixed():
    a = sample_clips(SEGMENTS, clip=ONE_SECOND, clips_per_segment=5, rng=None)
    b = sample_clips(SEGMENTS, clip=ONE_SECOND, clips_per_segment=5, rng=None)
    pd.testing.assert_frame_equal(a, b)
    # 4 s .. 9 s in 5 steps; frame = round(t * fps), ties to even (52.5 -> 52)
    assert a["start_frame"].iloc[5:10].tolist() == [40, 52, 65, 78, 90]


def test_training_clips_differ_between_epochs_but_repeat_for_a_seed():
    def draw(epoch):
        return sample_clips(
            SEGMENTS,
            clip=ONE_SECOND,
            clips_per_segment=5,
            rng=np.random.default_rng([0, epoch]),
        )

    pd.testing.assert_frame_equal(draw(1), draw(1))
    assert not draw(1).equals(draw(2))


@pytest.mark.parametrize(
    ("n", "clip_len", "stride", "expected"),
    [
        (64, 16, 16, [0, 16, 32, 48]),
        (63, 16, 16, [0, 16, 32]),  # the tail that does not fill a clip is dropped
        (20, 16, 2, [0, 2, 4]),
        (10, 16, 16, [0]),  # shorter than one clip: one padded clip
    ],
)
def test_sliding_windows(n, clip_len, stride, expected):
    assert sliding_windows(n, clip_len, stride).tolist() == expected
    assert len(expected) == (max((n - clip_len) // stride + 1, 1))


@pytest.mark.parametrize(
    ("n", "clip_len", "stride"), [(40, 8, 3), (40, 8, 8), (40, 4, 10), (5, 8, 8), (8, 8, 1)]
)
def test_iter_windows_matches_slicing(n, clip_len, stride):
    frames = np.arange(n)[:, None, None, None] * np.ones((1, 2, 2, 3), dtype=np.int64)
    got = list(iter_windows(iter(frames), n, clip_len, stride))
    assert [s for s, _ in got] == sliding_windows(n, clip_len, stride).tolist()
    for start, clip in got:
        idx = np.minimum(np.arange(start, start + clip_len), n - 1)
        np.testing.assert_array_equal(clip, frames[idx])


def test_iter_windows_reports_a_short_read():
    frames = np.zeros((10, 2, 2, 3))
    with pytest.raises(RuntimeError, match="expected 20 frames"):
        list(iter_windows(iter(frames), 20, 8, 8))


def test_schedule_warmup_then_steps():
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=1.0)
    sched = build_scheduler(
        opt, iters_per_epoch=10, warmup_epochs=2, warmup_factor=0.01, milestones=[4, 6], gamma=0.1
    )
    lrs = []
    for _ in range(80):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.01)
    assert lrs[10] == pytest.approx(0.01 + 0.99 * 10 / 20)
    assert lrs[20] == pytest.approx(1.0)
    assert lrs[39] == pytest.approx(1.0)
    assert lrs[40] == pytest.approx(0.1)
    assert lrs[60] == pytest.approx(0.01)


def test_gvf_pools_over_time():
    feats = {"a": np.array([[1.0, 5.0], [3.0, -1.0]], dtype=np.float32)}
    assert global_video_features(feats, "max")["a"].tolist() == [3.0, 5.0]
    assert global_video_features(feats, "avg")["a"].tolist() == [2.0, 2.0]
    with pytest.raises(ValueError, match="video b"):
        global_video_features({"b": np.zeros((0, 2))})
