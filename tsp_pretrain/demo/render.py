"""Drawing the scene: a low-contrast grey texture that drifts with the camera, and one
high-contrast actor (disk, square, diamond or ring) composited with anti-aliased edges.

A feasibility trial showed that a busy, saturated background with a small actor made every encoder
chance-level, so the texture is grey and faint and the actor large and strongly coloured.
Appearance is fixed per video, so only motion can tell a foreground stretch from background.
Rendering is vectorised over frames with numpy.
"""

from __future__ import annotations

import colorsys
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .motions import Trajectory, low_pass_noise

SHAPES: tuple[str, ...] = ("disk", "square", "diamond", "ring")
RADIUS_RANGE = (0.10, 0.14)
"""Actor radius at nominal size, fraction of the frame size (the trial's lesson: not too small)."""
BACKGROUND_LEVEL_RANGE = (100.0, 150.0)
"""Mean grey level of the texture (0-255)."""
BACKGROUND_CONTRAST_RANGE = (8.0, 16.0)
"""Standard deviation of the texture's grey levels: low contrast, so the actor stands out."""
MIN_ACTOR_CONTRAST = 100.0
"""Minimum RGB distance between the actor colour and the mean background grey."""
PIXEL_NOISE_STD = 3.0
"""Per-pixel, per-frame sensor noise (grey levels)."""
FLICKER_STD = 0.02
"""Slow global brightness change (relative), the same in foreground and background."""
CHUNK_FRAMES = 256
"""Frames rendered at once: bounds memory for long or large videos."""


@dataclass(frozen=True)
class Appearance:
    """How a video's scene and actor look; drawn once per video, the same in every region."""

    shape: str
    colour: tuple[float, float, float]
    radius: float
    background_level: float
    background_contrast: float
    texture_scale: float


def sample_appearance(rng: np.random.Generator) -> Appearance:
    """Random shape, colour and size of the actor and the grey level of the scene.

    The colour is redrawn until it is at least :data:`MIN_ACTOR_CONTRAST` away from the background
    grey, so no video ends up with a camouflaged actor.
    """
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    level = float(rng.uniform(*BACKGROUND_LEVEL_RANGE))
    while True:
        value = rng.uniform(0.85, 1.0) if rng.uniform() < 0.5 else rng.uniform(0.1, 0.3)
        rgb = colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(0.5, 1.0), value)
        colour = tuple(255.0 * c for c in rgb)
        if np.linalg.norm(np.subtract(colour, level)) >= MIN_ACTOR_CONTRAST:
            break
    return Appearance(
        shape=shape,
        colour=(float(colour[0]), float(colour[1]), float(colour[2])),
        radius=float(rng.uniform(*RADIUS_RANGE)),
        background_level=level,
        background_contrast=float(rng.uniform(*BACKGROUND_CONTRAST_RANGE)),
        texture_scale=float(rng.uniform(0.06, 0.12)),
    )


def make_texture(rng: np.random.Generator, size: int, appearance: Appearance) -> np.ndarray:
    """A periodic grey texture of ``2 * size`` pixels a side (float, grey levels).

    Gaussian-filtered white noise in the Fourier domain: periodic, so the drifting camera can
    wrap around it without seams.
    """
    side = 2 * size
    noise = rng.normal(size=(side, side))
    f = np.fft.fftfreq(side)
    sigma = appearance.texture_scale  # cut-off in cycles per pixel
    gain = np.exp(-(f[:, None] ** 2 + f[None, :] ** 2) / (2.0 * sigma**2))
    tex = np.real(np.fft.ifft2(np.fft.fft2(noise) * gain))
    tex = (tex - tex.mean()) / tex.std()
    return appearance.background_level + appearance.background_contrast * tex


def _bilinear_planes(tex: np.ndarray) -> np.ndarray:
    """Coefficients ``(a, b, c, d)`` per texel so that the texture at ``(y + fy, x + fx)`` is
    ``a + fx * b + fy * (c + fx * d)``: one gathered index serves all four (float32, for speed)."""
    right = np.roll(tex, -1, axis=1)
    down = np.roll(tex, -1, axis=0)
    diag = np.roll(down, -1, axis=1)
    return np.stack([tex, right - tex, down - tex, diag - down - right + tex]).astype(np.float32)


