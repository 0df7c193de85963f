"""Tiny synthetic video files for tests (PyAV, libx264, even sizes)."""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from tsp_pretrain.video.encode import DETERMINISTIC_X264


def frame_pattern(index: int, height: int, width: int) -> np.ndarray:
    """A frame whose content identifies its index (a flat level plus a moving bar)."""
    frame = np.full((height, width, 3), (index * 7) % 200 + 20, dtype=np.uint8)
    col = (index * 3) % width
    frame[:, col : col + 2] = 250
    return frame


def _encode_all(container: av.container.OutputContainer, stream, frames: Iterable) -> None:
    """Encode ``frames`` (av frames) into ``stream``, mux every packet, then flush the encoder."""
    for frame in frames:
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


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
        if codec == "libx264":  # the same bytes on every run (x264's threads decide otherwise)
            stream.options = {"x264-params": DETERMINISTIC_X264}
        _encode_all(
            container,
            stream,
            (
                av.VideoFrame.from_ndarray(frame_pattern(i, height, width), format="rgb24")
                for i in range(num_frames)
            ),
        )
    return path


def decode_all(path: Path) -> list[np.ndarray]:
    """Every frame of ``path`` at its own rate and size (the reference for comparisons)."""
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def write_marked_video(
    path: Path,
    num_frames: int = 6,
    height: int = 32,
    width: int = 48,
    display_rotation: float | None = None,
) -> Path:
    """A dark mp4 with a white 8x8 marker in the coded picture's top-left corner.

    ``display_rotation`` stores a display matrix (PyAV's ``set_display_rotation``: degrees
    counterclockwise, so -90 is what a phone held upright writes: show it turned 90 degrees
    clockwise).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if display_rotation is not None:
            stream.set_display_rotation(display_rotation)
        image = np.full((height, width, 3), 20, dtype=np.uint8)
        image[:8, :8] = 235
        frames = (av.VideoFrame.from_ndarray(image, format="rgb24") for _ in range(num_frames))
        _encode_all(container, stream, frames)
    return path


def write_faststart_video(path: Path, num_frames: int, fps: int = 30, keyint: int = 250) -> Path:
    """Like :func:`write_video` (64x96), with the index (moov) before the data, as web downloads
    have it, and a keyframe every ``keyint`` frames."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=fps, options={"g": str(keyint)})
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        _encode_all(
            container,
            stream,
            (
                av.VideoFrame.from_ndarray(frame_pattern(i, 64, 96), format="rgb24")
                for i in range(num_frames)
            ),
        )
    return path


def overwrite_with_garbage(path: Path, at: float, size: int, seed: int = 0) -> Path:
    """Overwrite ``size`` bytes at fraction ``at`` of the file with random bytes (in place)."""
    data = bytearray(path.read_bytes())
    offset = int(len(data) * at)
    rng = np.random.default_rng(seed)
    data[offset : offset + size] = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path


def write_coded(
    path: Path,
    codec: str,
    num_frames: int = 10,
    fps: int = 30,
    height: int = 32,
    width: int = 48,
    pix_fmt: str = "yuv420p",
    vfr: bool = False,
    options: dict | None = None,
) -> Path:
    """A short video in any codec/container PyAV can write; ``vfr`` alternates 66 and 33 ms."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps, options=options or {})
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if vfr:
            stream.time_base = Fraction(1, 1000)

        def frames():
            t = 0
            for i in range(num_frames):
                image = np.full((height, width, 3), (i * 20) % 250, dtype=np.uint8)
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                if vfr:
                    frame.pts, frame.time_base = t, stream.time_base
                    t += 33 if i % 2 else 66
                yield frame

        _encode_all(container, stream, frames())
    return path


def write_audio_only(path: Path) -> Path:
    """An mp4 with one AAC stream and no video."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=44100)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
        )
        frame.sample_rate = 44100
        _encode_all(container, stream, [frame])
    return path


def write_tiny_store(root: Path) -> Path:
    """Two 3 s videos ``a`` and ``b`` (32 x 32, 30 fps) decoded into an npy frame store at 15 fps,
    short side 20: the store the training tests sample clips from. Returns the store's folder."""
    import pandas as pd

    from tsp_pretrain.video.decode import decode_dataset
    from tsp_pretrain.video.store import StoreSettings

    for name in ("a", "b"):
        write_video(root / "videos" / f"{name}.mp4", num_frames=90, height=32, width=32)
    table = pd.DataFrame(
        {"video_id": ["a", "b"], "filename": ["a.mp4", "b.mp4"], "duration": [3.0, 3.0]}
    )
    decode_dataset(
        table, root / "videos", root / "frames", StoreSettings(15, 20, "npy"), progress=False
    )
    return root / "frames"


def tiny_store_segments():
    """Segments of the tiny store's videos: each half foreground (classes x, y), half background."""
    import pandas as pd

    return pd.DataFrame(
        {
            "video_id": ["a", "a", "b", "b"],
            "t_start": [0.0, 1.5, 0.0, 1.5],
            "t_end": [1.5, 3.0, 1.5, 3.0],
            "label": ["x", "", "y", ""],
            "label_id": [0, -1, 1, -1],
            "region": ["foreground", "background", "foreground", "background"],
        }
    )
