"""Reading a video file's duration, frame rate and frame count with PyAV, and locating files.

Annotations carry their own durations, but they disagree with the files often enough (re-encodes,
truncated downloads) that every downstream computation uses what the file says.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".flv")


class VideoProbeError(RuntimeError):
    """A video file that cannot be opened or has no usable video stream."""


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a file's first video stream."""

    duration: float
    fps: float
    num_frames: int
    width: int
    height: int


def probe_video(path: str | Path) -> VideoInfo:
    """Probe ``path`` without decoding frames.

    The frame count comes from the stream header when present, otherwise from duration x fps.
    Raises :class:`VideoProbeError` (naming the file) for empty, corrupt or stream-less files.
    """
    path = Path(path)
    if not path.is_file():
        raise VideoProbeError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise VideoProbeError(f"{path}: empty file (0 bytes); re-download or re-encode it")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoProbeError(f"{path}: no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            fps = float(rate) if rate else float("nan")
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * Fraction(stream.time_base))
            elif container.duration is not None:
                duration = container.duration / av.time_base
            else:
                duration = float("nan")
            num_frames = int(stream.frames or 0)
            if num_frames <= 0 and math.isfinite(duration) and math.isfinite(fps):
                num_frames = round(duration * fps)
            width, height = stream.codec_context.width, stream.codec_context.height
    except (av.error.FFmpegError, ValueError) as err:  # corrupt metadata: UnicodeDecodeError
        raise VideoProbeError(f"{path}: cannot be read by FFmpeg ({err}); re-encode it") from err
    if not (math.isfinite(duration) and duration > 0 and math.isfinite(fps) and fps > 0):
        raise VideoProbeError(
            f"{path}: no usable duration or frame rate in the container "
            f"(duration={duration}, fps={fps}); re-encode it, e.g. ffmpeg -i IN -r 30 OUT.mp4"
        )
    return VideoInfo(duration, fps, num_frames, width, height)


def find_video_file(
    videos_dir: str | Path, video_id: str, filename: str | None = None
) -> Path | None:
    """Locate a video's file in ``videos_dir``.

    ``filename`` (when the annotation names one) wins; otherwise ``v_<id>.<ext>`` (the ActivityNet
    convention) and ``<id>.<ext>`` are tried for every extension in :data:`VIDEO_EXTENSIONS`.
    Returns ``None`` when nothing matches, so that callers can report the video as missing.
    """
    videos_dir = Path(videos_dir)
    if filename:
        candidate = videos_dir / filename
        return candidate if candidate.is_file() else None
    for stem in (f"v_{video_id}", video_id):
        for ext in VIDEO_EXTENSIONS:
            candidate = videos_dir / f"{stem}{ext}"
            if candidate.is_file():
                return candidate
    return None
