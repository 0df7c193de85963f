"""Reading a video file's duration, frame rate, frame count and display rotation with PyAV.

Annotations carry their own durations, but they disagree with the files often enough (re-encodes,
truncated downloads) that every downstream computation uses what the file says.
"""

from __future__ import annotations

import math
import struct
from contextlib import closing
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from av.sidedata.sidedata import Type as SideDataType

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".flv")


class VideoProbeError(RuntimeError):
    """A video file that cannot be opened or has no usable video stream."""


class TruncatedVideoError(VideoProbeError):
    """A file whose data ends before its header says (a partial download).

    Carries ``duration`` (what the header claims) and ``readable_duration`` (what the file holds),
    so that callers can report how much is missing; it is a :class:`VideoProbeError`, so the
    annotation stage reports the video as unreadable with this message.
    """

    def __init__(self, message: str, duration: float, readable_duration: float) -> None:
        super().__init__(message)
        self.duration = duration
        self.readable_duration = readable_duration


#: A file whose readable data covers less than this fraction of its header duration is truncated
#: (the slack absorbs the last frames' durations and B-frame reordering).
TRUNCATION_TOLERANCE = 0.05


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a file's first video stream.

    ``width`` and ``height`` are the displayed ones: a stream with a 90/270 degree display
    rotation (phone videos) has them swapped relative to the coded picture. ``rotation`` is the
    clockwise angle (0, 90, 180, 270) the decoder applies, as FFmpeg's command line does.
    """

    duration: float
    fps: float
    num_frames: int
    width: int
    height: int
    rotation: int = 0


def display_transform(frame: av.VideoFrame) -> tuple[int, list[tuple[str, str]]]:
    """The clockwise display rotation of a decoded frame and the filters that apply it.

    FFmpeg's command line rule (autorotate, on by default; fftools ``get_rotation`` and
    ``ffmpeg_filter.c``): theta = -round(av_display_rotation_get(matrix)) in [0, 360); 90 is
    ``transpose=clock`` (``cclock_flip`` for a mirrored matrix), 270 ``transpose=cclock``
    (``clock_flip``), 180 ``hflip`` and/or ``vflip``, 0 a ``vflip`` for a flipped matrix.
    Returns (theta, [(filter, arguments), ...]). Raises :class:`ValueError` for an angle that is
    not a multiple of 90 degrees (FFmpeg would rotate and pad with black: re-encode such files).
    """
    try:
        data = frame.side_data[SideDataType.DISPLAYMATRIX]
    except KeyError:
        return 0, []
    m = struct.unpack("9i", bytes(data))
    theta = -round(frame.rotation)
    theta -= 360 * math.floor(theta / 360 + 0.9 / 360)
    if abs(theta - 90) < 1:
        return 90, [("transpose", "dir=cclock_flip" if m[3] > 0 else "dir=clock")]
    if abs(theta - 270) < 1:
        return 270, [("transpose", "dir=clock_flip" if m[3] < 0 else "dir=cclock")]
    if abs(theta - 180) < 1:
        return 180, [
            (name, "") for name, flip in (("hflip", m[0] < 0), ("vflip", m[4] < 0)) if flip
        ]
    if abs(theta) < 1:
        return 0, [("vflip", "")] if m[4] < 0 else []
    raise ValueError(f"display rotation of {theta} degrees is not a multiple of 90")


def _readable_duration(stream: av.video.stream.VideoStream, size: int) -> float | None:
    """Seconds of ``stream`` whose packets lie inside the file's ``size`` bytes, if it is cut.

    Uses the demuxer's index, read from the header (every sample of an mp4/mov; only the
    keyframes of a Matroska/WebM file's cues): when its last entry ends inside the file there is
    no sign of truncation (``None``). Otherwise the last entry that does bounds what can be
    decoded. A file whose index is lost with its tail (Matroska cues are written at the end) has
    no index and cannot be checked cheaply (``None``): decoding then finds the missing frames.
    """
    entries = stream.index_entries
    if len(entries) == 0 or stream.time_base is None:
        return None
    last = entries[len(entries) - 1]
    if last.pos + last.size <= size:
        return None
    first = entries[0].timestamp
    frame = 1 / float(stream.average_rate or stream.guessed_rate or 30)
    for i in range(len(entries) - 2, -1, -1):
        entry = entries[i]
        if entry.pos + entry.size <= size:
            return float((entry.timestamp - first) * Fraction(stream.time_base)) + frame
    return 0.0


def _header_duration(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> float:
    """Seconds the header promises: the stream's duration, else the container's, else NaN."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * Fraction(stream.time_base))
    if container.duration is not None:
        return container.duration / av.time_base
    return float("nan")


def _check_truncation(path: Path, duration: float, readable: float | None) -> None:
    if readable is not None and readable < duration * (1 - TRUNCATION_TOLERANCE):
        raise TruncatedVideoError(
            f"{path}: truncated: the header says {duration:.2f} s but the file's data ends after "
            f"{readable:.2f} s ({readable / duration:.0%} readable; a partial download?); "
            "re-download it",
            duration,
            readable,
        )


def readable_duration_check(path: str | Path) -> None:
    """Raise :class:`TruncatedVideoError` if ``path`` ends before its header's duration.

    The probe's check alone (header and index only, nothing decoded), for the decode stage: a
    file cut short is a partial download to fetch again, not a lost tail to pad. Files that
    cannot be opened are left to the caller's own error handling.
    """
    path = Path(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return
            stream = container.streams.video[0]
            duration = _header_duration(container, stream)
            readable = _readable_duration(stream, path.stat().st_size)
    except (av.error.FFmpegError, ValueError):
        return
    _check_truncation(path, duration, readable)


def probe_video(path: str | Path) -> VideoInfo:
    """Probe ``path``, decoding only its first frame (for the display rotation).

    The frame count comes from the stream header when present, otherwise from duration x fps.
    Raises :class:`VideoProbeError` (naming the file) for empty, corrupt or stream-less files, and
    :class:`TruncatedVideoError` when the file ends before the duration its header promises.
    """
    path = Path(path)
    if not path.is_file():
        raise VideoProbeError(f"{path}: no such file")
    size = path.stat().st_size
    if size == 0:
        raise VideoProbeError(f"{path}: empty file (0 bytes); re-download or re-encode it")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoProbeError(f"{path}: no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            fps = float(rate) if rate else float("nan")
            duration = _header_duration(container, stream)
            num_frames = int(stream.frames or 0)
            if num_frames <= 0 and math.isfinite(duration) and math.isfinite(fps):
                num_frames = round(duration * fps)
            width, height = stream.codec_context.width, stream.codec_context.height
            readable = _readable_duration(stream, size)
            with closing(container.decode(stream)) as frames:  # closed before the container
                first = next(frames, None)
            angle = display_transform(first)[0] if first is not None else 0
    except (av.error.FFmpegError, ValueError) as err:  # corrupt metadata: UnicodeDecodeError
        raise VideoProbeError(f"{path}: cannot be read by FFmpeg ({err}); re-encode it") from err
    if not (math.isfinite(duration) and duration > 0 and math.isfinite(fps) and fps > 0):
        raise VideoProbeError(
            f"{path}: no usable duration or frame rate in the container "
            f"(duration={duration}, fps={fps}); re-encode it, e.g. ffmpeg -i IN -r 30 OUT.mp4"
        )
    _check_truncation(path, duration, readable)
    if angle in (90, 270):
        width, height = height, width
    return VideoInfo(duration, fps, num_frames, width, height, angle)
