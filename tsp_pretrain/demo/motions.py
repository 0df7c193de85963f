"""Actor and camera trajectories: the class-specific motions and the structureless idle motion.

The demo's classes differ only in *how the actor moves*, never in how it looks. Every trajectory is
expressed in units of the frame size (0.1 = a tenth of the frame width), so the motion stays visible
whatever ``size`` the videos are rendered at and after the pipeline's downscale to ~36 px.

A video's trajectory is ``slow wandering + background weight x idle motion + sum over segments of
envelope x class motion``, with ``background weight = 1 - sum of envelopes``.

* The slow wandering (low-pass noise below 0.6 Hz) runs through the whole video.
* The *idle motion* is what the actor does outside actions: random, aperiodic translation (no
  preferred direction) and size change, with **as much motion as the video's actions**: the same
  mean speed and the same spatial extent, per channel (see :func:`sample_idle_motion`). Without
  it, "how much does the actor move" would separate foreground from background perfectly, and
  every encoder, even an untrained one, would look temporally sensitive. What is left to tell the
  regions apart is *structure*: a periodic, class-specific trajectory (a line, a circle, a zig-zag,
  a pulse) against a random one (which, being broadband, also turns less smoothly).
* *Distractors*: in bouts of 2-5 s that cover about half of the background, the actor performs
  a periodic motion from outside the label set (a diagonal sweep, a figure eight, or a two-beat
  size pulse), at the video's own speed of motion. Untrimmed videos are like that: their
  background is full of structured motion that is not the annotated action. Features trained to
  classify the actions (TAC, Kinetics) respond to such motion too; telling it apart from the
  action inside one video is what the region head of TSP learns.
* The envelope ramps in and out with a raised cosine at segment boundaries inside the video, and
  the idle motion fades out as the class motion fades in, so no boundary shows up as a jump.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

CLASSES: tuple[str, ...] = (
    "Horizontal sweep",
    "Vertical bounce",
    "Orbit",
    "Size pulse",
    "Zig-zag",
)
"""Class names; a class's ``label_id`` is its index here."""

FREQ_RANGE_HZ = (0.8, 1.6)
"""Frequency of a foreground motion: about one period per 16-frame clip at 15 fps (1.07 s)."""
AMPLITUDE_RANGE = (0.12, 0.20)
"""Translation amplitude of a foreground motion, as a fraction of the frame size."""
PULSE_DEPTH_RANGE = (0.6, 0.9)
"""Depth ``k`` of the size pulse in log-area: the area swings by ``exp(+-k)`` (0.41x to 2.5x at
the top of the range), normalised so that its mean over a period is the idle area."""
RAMP_SECONDS = 0.3
"""Raised-cosine fade of a motion at segment boundaries that lie inside the video."""

WANDER_CUTOFF_RANGE_HZ = (0.25, 0.6)
"""The slow wandering has no power above this cut-off (drawn per video), well below the motions."""
WANDER_STD = 0.07
"""Standard deviation of the wandering position, fraction of the frame size (per axis)."""
WANDER_AREA_STD = 0.06
"""Standard deviation of the slow change of the actor's log-area, in every region."""
IDLE_CUTOFF_JITTER = (0.85, 1.15)
"""Random factor on the idle motion's cut-off (drawn per video), around the matched value (see
:func:`sample_idle_motion`): the background's band is not a fixed function of the action's."""
IDLE_AREA_LIMIT = 1.2
"""Soft bound (``tanh``) on the idle motion's log-area: size changes as large as the size pulse's
(area x3.3 at most), never the rare extremes of Gaussian noise that would crowd the frame."""
CAMERA_CUTOFF_HZ = 0.15
CAMERA_STD = 0.04
"""Slow camera drift (fraction of the frame size, per axis); moves texture and actor together."""


@dataclass(frozen=True)
class MotionParams:
    """Random parameters of one foreground segment's motion.

    ``strength`` in [0, 1] is mapped per class onto :data:`AMPLITUDE_RANGE` (translations) or
    :data:`PULSE_DEPTH_RANGE` (size pulse), so every class spans the same range of visibility.
    """

    freq: float
    strength: float
    phase: float
    direction: int

    @property
    def amplitude(self) -> float:
        lo, hi = AMPLITUDE_RANGE
        return lo + (hi - lo) * self.strength

    @property
    def depth(self) -> float:
        lo, hi = PULSE_DEPTH_RANGE
        return lo + (hi - lo) * self.strength


