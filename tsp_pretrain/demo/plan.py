"""What each demo video contains, decided before any pixel is drawn.

A :class:`VideoPlan` holds a video's id, subset, length, foreground segments (class, times,
motion parameters), idle motion (matched to its segments) and appearance, plus the seed of its
rendering noise. Plans are drawn from one random stream per video (``[seed, kind, index]``), so a
video does not change when others are added, removed or rendered in another order or process.

Times are snapped before rendering: a video's frame count is chosen so that its duration is a whole
number of hundredths of a second, and segment bounds are rounded to 0.01 s, so the annotation JSON
(2 decimals) describes exactly what was rendered.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tsp_pretrain.config import DemoParams

from .motions import CLASSES, IdleMotion, SegmentMotion, sample_idle_motion, sample_motion
from .render import Appearance, sample_appearance

TRAINING, VALIDATION = "training", "validation"
_KIND_CODE = {"untrimmed-training": 0, "untrimmed-validation": 1, "trimmed": 2}


@dataclass(frozen=True)
class VideoPlan:
    """Everything needed to render one video and annotate it."""

    video_id: str
    subset: str
    num_frames: int
    fps: int
    segments: tuple[SegmentMotion, ...]
    idle: IdleMotion
    appearance: Appearance
    render_seed: tuple[int, ...]

    @property
    def duration(self) -> float:
        """Seconds; exact to 2 decimals by construction (see :func:`frame_count`)."""
        return round(self.num_frames / self.fps, 2)

    @property
    def filename(self) -> str:
        return f"v_{self.video_id}.mp4"


def frame_count(seconds: float, fps: int, lo: float | None = None, hi: float | None = None) -> int:
    """Frames closest to ``seconds`` such that ``frames / fps`` has at most two decimals.

    With fps=30 that is a multiple of 3 frames (0.1 s); the file's duration then matches the
    annotation's rounded duration exactly, and a segment ending at the video's end is inside it.
    The snapped duration is kept within ``[lo, hi]`` seconds when that range holds a valid count.
    """
    step = fps // math.gcd(fps, 100)
    n = max(step, step * round(seconds * fps / step))
    if lo is not None:
        n = max(n, step * math.ceil(lo * fps / step - 1e-9))
    if hi is not None:
        n = min(n, max(step, step * math.floor(hi * fps / step + 1e-9)))
    return n


def _place_segments(
    rng: np.random.Generator, duration: float, p: DemoParams, touch_start: bool, touch_end: bool
) -> list[tuple[float, float]]:
    """Non-overlapping ``(start, end)`` pairs separated by at least ``p.min_gap`` of background.

    The first segment starts at 0 when ``touch_start``, the last ends at ``duration`` when
    ``touch_end``; otherwise there is background of at least ``min_gap`` at that end too.
    Segments are dropped (down to one, which always fits: see :class:`DemoParams`) when the drawn
    count does not fit the video.
    """
    gap = p.min_gap
    lead, trail = (0.0 if touch_start else gap), (0.0 if touch_end else gap)
    n = int(rng.integers(1, p.max_segments + 1))
    while n > 1 and n * p.min_segment + (n - 1) * gap + lead + trail > duration:
        n -= 1
    budget = duration - lead - trail - (n - 1) * gap
    lengths: list[float] = []
    for i in range(n):
        room = budget - sum(lengths) - (n - 1 - i) * p.min_segment
        # ``room`` < min_segment only if snapping made the video shorter than min_duration.
        lengths.append(float(rng.uniform(min(p.min_segment, room), min(p.max_segment, room))))
    rng.shuffle(lengths)
    free_gaps = [not touch_start] + [True] * (n - 1) + [not touch_end]
    slack = max(0.0, budget - sum(lengths))
    shares = np.zeros(len(free_gaps))
    if any(free_gaps):
        shares[np.flatnonzero(free_gaps)] = rng.dirichlet(np.ones(sum(free_gaps))) * slack
    else:  # one segment that spans the whole video
        lengths[0] += slack
    bounds, t = [], lead + shares[0]
    for i, length in enumerate(lengths):
        bounds.append((t, t + length))
        t += length + gap + shares[i + 1]
    if touch_end:
        bounds[-1] = (bounds[-1][0], duration)
    return [(round(s, 2), round(min(e, duration), 2)) for s, e in bounds]


def _untrimmed_plan(
    p: DemoParams, subset: str, index: int, empty: bool, touch_start: bool, touch_end: bool
) -> VideoPlan:
    kind = _KIND_CODE[f"untrimmed-{subset}"]
    rng = np.random.default_rng([p.seed, kind, index, 0])
    seconds = rng.uniform(p.min_duration, p.max_duration)
    num_frames = frame_count(seconds, p.fps, p.min_duration, p.max_duration)
    duration = round(num_frames / p.fps, 2)
    appearance = sample_appearance(rng)
    label_id = int(rng.integers(len(CLASSES)))  # one class per video, as in ActivityNet
    segments: tuple[SegmentMotion, ...] = ()
    if not empty:
        segments = tuple(
            SegmentMotion(
                start=s,
                end=e,
                label_id=label_id,
                motion=sample_motion(rng),
                ramp_in=s > 0,
                ramp_out=e < duration,
            )
            for s, e in _place_segments(rng, duration, p, touch_start, touch_end)
        )
    # A video without actions still gets the idle motion of its class, as if it had one.
    actions = [(s.label_id, s.motion, s.end - s.start) for s in segments] or [
        (label_id, sample_motion(rng), 1.0)
    ]
    idle = sample_idle_motion(rng, actions)
    prefix = "train" if subset == TRAINING else "valid"
    return VideoPlan(
        video_id=f"{prefix}_{index:04d}",
        subset=subset,
        num_frames=num_frames,
        fps=p.fps,
        segments=segments,
        idle=idle,
        appearance=appearance,
        render_seed=(p.seed, kind, index, 1),
    )


def plan_untrimmed(p: DemoParams) -> list[VideoPlan]:
    """Plans of the untrimmed videos of both subsets.

    Per subset, ``num_empty_videos`` randomly chosen videos have no action. Among the others, every
    third video starts with an action and every third (offset by one) ends with one, so segments
    touching a video's start or end occur even in tiny datasets.
    """
    plans = []
    for subset, count in ((TRAINING, p.num_train_videos), (VALIDATION, p.num_valid_videos)):
        rng = np.random.default_rng([p.seed, _KIND_CODE[f"untrimmed-{subset}"]])
        empty = set(rng.choice(count, size=p.num_empty_videos, replace=False).tolist())
        k = 0
        for index in range(count):
            is_empty = index in empty
            plans.append(_untrimmed_plan(p, subset, index, is_empty, k % 3 == 1, k % 3 == 2))
            k += not is_empty
    return plans


def trimmed_valid_count(p: DemoParams) -> int:
    """Trimmed clips per class in the validation subset: at least one, never all of them."""
    share = round(p.trimmed_valid_fraction * p.trimmed_per_class)
    return min(p.trimmed_per_class - 1, max(1, share))


def plan_trimmed(p: DemoParams) -> list[VideoPlan]:
    """Plans of the trimmed clips: action from the first to the last frame, no background.

    The last :func:`trimmed_valid_count` clips of each class form the validation subset.
    """
    kind = _KIND_CODE["trimmed"]
    num_valid = trimmed_valid_count(p)
    num_frames = frame_count(p.trimmed_duration, p.fps)
    duration = round(num_frames / p.fps, 2)
    plans = []
    for label_id in range(len(CLASSES)):
        for k in range(p.trimmed_per_class):
            index = label_id * p.trimmed_per_class + k
            rng = np.random.default_rng([p.seed, kind, index, 0])
            segment = SegmentMotion(0.0, duration, label_id, sample_motion(rng), False, False)
            # Never shown (no background), but every plan carries one for the renderer.
            idle = sample_idle_motion(rng, [(label_id, segment.motion, duration)])
            plans.append(
                VideoPlan(
                    video_id=f"trim_{index:04d}",
                    subset=VALIDATION if k >= p.trimmed_per_class - num_valid else TRAINING,
                    num_frames=num_frames,
                    fps=p.fps,
                    segments=(segment,),
                    idle=idle,
                    appearance=sample_appearance(rng),
                    render_seed=(p.seed, kind, index, 1),
                )
            )
    return plans
