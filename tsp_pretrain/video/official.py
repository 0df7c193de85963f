"""The released TSP code's preprocessing, as a decode method (``decode.method: official``).

The official pipeline prepares frames in three steps, each of which changes the features:

1. **Standardisation.** Every video is re-encoded to a constant 30 fps mp4 with
   ``ffmpeg -i IN -filter:v fps=fps=30 OUT`` (``data/standardize_videos_to_constant_30fps_mp4.sh``).
   The frame choice is FFmpeg's ``fps`` filter at 30 fps; the decode stage applies the same
   filter, in the same filter graph FFmpeg's command line builds. The lossy x264 re-encode
   (CRF 23) is not repeated: its bytes depend on the x264 build, and it only adds coding noise
   (its effect on features is measured in ``bench/fidelity.py``, docs/frame-store.md).
2. **Index subsampling.** Clips are cut from the 30 fps frames by index: for a target rate ``r``,
   every ``30 / r``-th frame starting at the first (``_resample_video_idx`` in
   ``extract_features/eval_video_dataset.py``). At 15 fps: frames 0, 2, 4, ... A video of
   ``N`` standardised frames holds ``ceil(N / step)`` subsampled frames.
3. **Resizing.** Frames are decoded to RGB (FFmpeg's rgb24 conversion), converted to float in
   [0, 1] and resized to exactly 128 x 171 with bilinear interpolation, ``align_corners=False``
   and no antialiasing (``common/transforms.py``: ``torch.nn.functional.interpolate``).

The frame store keeps uint8 frames, so the resized float frames are rounded to the nearest of
the 256 levels (at most 0.5/255 per pixel; its effect on features is in the same bench).

Only rates for which ``30 / r`` is an integer are supported. For other rates the official code
resamples each clip from its own first frame (``floor(arange(16) * 30 / r)`` after the clip's
start), so two overlapping clips may use different frames of the same instant: no single frame
sequence, and so no frame store, holds them.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

#: The frame rate the official pipeline standardises every video to before sampling clips.
STANDARD_FRAME_RATE = 30


class OfficialRateError(ValueError):
    """A frame rate the official index subsampling cannot give as one frame sequence."""


def subsampling_step(frame_rate: float) -> int:
    """Every how many standardised (30 fps) frames one frame at ``frame_rate`` is taken."""
    standard = STANDARD_FRAME_RATE
    step = Fraction(standard) / Fraction(frame_rate).limit_denominator(1001)
    if step.denominator != 1:
        divisors = [standard / k for k in (1, 2, 3, 5, 6, 10, 15, 30)]
        raise OfficialRateError(
            f"frame_rate {frame_rate:g} with decode.method official: the official code takes "
            f"every ({standard} / frame_rate)-th frame of the {standard} fps video, "
            f"and {standard}/{frame_rate:g} is not an integer (use one of "
            f"{', '.join(f'{d:g}' for d in divisors)}, or decode.method: ffmpeg)"
        )
    return int(step)


def bilinear_resize(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 ``T x H x W x 3`` frames resized as the official transform does, back to uint8.

    Float in [0, 1] (``x / 255``), ``interpolate(mode="bilinear", align_corners=False,
    antialias=False)`` to exactly ``size = (h, w)``, then rounded to the nearest uint8 level.
    Frames already at ``size`` are returned unchanged (the interpolation is then the identity).

    Runs in one torch thread: a frame is too little work for a thread pool, and decoding runs one
    process per core anyway. With the numerics contract's 2 threads, decoding a 640x360 source
    took 17.5 s instead of 1.0 s on a loaded 2-core machine (the pool's threads wait on each
    other); the result does not depend on the thread count.
    """
    import torch  # deferred: the ffmpeg method's decode workers never need it

    if frames.shape[1:3] == tuple(size):
        return frames
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
        x = torch.nn.functional.interpolate(
            x.to(torch.float32) / 255,
            size=tuple(size),
            mode="bilinear",
            align_corners=False,
            antialias=False,
        )
        out = x.mul_(255).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
        return np.ascontiguousarray(out.numpy())
    finally:
        torch.set_num_threads(threads)
