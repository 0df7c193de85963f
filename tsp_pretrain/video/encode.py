"""Encoding RGB frames to H.264 mp4, byte-identically on every run.

Two writers need it: the demo (its videos are a DVC output whose hash is committed in dvc.lock)
and the ``mp4`` frame store (training must read the same pixels on every run). x264 is
deterministic only under two settings, both set here:

- ``threads=1``: with several threads, x264's frame-level decisions can depend on scheduling.
  Parallelism comes from encoding several videos at once instead.
- ``mbtree=0``: with macroblock-tree rate control on, x264 (core 165, as bundled with PyAV 18)
  gives different bytes *and pixels* for the same frames depending on what was encoded earlier in
  the same process (measured on 32x32 demo videos: a video encoded second in a process differs
  from the same video encoded first, by up to 28 grey levels). Which video a worker process
  encodes first depends on scheduling, so with it on the demo changed with the worker count and
  the CPU load. ``tests/test_demo.py`` guards this across processes and worker counts.

Frames get ``pts = index`` in a ``1/frame_rate`` time base, so timestamps never come from a clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from tsp_pretrain.atomic import atomic_path

DETERMINISTIC_X264 = "threads=1:mbtree=0"


class EncodeError(RuntimeError):
    """Frames that cannot be encoded (none at all, odd sizes for yuv420p)."""


def x264_options(
    crf: int, *, preset: str = "veryfast", keyint: int | None = None, cabac: bool = True
) -> dict:
    """FFmpeg options for libx264 that give the same bytes on every run (see the module doc).

    ``keyint`` fixes the GOP (keyframes exactly every ``keyint`` frames, no B-frames: what a
    random-access store needs); ``None`` keeps x264's defaults (an ordinary downloaded file).
    ``cabac=False`` codes with CAVLC, which decodes twice as fast for files about 8 % larger
    (the mp4 store's choice: ``bench/input_pipeline.py``, docs/performance.md).
    """
    params = DETERMINISTIC_X264
    if keyint is not None:
        params += f":keyint={keyint}:min-keyint={keyint}:scenecut=0:bframes=0"
    if not cabac:
        params += ":cabac=0"
    return {"crf": str(crf), "preset": preset, "x264-params": params}


#: Pixel formats the H.264 writer can store: 4:2:0 (what every player reads; chroma at half
#: resolution), 4:4:4 (full chroma) and RGB (x264's ``libx264rgb``: no colour conversion at all).
PIX_FMTS = ("yuv420p", "yuv444p", "rgb24")


def write_h264(
    path: str | Path,
    chunks: Iterable[np.ndarray],
    frame_rate: float,
    options: dict,
    pix_fmt: str = "yuv420p",
) -> tuple[int, int, int]:
    """Encode uint8 RGB frames to an mp4 at ``path``, atomically; returns (frames, height, width).

    ``chunks`` yields arrays of shape ``(t, H, W, 3)`` (a single frame ``(H, W, 3)`` is a chunk of
    one). ``pix_fmt`` is one of :data:`PIX_FMTS`. Raises :class:`EncodeError` naming the file when
    there is no frame or a size is odd (x264 needs even sizes in every format).
    """
    if pix_fmt not in PIX_FMTS:
        raise EncodeError(f"{path}: pixel format {pix_fmt!r}, expected one of {PIX_FMTS}")
    path = Path(path)
    rate = Fraction(frame_rate).limit_denominator(1001)
    count, shape = 0, None
    with atomic_path(path) as tmp, av.open(str(tmp), "w") as container:
        codec = "libx264rgb" if pix_fmt == "rgb24" else "libx264"
        stream = container.add_stream(codec, rate=rate)
        stream.pix_fmt = pix_fmt
        stream.time_base = 1 / rate
        stream.options = options
        for chunk in chunks:
            chunk = chunk[None] if chunk.ndim == 3 else chunk
            for frame in chunk:
                if shape is None:
                    shape = frame.shape[:2]
                    if shape[0] % 2 or shape[1] % 2:
                        raise EncodeError(
                            f"{path}: H.264 needs even frame sizes, got {shape[1]}x{shape[0]}"
                        )
                    stream.height, stream.width = shape
                video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
                video_frame.pts = count
                container.mux(stream.encode(video_frame))
                count += 1
        if shape is None:
            raise EncodeError(f"{path}: no frame to encode")
        container.mux(stream.encode())
    return count, shape[0], shape[1]
