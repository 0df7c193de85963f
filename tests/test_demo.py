"""Tests of the synthetic demo dataset (tsp_pretrain.demo) on tiny generated datasets."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import av
import numpy as np
import pytest
from pydantic import ValidationError

from tsp_pretrain.config import DemoParams
from tsp_pretrain.demo import ANNOTATION_FILE, CLASSES, make_demo_dataset
from tsp_pretrain.demo.motions import (
    MotionParams,
    SegmentMotion,
    action_offsets,
    idle_offsets,
    low_pass_noise,
    motion_stats,
    sample_idle_motion,
    sample_motion,
    trajectory,
)
from tsp_pretrain.demo.plan import frame_count
from tsp_pretrain.video.probe import probe_video

TINY = dict(
    num_train_videos=4,
    num_valid_videos=3,
    num_empty_videos=1,
    min_duration=8.0,
    max_duration=10.0,
    min_segment=2.0,
    max_segment=3.0,
    min_gap=1.0,
    max_segments=2,
    size=32,
    trimmed_per_class=2,
    trimmed_duration=1.0,
)


def tiny(**overrides) -> DemoParams:
    return DemoParams(**{**TINY, **overrides})


def decode(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def load(root: Path, part: str) -> dict:
    with (root / part / ANNOTATION_FILE).open() as f:
        return json.load(f)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "data"
    make_demo_dataset(tiny(), out, progress=False)
    return out


def test_layout_has_exactly_the_promised_files(demo):
    files = {p.relative_to(demo).as_posix() for p in demo.rglob("*") if p.is_file()}
    untrimmed, trimmed = load(demo, "untrimmed")["database"], load(demo, "trimmed")["database"]
    expected = {"summary.json", f"untrimmed/{ANNOTATION_FILE}", f"trimmed/{ANNOTATION_FILE}"}
    expected |= {f"untrimmed/videos/v_{vid}.mp4" for vid in untrimmed}
    expected |= {f"trimmed/videos/v_{vid}.mp4" for vid in trimmed}
    assert files == expected
    assert len(untrimmed) == 4 + 3
    assert len(trimmed) == 2 * len(CLASSES)


def test_activitynet_json_format(demo):
    doc = load(demo, "untrimmed")
    assert doc["version"] == "VERSION 1.3"
    root = [n for n in doc["taxonomy"] if n["parentId"] is None]
    leaves = [n for n in doc["taxonomy"] if n["parentId"] is not None]
    assert len(root) == 1
    assert all(n["parentId"] == root[0]["nodeId"] for n in leaves)
    assert [n["nodeName"] for n in leaves] == list(CLASSES)
    subsets = [v["subset"] for v in doc["database"].values()]
    assert subsets.count("training") == 4 and subsets.count("validation") == 3
    for video in doc["database"].values():
        assert video["resolution"] == "32x32" and video["url"] == ""
        for a in video["annotations"]:
            assert a["label"] in CLASSES
            assert all(round(x, 2) == x for x in a["segment"])


def test_segments_lie_inside_the_probed_file_duration(demo):
    for part in ("untrimmed", "trimmed"):
        for vid, video in load(demo, part)["database"].items():
            info = probe_video(demo / part / "videos" / f"v_{vid}.mp4")
            assert info.fps == 30 and (info.width, info.height) == (32, 32)
            assert abs(info.duration - video["duration"]) < 1e-6, vid
            assert info.num_frames == round(video["duration"] * 30)
            bounds = sorted(a["segment"] for a in video["annotations"])
            for s, e in bounds:
                assert 0 <= s < e <= video["duration"], (vid, s, e)
            for (_, e0), (s1, _) in itertools.pairwise(bounds):
                assert s1 - e0 >= TINY["min_gap"] - 0.011, vid  # rounding to 0.01 s


def test_empty_videos_and_segments_touching_the_ends(demo):
    db = load(demo, "untrimmed")["database"]
    for subset in ("training", "validation"):
        empty = [v for v in db.values() if v["subset"] == subset and not v["annotations"]]
        assert len(empty) == TINY["num_empty_videos"]
    segments = [(a["segment"], v["duration"]) for v in db.values() for a in v["annotations"]]
    assert any(s == 0 for (s, _), _ in segments)
    assert any(e == d for (_, e), d in segments)
    assert any(s > 0 and e < d for (s, e), d in segments)


def test_trimmed_set_covers_every_class_in_both_subsets(demo):
    db = load(demo, "trimmed")["database"]
    for subset in ("training", "validation"):
        labels = {
            a["label"] for v in db.values() if v["subset"] == subset for a in v["annotations"]
        }
        assert labels == set(CLASSES), subset
    for video in db.values():
        assert video["duration"] == 1.0
        assert [a["segment"] for a in video["annotations"]] == [[0.0, 1.0]]


def test_summary_counts_match_the_annotations(demo):
    summary = json.loads((demo / "summary.json").read_text())
    db = load(demo, "untrimmed")["database"]
    train = [v for v in db.values() if v["subset"] == "training"]
    assert summary["classes"] == list(CLASSES)
    assert summary["untrimmed"]["training"]["videos"] == len(train)
    assert summary["untrimmed"]["training"]["segments"] == sum(len(v["annotations"]) for v in train)
    assert summary["untrimmed"]["training"]["seconds"] == pytest.approx(
        sum(v["duration"] for v in train)
    )
    assert summary["params"]["seed"] == 0


def test_other_seed_gives_other_videos(demo, tmp_path):
    """(The same seed giving the same bytes is tests/test_demo_reproducible.py's.)"""
    other = tmp_path / "other"
    make_demo_dataset(tiny(seed=1), other, progress=False)
    assert load(other, "untrimmed") != load(demo, "untrimmed")
    path = "trimmed/videos/v_trim_0000.mp4"
    assert not np.array_equal(decode(demo / path), decode(other / path))


def _region_frames(video: dict, num_frames: int, margin: float = 0.4) -> tuple[np.ndarray, ...]:
    """Boolean masks of frames well inside an action and well outside every action."""
    t = np.arange(num_frames) / 30
    fg, near = np.zeros(num_frames, bool), np.zeros(num_frames, bool)
    for a in video["annotations"]:
        s, e = a["segment"]
        fg |= (t >= s + margin) & (t < e - margin)
        near |= (t >= s - margin) & (t < e + margin)
    return fg, ~near


def test_same_actor_and_scene_in_foreground_and_background(demo):
    db = load(demo, "untrimmed")["database"]
    checked = 0
    for vid, video in db.items():
        frames = decode(demo / "untrimmed" / "videos" / f"v_{vid}.mp4").astype(float)
        fg, bg = _region_frames(video, len(frames))
        if not (fg.any() and bg.any()):
            continue
        scene = np.median(frames.reshape(-1, 3), axis=0)
        actor = np.linalg.norm(frames - scene, axis=-1) > 60
        # The global flicker (same process in both regions) scales the actor's colour too, and
        # in 8 s videos its fg and bg means can differ by ~3%: compare colours relative to the
        # frame's scene grey.
        level = np.median(frames.reshape(len(frames), -1, 3), axis=1)[:, None, None, :]
        relative = frames * (scene / level)
        colour_fg = relative[fg][actor[fg]].mean(axis=0)
        colour_bg = relative[bg][actor[bg]].mean(axis=0)
        # Different actors differ by ~100 here; edge blur of H.264 at 32 px moves the mean a bit
        # more in the livelier background (distractor bouts), hence a margin of 25.
        assert np.linalg.norm(colour_fg - colour_bg) < 25, vid
        area_fg, area_bg = actor[fg].sum((1, 2)).mean(), actor[bg].sum((1, 2)).mean()
        assert 0.75 < area_fg / area_bg < 1.33, vid
        assert abs(frames[fg].mean() - frames[bg].mean()) < 8, vid  # camera drift, flicker
        checked += 1
    assert checked >= 3


def test_foreground_and_background_move_about_as_much(demo):
    """The amount of motion (frame-difference energy) must not tell actions from background:
    only their structure may (the next tests). The old generator gave a ratio of ~2.8 here."""
    db = load(demo, "untrimmed")["database"]
    ratios = []
    for vid, video in db.items():
        frames = decode(demo / "untrimmed" / "videos" / f"v_{vid}.mp4").astype(float)
        fg, bg = _region_frames(video, len(frames))
        if not (fg[1:].any() and bg[1:].any()):
            continue
        energy = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))
        ratios.append(energy[fg[1:]].mean() / energy[bg[1:]].mean())
    assert len(ratios) >= 3
    assert 0.7 < np.mean(ratios) < 1.4, ratios


