"""Actor and camera trajectories: the class-specific motions and the structureless idle motion.

The demo's classes differ only in *how the actor moves*, never in how it looks. Every trajectory is
expressed in units of the frame size (0.1 = a tenth of the frame width), so the motion stays visible
whatever ``size`` the videos are rendered at and after the pipeline's downscale to ~36 px.

A video's trajectory is ``slow wandering + background weight x idle motion + sum over segments of
envelope x class motion``, with ``background weight = 1 - sum of envelopes``.

* The slow wandering (low-pass noise below 0.6 Hz) runs through the whole video.
* The *idle motion* is what the actor does outside actions: band-limited random translation and
  size change, aperiodic, with **as much motion as the video's actions** (same mean speed, same mean
  rate of size change; see :func:`class_rates`). Without it, "how much does the actor move" would
  separate foreground from background perfectly, and every encoder, even an untrained one, would
  look temporally sensitive. What is left to tell the regions apart is *structure*: a periodic,
  class-specific trajectory (a line, a circle, a zig-zag, a pulse) against a random one.
* The envelope ramps in and out with a raised cosine at segment boundaries inside the video, and
  the idle motion fades out as the class motion fades in, so no boundary shows up as a jump.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
IDLE_CUTOFF_FACTOR_RANGE = (1.6, 2.4)
"""Cut-off of the idle motion's band, as a multiple of the video's action frequency (drawn per
video). Flat noise up to ``fc`` has an RMS frequency of about ``fc / 1.8``, and a sinusoid of
frequency ``f`` moves as fast as noise of the same spread whose RMS frequency is ``1.13 f``: a
factor of about 2 therefore matches both the speed *and* the spatial extent of the actions, so
neither tells the regions apart."""
IDLE_AREA_LIMIT = 1.0
"""Soft bound (``tanh``) on the idle motion's log-area: size changes as large as the size pulse's
(area x2.7 at most), never the rare extremes of Gaussian noise that would crowd the frame."""
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
        return a * _triangle(u), motion.direction * 0.5 * a * _triangle(4.0 * u), zero
    raise ValueError(f"label_id {label_id} is not a demo class (0..{len(CLASSES) - 1})")


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
    knee = 0.8 * cutoff_hz
    gain = np.where(freqs <= knee, 1.0, 0.0)
    roll = (freqs > knee) & (freqs < cutoff_hz)
    gain[roll] = 0.5 * (1.0 + np.cos(np.pi * (freqs[roll] - knee) / (cutoff_hz - knee)))
    gain[0] = 0.0  # zero mean: the wandering is centred on the actor's home position
    signal = np.fft.irfft(spectrum * gain, n=n)
    spread = signal.std()
    return signal * (std / spread) if spread > 0 else signal


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
    """Parameters of one video's idle (background) motion.

    ``speed`` is the mean translation speed (frame sizes per second) and ``area_rate`` the mean
    absolute rate of change of the log-area (per second), both taken from the video's actions so
    that the amount of motion is the same in both regions; ``cutoff_hz`` bounds its band.
    """

    cutoff_hz: float
    speed: float
    area_rate: float


RATE_SAMPLES_PER_PERIOD = 240
"""Resolution of :func:`class_rates`' numeric derivative (fine enough for the zig-zag's corners)."""


def class_rates(label_id: int, motion: MotionParams) -> tuple[float, float]:
    """Mean translation speed and mean ``|d log-area / dt|`` of a class motion, per second.

    Computed numerically over whole periods of :func:`action_offsets`, so the idle motion is
    matched to exactly what is rendered, whatever the class's formula.
    """
    n = 4 * RATE_SAMPLES_PER_PERIOD
    t = np.arange(n + 1) / (RATE_SAMPLES_PER_PERIOD * motion.freq)
    dx, dy, da = action_offsets(label_id, t, motion)
    dt = t[1] - t[0]
    speed = float(np.hypot(np.diff(dx), np.diff(dy)).mean() / dt)
    area_rate = float(np.abs(np.diff(da)).mean() / dt)
    return speed, area_rate


def sample_idle_motion(
    rng: np.random.Generator, actions: Sequence[tuple[int, MotionParams, float]]
) -> IdleMotion:
    """Idle motion matched to ``actions``: ``(label_id, motion, seconds)`` of the video's segments
    (for a video without actions, a motion drawn as if it had one).

    Speed, rate of size change and frequency are duration-weighted means over the actions; the
    cut-off is that frequency times a factor drawn from :data:`IDLE_CUTOFF_FACTOR_RANGE`.
    """
    if not actions:
        raise ValueError("sample_idle_motion needs at least one action to match")
    weights = np.array([seconds for _, _, seconds in actions], dtype=float)
    if not (weights > 0).all():
        raise ValueError(f"action durations must be positive, got {weights.tolist()}")
    rates = np.array([class_rates(label_id, motion) for label_id, motion, _ in actions])
    speed, area_rate = np.average(rates, axis=0, weights=weights)
    freq = np.average([motion.freq for _, motion, _ in actions], weights=weights)
    factor = rng.uniform(*IDLE_CUTOFF_FACTOR_RANGE)
    return IdleMotion(
        cutoff_hz=float(freq * factor), speed=float(speed), area_rate=float(area_rate)
    )


def _scale_to_rate(signal: np.ndarray, fps: float, rate: float) -> np.ndarray:
    """``signal`` (T,) or (T, 2) scaled so that its mean absolute per-second change is ``rate``."""
    steps = np.diff(signal, axis=0)
    realised = (np.linalg.norm(steps, axis=1) if steps.ndim == 2 else np.abs(steps)).mean() * fps
    return signal * (rate / realised) if realised > 0 else signal


def idle_offsets(
    rng: np.random.Generator, num_frames: int, fps: float, idle: IdleMotion
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Displacement ``(dx, dy)`` and log-area change of the idle motion over a whole video.

    Independent band-limited noise per axis (isotropic, no preferred direction) and for the
    log-area, each scaled so that its *realised* mean rate equals the target: the match holds for
    every video, not just on average. The log-area is soft-bounded by :data:`IDLE_AREA_LIMIT` and
    shifted so that the mean area is 1, like the size pulse's.
    """
    cutoff = min(idle.cutoff_hz, 0.45 * fps)  # stay below Nyquist at low frame rates
    xy = np.stack([low_pass_noise(rng, num_frames, fps, cutoff, 1.0) for _ in range(2)], axis=1)
    xy = _scale_to_rate(xy, fps, idle.speed)
    area = _scale_to_rate(low_pass_noise(rng, num_frames, fps, cutoff, 1.0), fps, idle.area_rate)
    area = IDLE_AREA_LIMIT * np.tanh(area / IDLE_AREA_LIMIT)
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
    class motions inside the segments, the idle motion outside them (cross-faded over the same
    ramps), and the camera drift subtracted."""
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
    x += idle_weight * idle_x
    y += idle_weight * idle_y
    log_area += idle_weight * idle_area
    return Trajectory(
        x=x - cam_x, y=y - cam_y, area=np.exp(log_area), camera_x=cam_x, camera_y=cam_y
    )
