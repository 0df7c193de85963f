"""Tiny synthetic video files for tests (PyAV, libx264, even sizes)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def frame_pattern(index: int, height: int, width: int) -> np.ndarray:
    """A frame whose content identifies its index (a flat level plus a moving bar)."""
    frame = np.full((height, width, 3), (index * 7) % 200 + 20, dtype=np.uint8)
    col = (index * 3) % width
    frame[:, col : col + 2] = 250
    return frame


def write_video(
    path: Path,
    num_frames: int,
    fps: int = 30,
    height: int = 32,
    width: int = 48,
    codec: str = "libx264",
) -> Path:
    """Write an mp4 whose frame i is :func:`frame_pattern` (i)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(frame_pattern(i, height, width), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def decode_all(path: Path) -> list[np.ndarray]:
    """Every frame of ``path`` at its own rate and size (the reference for comparisons)."""
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