def _periodicity(track: np.ndarray, fps: float) -> float:
    """Peak over lags 0.6-1.3 s of the autocorrelation of a window's velocity (channels pooled):
    ~1 for a periodic motion of 0.8-1.6 Hz, much lower for random motion."""
    v = np.diff(track, axis=0)
    v = v - v.mean(axis=0)
    var = (v**2).sum(axis=1).mean()
    lags = range(round(0.6 * fps), round(1.3 * fps) + 1)
    return max(float((v[:-k] * v[k:]).sum(axis=1).mean() / var) for k in lags)


def _class_video(label_id: int, seed: int, fps: float = 30.0) -> tuple[np.ndarray, ...]:
    """Trajectory of a 40 s video with one action in [10, 30) s, as (T, 3) x, y, scaled log-area,
    plus boolean masks of window starts (2 s windows, 1 s apart) well inside and outside it."""
    rng = np.random.default_rng(seed)
    motion = sample_motion(rng)
    idle = sample_idle_motion(rng, [(label_id, motion, 20.0)])
    segment = SegmentMotion(10.0, 30.0, label_id, motion, ramp_in=True, ramp_out=True)
    traj = trajectory(rng, round(40 * fps), fps, [segment], idle)
    # Log-area scaled to an edge displacement: radius ~0.12 frame, d(radius) = radius d(log a) / 2.
    track = np.stack([traj.x, traj.y, 0.06 * np.log(traj.area)], axis=1)
    starts = np.arange(0.0, 39.0)
    fg = (starts >= 11) & (starts + 2 <= 29)
    bg = (starts + 2 <= 9.5) | (starts >= 30.5)
    windows = np.stack([track[round(s * fps) : round((s + 2) * fps)] for s in starts])
    return windows, fg, bg