@dataclass(frozen=True)
class Trajectory:
    """Per-frame actor state: centre offset from the frame centre (x right, y down, fraction of the
    frame size, camera drift included), the actor's relative area (1 = its nominal size) and the
    camera offset (fraction of the frame size)."""

    x: np.ndarray
    y: np.ndarray
    area: np.ndarray
    camera_x: np.ndarray
    camera_y: np.ndarray


def sample_motion(rng: np.random.Generator) -> MotionParams:
    """Draw speed, strength, phase and direction of one foreground segment."""
    return MotionParams(
        freq=float(rng.uniform(*FREQ_RANGE_HZ)),
        strength=float(rng.uniform()),
        phase=float(rng.uniform(0.0, 2.0 * np.pi)),
        direction=int(rng.choice([-1, 1])),
    )


def _triangle(u: np.ndarray) -> np.ndarray:
    """Triangle wave with period 1 in [-1, 1]: constant speed with sharp turns (the zig-zag)."""
    return 2.0 * np.abs(2.0 * (u - np.floor(u + 0.5))) - 1.0


def action_offsets(
    label_id: int, t: np.ndarray, motion: MotionParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Displacement ``(dx, dy)`` and log-area change of class ``label_id`` at times ``t``.

    Every displacement has zero mean over a period, so a segment moves the actor around its idle
    position instead of parking it somewhere else; the size pulse keeps the *area* (hence the mean
    brightness of a foreground stretch) equal to the background's on average. The bounce has twice
    the amplitude of the sweep because ``|sin|`` covers half the range: both then move equally fast.
    The zig-zag's vertical triangle runs at twice the sweep rate (one zig per stroke), which keeps
    it at <= 3.2 Hz: well resolved after the pipeline's resampling to 15 fps.
    """
    w = 2.0 * np.pi * motion.freq
    a = motion.amplitude
    zero = np.zeros_like(t)
    name = CLASSES[label_id]
    if name == "Horizontal sweep":
        return a * np.sin(w * t + motion.phase), zero, zero
    if name == "Vertical bounce":
        # A ball bouncing on a floor: |sin| at half the angular rate has period 1 / freq.
        bounce = np.abs(np.sin(0.5 * w * t + motion.phase))
        return zero, 2.0 * a * (2.0 / np.pi - bounce), zero
    if name == "Orbit":
        return (
            a * np.cos(w * t + motion.phase),
            motion.direction * a * np.sin(w * t + motion.phase),
            zero,
        )
    if name == "Size pulse":
        k = motion.depth  # mean of exp(k sin) over a period is I0(k)
        return zero, zero, k * np.sin(w * t + motion.phase) - np.log(np.i0(k))
    if name == "Zig-zag":
        u = motion.freq * t + motion.phase / (2.0 * np.pi)
        return a * _triangle(u), motion.direction * 0.5 * a * _triangle(2.0 * u), zero
    raise ValueError(f"label_id {label_id} is not a demo class (0..{len(CLASSES) - 1})")


def _band_gain(freqs: np.ndarray, cutoff_hz: float) -> np.ndarray:
    """Amplitude gain of :func:`low_pass_noise`: 1 up to 80% of the cut-off, then a cosine roll-off
    to 0 at the cut-off."""
    knee = 0.8 * cutoff_hz
    gain = np.where(freqs <= knee, 1.0, 0.0)
    roll = (freqs > knee) & (freqs < cutoff_hz)
    gain[roll] = 0.5 * (1.0 + np.cos(np.pi * (freqs[roll] - knee) / (cutoff_hz - knee)))
    return gain


def low_pass_noise(
    rng: np.random.Generator, n: int, fps: float, cutoff_hz: float, std: float
) -> np.ndarray:
    """Gaussian noise of length ``n`` with no power above ``cutoff_hz``, scaled to ``std``.

    Built in the Fourier domain (white spectrum up to the cut-off, a cosine roll-off over the last
    20%), so the band limit is exact rather than approximate as with a moving average.
    """
    if n < 2:
        return np.zeros(n)
    freqs = np.fft.rfftfreq(n, d=1.0 / fps)
    spectrum = rng.normal(size=freqs.size) + 1j * rng.normal(size=freqs.size)
    gain = _band_gain(freqs, cutoff_hz)
    gain[0] = 0.0  # zero mean: every motion is centred on the actor's home position
    signal = np.fft.irfft(spectrum * gain, n=n)
    spread = signal.std()
    return signal * (std / spread) if spread > 0 else signal


DISTRACTORS: tuple[str, ...] = ("Diagonal sweep", "Figure eight", "Double pulse")
"""Periodic background motions outside the label set (never annotated)."""
DISTRACTOR_BOUT_SECONDS = (2.0, 5.0)
DISTRACTOR_GAP_SECONDS = (1.5, 5.0)
#: During a distractor bout the idle noise is scaled by ``DISTRACTOR_IDLE_SCALE`` and the
#: distractor moves at ``DISTRACTOR_SPEED`` x the idle speed, so that the background's amount of
#: motion stays close to the foreground's.
DISTRACTOR_IDLE_SCALE = 0.5
DISTRACTOR_SPEED = 0.8


def distractor_offsets(
    kind: int, t: np.ndarray, motion: MotionParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unscaled ``(dx, dy, d log-area)`` of distractor ``kind`` (an index into DISTRACTORS)."""
    u = 2.0 * np.pi * motion.freq * t + motion.phase
    zero = np.zeros_like(t)
    name = DISTRACTORS[kind]
    if name == "Diagonal sweep":
        return np.sin(u), motion.direction * np.sin(u), zero
    if name == "Figure eight":  # a 1:2 Lissajous curve
        return np.sin(u), 0.5 * np.sin(2.0 * u), zero
    return zero, zero, np.sin(u) + 0.6 * np.sin(2.0 * u + motion.phase)  # a two-beat pulse


def distractor_track(
    rng: np.random.Generator, num_frames: int, fps: float, idle: IdleMotion
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bouts of distractor motion over a whole video: ``(weight, dx, dy, d log-area)`` per frame.

    Translating distractors move at ``DISTRACTOR_SPEED`` x the idle speed, the pulsing one changes
    size at that fraction of the idle area rate; a video whose actions only translate (or only
    pulse) gets distractors of that kind only, so the *kind* of motion never tells the regions
    apart either. ``weight`` is the bouts' envelope; callers multiply everything by the background
    weight so that distractors never overlap an action.
    """
    kinds = [
        k
        for k, name in enumerate(DISTRACTORS)
        if (idle.area_rate if name == "Double pulse" else idle.speed) > 1e-9
    ]
    t = np.arange(num_frames) / fps
    out = np.zeros((4, num_frames))
    duration = num_frames / fps
    start = float(rng.uniform(0.0, DISTRACTOR_GAP_SECONDS[1]))
    while kinds and start < duration:
        end = min(start + float(rng.uniform(*DISTRACTOR_BOUT_SECONDS)), duration)
        env = envelope(t, start, end, ramp_in=start > 0, ramp_out=end < duration)
        inside = env > 0
        if inside.sum() > 2:
            kind = kinds[int(rng.integers(len(kinds)))]
            dx, dy, da = distractor_offsets(kind, t[inside] - start, sample_motion(rng))
            if DISTRACTORS[kind] == "Double pulse":
                da = _scale_to_rate(da, fps, DISTRACTOR_SPEED * idle.area_rate)
            else:
                xy = _scale_to_rate(np.stack([dx, dy], axis=1), fps, DISTRACTOR_SPEED * idle.speed)
                dx, dy = xy[:, 0], xy[:, 1]
            out[0, inside] += env[inside]
            out[1, inside] += env[inside] * dx
            out[2, inside] += env[inside] * dy
            out[3, inside] += env[inside] * da
        start = end + float(rng.uniform(*DISTRACTOR_GAP_SECONDS))
    return out[0], out[1], out[2], out[3]


def envelope(t: np.ndarray, start: float, end: float, ramp_in: bool, ramp_out: bool) -> np.ndarray:
    """1 inside ``[start, end)``, 0 outside, with raised-cosine ramps of :data:`RAMP_SECONDS` inside
    the segment at the requested ends (not at the ends that touch the video's start or end)."""
    env = ((t >= start) & (t < end)).astype(float)
    ramp = min(RAMP_SECONDS, 0.5 * (end - start))
    if ramp_in:
        m = (t >= start) & (t < start + ramp)
        env[m] = 0.5 * (1.0 - np.cos(np.pi * (t[m] - start) / ramp))
    if ramp_out:
        m = (t >= end - ramp) & (t < end)
        env[m] = np.minimum(env[m], 0.5 * (1.0 - np.cos(np.pi * (end - t[m]) / ramp)))
    return env


@dataclass(frozen=True)
class SegmentMotion:
    """What :func:`trajectory` needs from one foreground segment."""

    start: float
    end: float
    label_id: int
    motion: MotionParams
    ramp_in: bool
    ramp_out: bool


@dataclass(frozen=True)
class IdleMotion:
    """Parameters of one video's idle (background) motion, per channel (translation, log-area).

    ``speed`` is the mean translation speed (frame sizes per second) and ``area_rate`` the mean
    absolute rate of change of the log-area (per second); the cut-offs bound each channel's band.
    All four come from the video's actions (:func:`sample_idle_motion`).
    """

    speed: float
    cutoff_hz: float
    area_rate: float
    area_cutoff_hz: float


@dataclass(frozen=True)
class MotionStats:
    """How much a class motion moves: mean translation speed (frame sizes / s) and RMS distance from
    its mean position (frame sizes); the same two for the log-area (per second, and its std)."""

    speed: float
    extent: float
    area_rate: float
    area_extent: float


RATE_SAMPLES_PER_PERIOD = 240
"""Resolution of :func:`motion_stats`' numeric derivative (fine for the zig-zag's corners)."""


def motion_stats(label_id: int, motion: MotionParams) -> MotionStats:
    """:class:`MotionStats` of a class motion, computed numerically over whole periods of
    :func:`action_offsets`, so the idle motion is matched to exactly what is rendered."""
    n = 4 * RATE_SAMPLES_PER_PERIOD
    t = np.arange(n) / (RATE_SAMPLES_PER_PERIOD * motion.freq)  # 4 periods, end excluded
    dx, dy, da = action_offsets(label_id, t, motion)
    dt = t[1] - t[0]
    return MotionStats(
        speed=float(np.hypot(np.diff(dx), np.diff(dy)).mean() / dt),
        extent=float(np.sqrt(dx.var() + dy.var())),
        area_rate=float(np.abs(np.diff(da)).mean() / dt),
        area_extent=float(da.std()),
    )


@cache
def _rms_frequency_per_cutoff() -> float:
    """RMS frequency of :func:`low_pass_noise` as a fraction of its cut-off (about 0.51).

    Noise of std ``s`` and RMS frequency ``f`` has derivative std ``2 pi f s``; this ratio turns
    a wanted speed-to-extent ratio into a cut-off.
    """
    f = np.linspace(0.0, 1.0, 100_001)
    gain = _band_gain(f, 1.0)
    return float(np.sqrt((f**2 * gain**2).sum() / (gain**2).sum()))


# Mean of |N(0, s^2)| is s sqrt(2 / pi); mean length of a 2-D N(0, s^2 I) vector is s sqrt(pi / 2).
_MEAN_ABS_1D = np.sqrt(2.0 / np.pi)
_MEAN_NORM_2D = np.sqrt(np.pi / 2.0)


def sample_idle_motion(
    rng: np.random.Generator, actions: Sequence[tuple[int, MotionParams, float]]
) -> IdleMotion:
    """Idle motion matched to ``actions``: ``(label_id, motion, seconds)`` of the video's segments
    (for a video without actions, a motion drawn as if it had one).

    Per channel, the idle noise gets the actions' duration-weighted mean speed *and* extent: the
    speed is imposed by scaling (:func:`idle_offsets`), the extent by the cut-off, since a noise's
    speed-to-extent ratio is set by its RMS frequency. A sinusoid of frequency ``f`` needs noise of
    RMS frequency ~1.13 ``f``, i.e. a cut-off ~2 ``f``: broadband and aperiodic, but neither faster
    nor wider-ranging than the action. The cut-off is then jittered by
    :data:`IDLE_CUTOFF_JITTER`.
    """
    if not actions:
        raise ValueError("sample_idle_motion needs at least one action to match")
    weights = np.array([seconds for _, _, seconds in actions], dtype=float)
    if not (weights > 0).all():
        raise ValueError(f"action durations must be positive, got {weights.tolist()}")
    stats = [motion_stats(label_id, motion) for label_id, motion, _ in actions]
    speed, extent, area_rate, area_extent = np.average(
        [(m.speed, m.extent, m.area_rate, m.area_extent) for m in stats], axis=0, weights=weights
    )
    freq = float(np.average([motion.freq for _, motion, _ in actions], weights=weights))
    per_cutoff = _rms_frequency_per_cutoff()

    def cutoff(rate: float, spread: float, mean_factor: float) -> float:
        # rate = mean_factor * 2 pi f_rms * per-axis std; no motion: any band (it is scaled to 0).
        if rate <= 0 or spread <= 0:
            return 2.0 * freq
        return rate / (mean_factor * 2.0 * np.pi * spread * per_cutoff)

    jitter = rng.uniform(*IDLE_CUTOFF_JITTER, size=2)
    return IdleMotion(
        speed=float(speed),
        cutoff_hz=float(jitter[0] * cutoff(speed, extent / np.sqrt(2.0), _MEAN_NORM_2D)),
        area_rate=float(area_rate),
        area_cutoff_hz=float(jitter[1] * cutoff(area_rate, area_extent, _MEAN_ABS_1D)),
    )


def _scale_to_rate(signal: np.ndarray, fps: float, rate: float) -> np.ndarray:
    """``signal`` (T,) or (T, 2) scaled so that its mean absolute per-second change is ``rate``."""
    steps = np.diff(signal, axis=0)
    if len(steps) == 0:
        return signal
    realised = (np.linalg.norm(steps, axis=1) if steps.ndim == 2 else np.abs(steps)).mean() * fps
    return signal * (rate / realised) if realised > 0 else signal


def idle_offsets(
    rng: np.random.Generator, num_frames: int, fps: float, idle: IdleMotion
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Displacement ``(dx, dy)`` and log-area change of the idle motion over a whole video.

    Independent band-limited noise per axis (isotropic, no preferred direction) and for the
    log-area, each scaled so that its *realised* mean rate equals the target: the match holds for
    every video, not just on average. The log-area is soft-bounded by :data:`IDLE_AREA_LIMIT`
    (and rescaled once more, since the bound slows it a little), then shifted so that the mean
    area is 1, like the size pulse's.
    """
    nyquist_margin = 0.45 * fps  # a band past Nyquist would alias into low frequencies
    cut = min(idle.cutoff_hz, nyquist_margin)
    xy = np.stack([low_pass_noise(rng, num_frames, fps, cut, 1.0) for _ in range(2)], axis=1)
    xy = _scale_to_rate(xy, fps, idle.speed)
    cut = min(idle.area_cutoff_hz, nyquist_margin)
    area = _scale_to_rate(low_pass_noise(rng, num_frames, fps, cut, 1.0), fps, idle.area_rate)
    area = _scale_to_rate(IDLE_AREA_LIMIT * np.tanh(area / IDLE_AREA_LIMIT), fps, idle.area_rate)
    if num_frames:
        area -= np.log(np.exp(area).mean())
    return xy[:, 0], xy[:, 1], area


def trajectory(
    rng: np.random.Generator,
    num_frames: int,
    fps: float,
    segments: Sequence[SegmentMotion],
    idle: IdleMotion,
) -> Trajectory:
    """The actor's per-frame position and area for a whole video: slow wandering everywhere, the
    class motions inside the segments, the idle motion and distractor bouts outside them
    (cross-faded over the same ramps), and the camera drift subtracted."""
    t = np.arange(num_frames) / fps
    cutoff = float(rng.uniform(*WANDER_CUTOFF_RANGE_HZ))
    x = low_pass_noise(rng, num_frames, fps, cutoff, WANDER_STD)
    y = low_pass_noise(rng, num_frames, fps, cutoff, WANDER_STD)
    log_area = low_pass_noise(rng, num_frames, fps, cutoff, WANDER_AREA_STD)
    cam_x = low_pass_noise(rng, num_frames, fps, CAMERA_CUTOFF_HZ, CAMERA_STD)
    cam_y = low_pass_noise(rng, num_frames, fps, CAMERA_CUTOFF_HZ, CAMERA_STD)
    idle_x, idle_y, idle_area = idle_offsets(rng, num_frames, fps, idle)
    action_weight = np.zeros(num_frames)
    for seg in segments:
        env = envelope(t, seg.start, seg.end, seg.ramp_in, seg.ramp_out)
        inside = env > 0
        dx, dy, da = action_offsets(seg.label_id, t[inside] - seg.start, seg.motion)
        x[inside] += env[inside] * dx
        y[inside] += env[inside] * dy
        log_area[inside] += env[inside] * da
        action_weight += env
    idle_weight = np.clip(1.0 - action_weight, 0.0, 1.0)
    bout, bout_x, bout_y, bout_area = distractor_track(rng, num_frames, fps, idle)
    noise_scale = 1.0 - (1.0 - DISTRACTOR_IDLE_SCALE) * bout
    x += idle_weight * (noise_scale * idle_x + bout_x)
    y += idle_weight * (noise_scale * idle_y + bout_y)
    log_area += idle_weight * (noise_scale * idle_area + bout_area)
    return Trajectory(
        x=x - cam_x, y=y - cam_y, area=np.exp(log_area), camera_x=cam_x, camera_y=cam_y
    )