def _shift_texture(
    planes: np.ndarray, size: int, off_x: np.ndarray, off_y: np.ndarray
) -> np.ndarray:
    """Frames (T, size, size) cut from the periodic texture at sub-pixel offsets, bilinear."""
    side = planes.shape[-1]
    pix = np.arange(size)
    ys = pix[None, :] + off_y[:, None]  # (T, size)
    xs = pix[None, :] + off_x[:, None]
    y0, x0 = np.floor(ys), np.floor(xs)
    fy = (ys - y0).astype(np.float32)[:, :, None]
    fx = (xs - x0).astype(np.float32)[:, None, :]
    rows = y0.astype(np.int64) % side * side
    flat = rows[:, :, None] + (x0.astype(np.int64) % side)[:, None, :]
    a, b, c, d = (plane.take(flat) for plane in planes.reshape(4, -1))
    return a + fx * b + fy * (c + fx * d)


def _signed_distance(shape: str, dx: np.ndarray, dy: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Distance in pixels to the shape's edge (negative inside); shapes have about equal area."""
    if shape == "disk":
        return np.hypot(dx, dy) - r
    if shape == "square":
        return np.maximum(np.abs(dx), np.abs(dy)) - 0.886 * r
    if shape == "diamond":
        return (np.abs(dx) + np.abs(dy)) * 0.7071 - 0.886 * r
    if shape == "ring":
        return np.abs(np.hypot(dx, dy) - 0.75 * r) - 0.4 * r
    raise ValueError(f"unknown actor shape {shape!r} (known: {', '.join(SHAPES)})")


def actor_pixels(size: int, appearance: Appearance, traj: Trajectory) -> tuple[np.ndarray, ...]:
    """Per-frame actor centre (pixels) and radius (pixels), kept inside the frame.

    The centre offset is squashed with ``tanh`` so that large motions plus wandering plus drift
    slow down smoothly near the border instead of leaving the frame (a leaving actor would change
    the mean colour of foreground frames).
    """
    radius = appearance.radius * size * np.sqrt(traj.area)
    limit = 0.5 * size - radius.max() - 1.0
    if limit <= 0:
        raise ValueError(f"actor radius {radius.max():.1f}px does not fit a {size}px frame")
    centre = 0.5 * (size - 1)
    cx = centre + limit * np.tanh(traj.x * size / limit)
    cy = centre + limit * np.tanh(traj.y * size / limit)
    return cx, cy, radius


def render_frames(
    rng: np.random.Generator, size: int, fps: float, appearance: Appearance, traj: Trajectory
) -> Iterator[np.ndarray]:
    """Yield uint8 RGB frames (chunks of shape (t, size, size, 3)) of one video."""
    planes = _bilinear_planes(make_texture(rng, size, appearance))
    num_frames = traj.x.size
    flicker = 1.0 + low_pass_noise(rng, num_frames, fps, 0.3, FLICKER_STD)
    cx, cy, radius = actor_pixels(size, appearance, traj)
    colour = np.asarray(appearance.colour, dtype=np.float32)
    pix = np.arange(size, dtype=np.float32)
    # The camera moves right/down => the scene moves left/up in the frame.
    cam_x, cam_y = traj.camera_x * size, traj.camera_y * size
    for lo in range(0, num_frames, CHUNK_FRAMES):
        sl = slice(lo, min(lo + CHUNK_FRAMES, num_frames))
        gain = flicker[sl, None, None].astype(np.float32)
        grey = (_shift_texture(planes, size, cam_x[sl], cam_y[sl]) * gain)[..., None]
        dx = pix[None, None, :] - cx[sl, None, None].astype(np.float32)
        dy = pix[None, :, None] - cy[sl, None, None].astype(np.float32)
        r = radius[sl, None, None].astype(np.float32)
        dist = _signed_distance(appearance.shape, dx, dy, r)
        alpha = np.clip(0.5 - dist, 0.0, 1.0)[..., None]
        # grey + alpha * (colour - grey) + noise, in place on the one full-size (t, H, W, 3) array.
        frame = colour * gain[..., None] - grey
        frame *= alpha
        # Sensor noise on luminance only: chroma is subsampled by yuv420p anyway.
        noise = rng.standard_normal(size=grey.shape, dtype=np.float32) * PIXEL_NOISE_STD
        frame += grey + noise + 0.5  # + 0.5: round, not truncate, in the cast below
        yield np.clip(frame, 0, 255, out=frame).astype(np.uint8)