@pytest.mark.parametrize("label_id", range(len(CLASSES)))
def test_background_moves_as_much_as_the_action_but_without_its_period(label_id):
    fps = 30.0
    speed_ratio, fg_period, bg_period = [], [], []
    for seed in range(3):
        windows, fg, bg = _class_video(label_id, seed, fps)
        speed = np.linalg.norm(np.diff(windows, axis=1), axis=2).mean(axis=1)
        speed_ratio.append(speed[fg].mean() / speed[bg].mean())
        period = np.array([_periodicity(w, fps) for w in windows])
        fg_period.append(period[fg].mean())
        bg_period.append(period[bg].mean())
    assert 0.8 < np.mean(speed_ratio) < 1.25, speed_ratio
    assert np.mean(fg_period) > np.mean(bg_period) + 0.2, (fg_period, bg_period)


@pytest.mark.parametrize("label_id", range(len(CLASSES)))
def test_idle_motion_matches_the_class_in_speed_and_extent(label_id):
    """Speed is matched exactly (by scaling), extent through the cut-off: both per channel."""
    fps, n = 30.0, 3600
    motion = MotionParams(freq=1.2, strength=0.5, phase=0.3, direction=1)
    target = motion_stats(label_id, motion)
    rng = np.random.default_rng(label_id)
    idle = sample_idle_motion(rng, [(label_id, motion, 5.0)])
    dx, dy, da = idle_offsets(rng, n, fps, idle)
    assert np.hypot(np.diff(dx), np.diff(dy)).mean() * fps == pytest.approx(target.speed)
    assert np.abs(np.diff(da)).mean() * fps == pytest.approx(target.area_rate)
    if target.speed > 0:
        assert 0.7 < np.sqrt(dx.var() + dy.var()) / target.extent < 1.4
    else:
        assert np.abs(dx).max() == 0 and np.abs(dy).max() == 0
    if target.area_rate > 0:
        assert 0.7 < da.std() / target.area_extent < 1.4
        assert abs(np.exp(da).mean() - 1.0) < 1e-9  # mean area unchanged, like the pulse's
    else:
        assert np.abs(da).max() == 0


def test_refuses_a_non_empty_output_folder(tmp_path):
    (tmp_path / "old.txt").write_text("stale")
    with pytest.raises(FileExistsError, match="not empty"):
        make_demo_dataset(tiny(), tmp_path, progress=False)


@pytest.mark.parametrize(
    "overrides",
    [
        dict(min_segment=4.0, max_segment=3.0),
        dict(min_segment=3.0, min_gap=3.0),  # 3 + 2 * 3 > min_duration 8
        dict(trimmed_per_class=1),
        dict(trimmed_valid_fraction=1.0),
        dict(seed=-1),
        dict(size=33),
    ],
)
def test_invalid_demo_params_are_rejected(overrides):
    with pytest.raises(ValidationError):
        tiny(**overrides)


@pytest.mark.parametrize("fps", [30, 25, 24, 7])
def test_frame_count_gives_two_decimal_durations_within_bounds(fps):
    for seconds in np.linspace(20.0, 40.0, 37):
        n = frame_count(seconds, fps, 20.0, 40.0)
        assert round(n / fps, 2) == pytest.approx(n / fps, abs=1e-9)
        assert 20.0 <= n / fps <= 40.0


def test_low_pass_noise_has_no_power_above_its_cutoff():
    x = low_pass_noise(np.random.default_rng(0), 900, 30.0, 0.6, 0.1)
    power = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(900, 1 / 30)
    assert x.std() == pytest.approx(0.1)
    assert power[freqs > 0.6].sum() < 1e-9 * power.sum()


@pytest.mark.parametrize("label_id", range(len(CLASSES)))
def test_class_motions_are_centred_and_move(label_id):
    motion = MotionParams(freq=1.0, strength=0.5, phase=0.7, direction=1)
    t = np.arange(3000) / 1000  # three whole periods
    dx, dy, log_area = action_offsets(label_id, t, motion)
    assert abs(dx.mean()) < 1e-3 and abs(dy.mean()) < 1e-3
    assert abs(np.exp(log_area).mean() - 1.0) < 1e-3
    assert max(dx.std(), dy.std(), log_area.std()) > 0.05  # 5% of the frame, or of log-area


@pytest.mark.parametrize("ramps", [True, False])
def test_segment_boundaries_inside_a_video_do_not_jump(ramps):
    """A segment starting mid-video must not move the actor by more than a normal frame step; the
    test is checked to fail without the ramps (the class motion then starts at full amplitude)."""
    motion = MotionParams(freq=1.6, strength=1.0, phase=np.pi / 2, direction=1)
    segment = SegmentMotion(5.0, 9.0, 0, motion, ramp_in=ramps, ramp_out=ramps)
    idle = sample_idle_motion(np.random.default_rng(1), [(0, motion, 4.0)])
    traj = trajectory(np.random.default_rng(0), 450, 30.0, [segment], idle)
    step = np.hypot(np.diff(traj.x), np.diff(traj.y))
    near = np.zeros(step.size, bool)
    near[[148, 149, 150, 151, 268, 269, 270, 271]] = True
    assert (step[near].max() < step[~near].max()) == ramps
