"""Decoding source videos into the frame store: resample to ``frame_rate``, resize, write.

Two methods (``decode.method``, :data:`METHODS`):

- ``official`` (the recipe's presets and the library default): the released TSP code's frames,
  :mod:`tsp_pretrain.video.official`. FFmpeg's ``fps`` filter to 30 fps (the rule of the
  official ``ffmpeg -filter:v fps=fps=30`` standardisation), every ``30 / frame_rate``-th of
  those frames, decoded to RGB (``to_ndarray(format="rgb24")``), then resized as float with
  bilinear interpolation and no antialiasing and rounded back to uint8.
- ``ffmpeg`` (the demo's tiny frames): one ``fps`` filter straight to ``frame_rate`` and FFmpeg's
  ``scale`` filter with area interpolation in YUV, which does not alias on downscaling.

The ``fps`` filter's rule: output frame k (time k / rate after the first frame) is the last source
frame that starts before (k + 0.5) / rate, i.e. source frame ``ceil((k + 0.5) * source_fps /
rate) - 1``. For a 30 fps source both methods take every 2nd frame at 15 fps; for other sources
the one-step filter picks other frames than the official two-step rule (up to 42 ms apart).

The size is a fixed short side (aspect ratio kept) or, with ``frame_size``, exactly ``H x W``
whatever the source's aspect ratio: the official recipe resizes every frame to 128 x 171 and
centre-crops 112, so only ``frame_size: [128, 171]`` gives its field of view on 16:9 footage (a
short side of 128 stores 128 x 228, whose 112 crop sees 49% of the width instead of 65%).

:func:`decode_dataset` runs over a videos table in parallel processes, skips videos already decoded
with the same settings (resumable), and reports, never crashes on, unreadable or truncated files.
:mod:`tsp_pretrain.video.shards` splits it over machines (shards, then a merge).
"""

from __future__ import annotations

import itertools
import logging
import math
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from contextlib import closing
from dataclasses import dataclass, field, replace
from fractions import Fraction
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING

import av
import av.filter
import numpy as np
import pandas as pd
from tqdm import tqdm

from tsp_pretrain.atomic import write_json
from tsp_pretrain.digest import code_digest, file_digest
from tsp_pretrain.pools import process_pool
from tsp_pretrain.video.official import STANDARD_FRAME_RATE, bilinear_resize, subsampling_step
from tsp_pretrain.video.probe import (
    TRUNCATION_TOLERANCE,
    TruncatedVideoError,
    display_transform,
    readable_duration_check,
)
from tsp_pretrain.video.store import (
    FrameStoreError,
    StoredVideo,
    StoreSettings,
    commit_index,
    read_index,
    read_pending_entries,
    remove_unindexed_files,
    stored_frame_bytes,
    write_index,
    write_mp4,
    write_npy,
    write_pending_entry,
)

if TYPE_CHECKING:
    from tsp_pretrain.config import DecodeParams

log = logging.getLogger(__name__)

#: Decode methods (``decode.method``): ``official`` reproduces the released TSP code's frames
#: (:mod:`tsp_pretrain.video.official`); ``ffmpeg`` is one fps filter and FFmpeg's area scaling.
METHODS = ("official", "ffmpeg")


#: The library modules whose code decides what a stored video holds (relative to the package):
#: their digest is part of the store settings, so that changing them decodes every video again.
DECODE_CODE = (
    "video/decode.py",
    "video/encode.py",
    "video/store.py",
    "video/probe.py",
    "video/official.py",
)


def store_settings(decode: DecodeParams, frame_rate: float) -> StoreSettings:
    """The store settings the ``decode`` params give at ``frame_rate``, with the digest of the
    decoding code (:data:`DECODE_CODE`)."""
    return StoreSettings(
        frame_rate,
        decode.stored_short_side,
        decode.store,
        code=code_digest(*DECODE_CODE),
        frame_size=decode.frame_size,
        method=decode.method,
        mp4_crf=decode.mp4_crf,
        mp4_pix_fmt=decode.mp4_pix_fmt,
        mp4_keyint=decode.mp4_keyint,
    )


class DecodeError(RuntimeError):
    """A video that could not be decoded completely."""


#: Errors that mean "this video is bad" (corrupt containers make PyAV raise ValueError and
#: UnicodeDecodeError too): reported and skipped. Anything else is a bug and raises.
_SKIPPABLE = (DecodeError, av.error.FFmpegError, OSError, ValueError)


def target_size(
    height: int,
    width: int,
    short_side: int | None,
    even: bool,
    frame_size: tuple[int, int] | None = None,
) -> tuple[int, int]:
    """(height, width) a ``height x width`` frame is stored at.

    With ``frame_size``: exactly that, aspect ratio not kept (the recipe's rule); odd sides are
    kept too (the mp4 store pads them, :func:`tsp_pretrain.video.store.write_mp4`). Else the short
    side scaled to ``short_side``, aspect ratio kept; ``even`` then rounds both sides to even
    numbers (H.264 with yuv420p refuses odd sizes). ``short_side=None`` and no ``frame_size``:
    the size unchanged.
    """
    if frame_size is not None:
        return int(frame_size[0]), int(frame_size[1])
    if short_side is None:
        return height, width
    scale = short_side / min(height, width)
    step = 2 if even else 1
    return step * round(height * scale / step), step * round(width * scale / step)


@dataclass
class DecodeLog:
    """What went wrong while decoding one video, filled in by :func:`decode_frames`.

    ``lost`` holds the output frame ranges ``[start, stop)`` whose source frames could not be
    decoded (the stored frames there repeat the last good frame); ``bad_packets`` counts the
    packets the decoder rejected and ``first_error`` quotes the first rejection.
    """

    lost: list[tuple[int, int]] = field(default_factory=list)
    bad_packets: int = 0
    first_error: str = ""
    #: The video's end could not be decoded (the demuxer gave up, or no good frame came after the
    #: last rejected one): the output stops early and the caller pads it (see :func:`pad_tail`).
    tail_lost: bool = False

    @property
    def lost_frames(self) -> int:
        return sum(stop - start for start, stop in self.lost)


def _lost_ranges(
    good: list[float], failed: list[float], t0: float, rate: Fraction, count: int
) -> list[tuple[int, int]]:
    """Output frame ranges of the fps filter that stand for source frames that failed to decode.

    With FFmpeg's fps rule, output frame k shows the last good source frame starting before
    ``t0 + (k + 0.5) / rate``. It stands for a lost frame when that time is past the first failed
    packet of a gap and not past the next good frame. Each range is widened by one frame on both
    sides, so that rounding in the filter's time base never leaves a lost frame unmarked.
    """
    good_times = np.asarray(sorted(good))
    ranges: list[list[int]] = []
    for f in sorted(failed):
        nxt = np.searchsorted(good_times, f, side="right")
        lo = math.floor((f - t0) * rate - 0.5) + 1
        hi = count  # no good frame after it: lost to the end
        if nxt < len(good_times):
            hi = math.floor((good_times[nxt] - t0) * rate - 0.5) + 1
        lo, hi = max(lo - 1, 0), min(hi + 1, count)
        if lo >= hi:
            continue
        if ranges and lo <= ranges[-1][1]:
            ranges[-1][1] = max(ranges[-1][1], hi)
        else:
            ranges.append([lo, hi])
    return [(lo, hi) for lo, hi in ranges]


def _lost_head(
    stream: av.video.stream.VideoStream, failed: list[float], first: av.VideoFrame, rate: Fraction
) -> int:
    """How many output frames the damage before the first good frame stands for.

    When the video's first frames are lost, the fps filter would start the timeline at the first
    good frame and shift every later frame (and every annotation) by the lost stretch. Counting
    from the stream's start (or the first failed frame, if earlier), these frames are padded with
    the first good frame instead, as a lost stretch in the middle is with the last good one. The
    count rounds half up, as the fps filter places its first frame (``AV_ROUND_NEAR_INF``).
    """
    if not failed or first.pts is None or first.time_base is None:
        return 0
    first_time = first.pts * first.time_base
    if min(failed) >= first_time:
        return 0
    start = Fraction(min(failed)).limit_denominator(1 << 20)
    if stream.start_time is not None and stream.time_base is not None:
        start = min(start, stream.start_time * stream.time_base)
    return max(math.floor((first_time - start) * rate + Fraction(1, 2)), 0)


@dataclass(frozen=True)
class Resampling:
    """How :func:`decode_frames` turns one video's frames into stored frames, decided once from
    its arguments (:meth:`of`): the ``fps`` filter's rate, which of its output frames are kept,
    and the size rule."""

    #: The ``fps`` filter's rate: the target ``frame_rate``, or the official standardisation's.
    rate: Fraction
    #: Every ``step``-th filter output is kept (the official index subsampling; 1: all).
    step: int
    #: RGB and the official bilinear float resize; else FFmpeg's area ``scale`` filter in YUV.
    official: bool
    short_side: int | None
    even: bool
    frame_size: tuple[int, int] | None

    @classmethod
    def of(
        cls,
        frame_rate: float,
        short_side: int | None,
        even: bool,
        frame_size: tuple[int, int] | None,
        method: str,
    ) -> Resampling:
        """The resampling of ``method`` (:data:`METHODS`; a ``ValueError`` otherwise, and an
        :class:`~tsp_pretrain.video.official.OfficialRateError` for a rate it cannot give)."""
        if method not in METHODS:
            raise ValueError(f"decode method {method!r}: expected one of {', '.join(METHODS)}")
        official = method == "official"
        step = subsampling_step(frame_rate) if official else 1
        rate = Fraction(STANDARD_FRAME_RATE if official else frame_rate).limit_denominator(1001)
        return cls(rate, step, official, short_side, even, frame_size)


def _filter_graph(
    stream: av.video.stream.VideoStream, first: av.VideoFrame, how: Resampling
) -> tuple[av.filter.Graph, tuple[int, int]]:
    """The filter graph of one video, built on its first good frame (which carries the display
    rotation), and the (height, width) its frames are stored at.

    The graph: the display rotation as FFmpeg's command line applies it, the ``fps`` filter at
    ``how.rate`` and, for the ``ffmpeg`` method, FFmpeg's area ``scale`` to the stored size.
    """
    graph = av.filter.Graph()
    chain = [graph.add_buffer(template=stream)]
    angle, filters = display_transform(first)
    chain += [graph.add(name, args) for name, args in filters]
    chain.append(graph.add("fps", f"fps={how.rate}"))
    height, width = stream.codec_context.height, stream.codec_context.width
    if angle in (90, 270):
        height, width = width, height
    size = target_size(height, width, how.short_side, how.even, how.frame_size)
    if size != (height, width) and not how.official:
        chain.append(graph.add("scale", f"w={size[1]}:h={size[0]}:flags=area"))
    chain.append(graph.add("buffersink"))
    for a, b in itertools.pairwise(chain):
        a.link_to(b)
    graph.configure()
    return graph, size


@dataclass
class _SourceTimes:
    """Start times (seconds) of one video's source frames that decoded (``good``) and of those
    that failed or were dropped as predicted from lost data (``failed``)."""

    good: list[float] = field(default_factory=list)
    failed: list[float] = field(default_factory=list)


def _packets(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, report: DecodeLog
) -> Iterator[av.Packet]:
    """The stream's packets; a demuxing error ends them as a lost tail (nothing readable after)."""
    try:
        yield from container.demux(stream)
    except av.error.FFmpegError as err:
        report.tail_lost = True
        report.first_error = report.first_error or f"demuxing: {err}"


def _good_frames(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    report: DecodeLog,
    times: _SourceTimes,
) -> Iterator[av.VideoFrame]:
    """The decoded frames that hold no lost data, as FFmpeg would skip bad packets.

    A packet the decoder rejects is counted in ``report`` and skipped; the frames decoded after
    it are dropped too up to the next keyframe later than every failed frame (they are predicted
    from the lost data). Every frame's time goes into ``times``, good or failed.
    """
    damaged = False  # a packet failed and no keyframe has come since
    # closed before the container, also when the consumer stops early
    with closing(_packets(container, stream, report)) as packets:
        for packet in packets:
            try:
                frames = stream.decode(packet)
            except av.error.FFmpegError as err:
                report.bad_packets += 1
                report.first_error = report.first_error or str(err)
                damaged = True
                if packet.pts is not None and packet.time_base is not None:
                    times.failed.append(float(packet.pts * packet.time_base))
                continue
            for frame in frames:
                if damaged:  # predicted from lost data (concealed junk) until a later keyframe
                    later = frame.time is not None and frame.time > max(times.failed, default=-1)
                    if not (frame.key_frame and later):
                        if frame.time is not None:
                            times.failed.append(frame.time)
                        continue
                    damaged = False
                if frame.time is not None:
                    times.good.append(frame.time)
                yield frame


class _FilterOutput:
    """The filter graph of one video and the stored frames it gives: built on the first good
    frame (:meth:`start`), fed with :meth:`push`, which yields what the graph outputs, with the
    lost start padded, every ``step``-th output kept and the official resize applied."""

    def __init__(self, how: Resampling) -> None:
        self.how = how
        self.graph: av.filter.Graph | None = None
        self.size = (0, 0)  # the stored (height, width), set by start
        self.count = 0  # filter outputs so far, before the subsampling
        self.head = 0  # output frames lost before the first good frame (damage at the very start)

    def start(
        self, stream: av.video.stream.VideoStream, first: av.VideoFrame, failed: list[float]
    ) -> None:
        self.graph, self.size = _filter_graph(stream, first, self.how)
        self.head = _lost_head(stream, failed, first, self.how.rate)

    def push(self, frame: av.VideoFrame | None) -> Iterator[np.ndarray]:
        """Feed ``frame`` (None: the end) and yield the stored frames the graph gives for it."""
        self.graph.vpush(frame)
        while True:
            try:
                out = self.graph.vpull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return
            # the lost start, if any, holds the first good frame
            copies, stored = 1 + (self.head if self.count == 0 else 0), None
            for _ in range(copies):
                if self.count % self.how.step == 0:  # the official index subsampling
                    stored = self._image(out) if stored is None else stored
                    yield stored
                self.count += 1

    def _image(self, frame: av.VideoFrame) -> np.ndarray:
        rgb = frame.to_ndarray(format="rgb24")
        return bilinear_resize(rgb[None], self.size)[0] if self.how.official else rgb

    def record_lost(self, times: _SourceTimes, report: DecodeLog) -> None:
        """Fill in ``report``'s lost ranges (stored frames) from the failed source frames."""
        if times.failed and times.good:
            rate = self.how.rate
            t0 = min(times.good) - self.head / rate
            lost = _lost_ranges(times.good, times.failed, t0, rate, self.count)
            report.lost = _subsampled_ranges(lost, self.how.step)
            report.tail_lost = report.tail_lost or max(times.failed) > max(times.good)


def decode_frames(
    path: str | Path,
    frame_rate: float,
    short_side: int | None,
    even: bool = False,
    report: DecodeLog | None = None,
    frame_size: tuple[int, int] | None = None,
    method: str = "ffmpeg",
) -> Iterator[np.ndarray]:
    """Yield RGB uint8 ``H x W x 3`` frames of ``path`` resampled to ``frame_rate``.

    ``method`` (see :data:`METHODS`): ``ffmpeg`` resamples with one ``fps`` filter to
    ``frame_rate`` and resizes with FFmpeg's area filter in YUV; ``official`` applies the
    released TSP code's rule (:mod:`tsp_pretrain.video.official`): the ``fps`` filter to 30 fps,
    every ``30 / frame_rate``-th frame, RGB, bilinear float resize without antialiasing.

    Frames are shown as displayed: a display rotation (phone videos) is applied as FFmpeg's
    command line does (:func:`tsp_pretrain.video.probe.display_transform`), before resizing.
    ``short_side=None`` keeps the (displayed) source size; ``frame_size=(H, W)`` resizes every
    frame to exactly ``H x W`` instead (see :func:`target_size`).

    Packets the decoder rejects (corrupt data) are skipped, as FFmpeg does, and decoding goes on
    with the next one; the frames decoded after a rejected packet up to the next keyframe that
    comes after every rejected frame's time are dropped too (they are predicted from the lost
    data: FFmpeg would show them with concealment artefacts). The fps filter then repeats the
    last good frame over the gap, so the timeline stays aligned. The lost output frames are
    recorded in ``report`` (filled in when the iterator is exhausted). A lost end (data the
    demuxer cannot read any further, or no good frame after the last rejected one) ends the
    output early and sets ``report.tail_lost``. Raises
    ``av.error.FFmpegError`` on files that cannot be opened.
    """
    output = _FilterOutput(Resampling.of(frame_rate, short_side, even, frame_size, method))
    report = report if report is not None else DecodeLog()
    times = _SourceTimes()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        with closing(_good_frames(container, stream, report, times)) as frames:
            for frame in frames:
                if output.graph is None:
                    output.start(stream, frame, times.failed)
                yield from output.push(frame)
        if output.graph is None:
            return
        yield from output.push(None)
    output.record_lost(times, report)


def _subsampled_ranges(ranges: list[tuple[int, int]], step: int) -> list[tuple[int, int]]:
    """Ranges ``[lo, hi)`` of filter output frames as ranges of the frames kept, every
    ``step``-th from the first (the official subsampling; ``step`` 1: unchanged)."""
    kept = [(-(-lo // step), -(-hi // step)) for lo, hi in ranges]
    return [(lo, hi) for lo, hi in kept if lo < hi]


def pad_tail(
    frames: Iterator[np.ndarray], report: DecodeLog, num_frames: int
) -> Iterator[np.ndarray]:
    """``frames``, then, when the decoder lost the video's end, its last frame repeated up to
    ``num_frames`` (the length the probed duration promises), recorded as lost in ``report``.

    The same rule as a lost stretch in the middle: the timeline keeps the source's length and the
    lost frames hold the last good one. A file that simply has fewer frames than its header says
    (no decoding error) is not padded: the truncation check rejects it.
    """
    count, last = 0, None
    for frame in frames:
        count, last = count + 1, frame
        yield frame
    if not report.tail_lost or last is None or count >= num_frames:
        return
    for _ in range(num_frames - count):
        yield last
    if report.lost and report.lost[-1][1] >= count:
        report.lost[-1] = (report.lost[-1][0], num_frames)
    else:
        report.lost.append((max(count - 1, 0), num_frames))


@dataclass(frozen=True)
class DecodeJob:
    video_id: str
    source: str  # the file to read
    duration: float
    out_dir: str
    settings: StoreSettings
    min_readable_fraction: float = 0.5
    #: The file's path relative to the videos folder (subfolders kept), as the index records it.
    source_name: str = ""

    @property
    def recorded_source(self) -> str:
        return self.source_name or Path(self.source).name


def _check_source(source: Path) -> None:
    """A :class:`DecodeError` for a source that is missing, empty or cut short (a partial
    download is a truncation to fetch again, never a lost tail to pad)."""
    if not source.is_file():
        raise DecodeError(f"{source}: file not found")
    if source.stat().st_size == 0:
        raise DecodeError(f"{source}: empty file (0 bytes)")
    try:
        readable_duration_check(source)
    except TruncatedVideoError as err:
        raise DecodeError(str(err)) from err


def _write_frames(
    out: Path, frames: Iterator[np.ndarray], settings: StoreSettings, source: Path, log_: DecodeLog
) -> tuple[int, int, int]:
    """Write ``frames`` to ``out`` in the store's format: (num_frames, height, width). Errors
    while decoding or writing are a :class:`DecodeError` naming ``source``."""
    try:
        if settings.store == "npy":
            return write_npy(out, frames)
        return write_mp4(
            out,
            frames,
            settings.frame_rate,
            settings.mp4_crf,
            settings.mp4_pix_fmt,
            settings.mp4_keyint,
        )
    except av.error.FFmpegError as err:
        raise DecodeError(f"{source}: FFmpeg failed while decoding ({err})") from err
    except FrameStoreError as err:
        detail = f"; first decoder error: {log_.first_error}" if log_.first_error else ""
        raise DecodeError(f"{source}: {err}{detail}") from err


def _refusal(job: DecodeJob, count: int, log_: DecodeLog, expected: float) -> str | None:
    """Why a decoded video is not kept, or None: truncated (fewer frames than its duration
    promises, by more than the probe's :data:`~tsp_pretrain.video.probe.TRUNCATION_TOLERANCE`
    and two frames) or corrupt (less than ``min_readable_fraction`` of them decodes)."""
    if not math.isfinite(expected):
        return None
    readable = count - log_.lost_frames
    if count < expected * (1 - TRUNCATION_TOLERANCE) - 2:
        return (
            f"truncated: decoded {count} frames at {job.settings.frame_rate} fps, "
            f"expected about {expected:.0f} from its duration {job.duration:.2f} s"
        )
    if readable < job.min_readable_fraction * expected:
        return (
            f"corrupt: only {readable} of about {expected:.0f} frames ({readable / expected:.0%}) "
            f"could be decoded, below decode.min_readable_fraction={job.min_readable_fraction}"
        )
    return None


def _decode_one(job: DecodeJob) -> tuple[StoredVideo, DecodeLog]:
    """Decode one video into the store (runs in a worker process): its index entry and what
    went wrong. A video that cannot be kept is a :class:`DecodeError`, its file removed."""
    source = Path(job.source)
    _check_source(source)
    out = Path(job.out_dir) / f"{job.video_id}{job.settings.suffix}"
    settings = job.settings
    log_ = DecodeLog()
    expected = job.duration * settings.frame_rate
    frames = decode_frames(
        source,
        settings.frame_rate,
        settings.short_side,
        even=settings.store == "mp4",
        report=log_,
        frame_size=settings.frame_size,
        method=settings.method,
    )
    if math.isfinite(expected):
        frames = pad_tail(frames, log_, round(expected))
    count, h, w = _write_frames(out, frames, settings, source, log_)
    problem = _refusal(job, count, log_, expected)
    if problem is not None:
        out.unlink(missing_ok=True)
        detail = f" (first decoder error: {log_.first_error})" if log_.first_error else ""
        raise DecodeError(f"{source}: {problem}{detail}; re-download or re-encode it")
    digest = file_digest(source)
    entry = StoredVideo(
        job.video_id,
        out.name,
        count,
        h,
        w,
        job.recorded_source,
        digest,
        settings,
        lost=tuple(log_.lost),
    )
    return entry, log_


@dataclass
class DecodeReport:
    """What a decode run did: which videos it decoded, reused, skipped, found damaged or removed.

    ``damaged`` lists the videos stored with lost frames: how many, which frame ranges and time
    ranges (seconds at ``frame_rate``), and the decoder's first complaint.

    :meth:`to_json` (the DVC-tracked report) describes the *store*, not the run: how many videos
    it holds, which were skipped and why, which are damaged. Whether a video was decoded now or
    reused from an earlier run is history, and a report holding it would differ between a fresh
    clone and a resumed run with the same store; :meth:`run_summary` (the log line) has it.
    """

    decoded: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    damaged: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "counts": {
                "stored": len(self.decoded) + len(self.reused),
                "skipped": len(self.skipped),
                "damaged": len(self.damaged),
            },
            "skipped": self.skipped,
            "damaged": self.damaged,
        }

    def run_summary(self) -> str:
        """This run's history, for the log: decoded, reused, skipped, stale files removed."""
        return (
            f"decoded {len(self.decoded)}, reused {len(self.reused)}, skipped "
            f"{len(self.skipped)}, damaged {len(self.damaged)}, removed stale {len(self.removed)}"
        )


def _damage(job: DecodeJob, entry: StoredVideo, log_: DecodeLog) -> dict:
    rate = job.settings.frame_rate
    return {
        "video_id": job.video_id,
        "source": job.source,
        "lost_frames": log_.lost_frames,
        "num_frames": entry.num_frames,
        "readable_fraction": round(1 - log_.lost_frames / max(entry.num_frames, 1), 4),
        "lost_frame_ranges": [list(r) for r in log_.lost],
        "lost_seconds": [[round(a / rate, 3), round(b / rate, 3)] for a, b in log_.lost],
        "bad_packets": log_.bad_packets,
        "first_error": log_.first_error,
    }


class DiskSpaceError(RuntimeError):
    """The frame store would not fit on the disk: raised before anything is decoded."""


#: Aspect ratio assumed for videos whose size the videos table does not give (16:9, the common
#: widest case: the estimate errs on the large side for 4:3 material).
ASSUMED_ASPECT = 16 / 9


def estimate_store_bytes(videos: pd.DataFrame, settings: StoreSettings) -> int:
    """Bytes the store needs for ``videos`` (columns duration, optional width and height).

    Frames: duration x ``frame_rate``; frame size: ``settings.frame_size`` when set, else the
    short side scaled to ``settings.short_side`` with the video's aspect ratio (``width``/``height``
    columns when the table has them, else :data:`ASSUMED_ASPECT`); bytes per frame from
    :func:`tsp_pretrain.video.store.stored_frame_bytes`.
    """
    total = 0.0
    has_size = {"width", "height"} <= set(videos.columns)
    even = settings.store == "mp4"
    side, fixed = settings.short_side, settings.frame_size
    default = fixed or target_size(side, round(side * ASSUMED_ASPECT), side, even)
    mp4_options = (
        (settings.mp4_crf, settings.mp4_pix_fmt, settings.mp4_keyint)
        if settings.store == "mp4"
        else ()
    )
    for row in videos.itertuples(index=False):
        size = default
        if fixed is None and has_size and row.width > 0 and row.height > 0:
            size = target_size(int(row.height), int(row.width), side, even)
        frames = float(row.duration) * settings.frame_rate
        if math.isfinite(frames):
            total += frames * stored_frame_bytes(*size, settings.store, *mp4_options)
    return int(total)


def check_disk_space(out_dir: Path, videos: pd.DataFrame, settings: StoreSettings) -> None:
    """Raise :class:`DiskSpaceError`, with the figures and the fixes, if ``videos`` cannot fit."""
    needed = estimate_store_bytes(videos, settings)
    free = shutil.disk_usage(out_dir).free
    if needed <= free:
        return
    other = "mp4" if settings.store == "npy" else "npy"
    alt = estimate_store_bytes(videos, replace(settings, store=other))
    size = (
        f"decode.short_side (now {settings.short_side})"
        if settings.frame_size is None
        else f"decode.frame_size (now {list(settings.frame_size)})"
    )
    raise DiskSpaceError(
        f"decode: the {settings.store} frame store needs ~{needed / 1e9:.1f} GB in {out_dir} for "
        f"{len(videos)} videos, {free / 1e9:.1f} GB free: free space, "
        + (f"choose decode.store: mp4 (~{alt / 1e9:.1f} GB), " if other == "mp4" else "")
        + f"or lower {size}"
    )


def is_current(entry: StoredVideo | None, job: DecodeJob, out_dir: str | Path) -> bool:
    """Whether ``entry`` (of the store ``out_dir``) can be reused for ``job`` instead of decoding:
    the same settings, its file present, the same source file and content (digest).

    The one reuse rule: :func:`decode_dataset` asks it of every video, and so does a shard of the
    decode stage of the videos in the merged store (:mod:`tsp_pretrain.video.shards`).
    """
    if entry is None or entry.settings != job.settings:
        return False
    source = Path(job.source)
    return (
        (Path(out_dir) / entry.file).is_file()
        and source.is_file()
        # stores made before the index kept subfolders recorded the bare file name
        and entry.source in (job.recorded_source, source.name)
        and entry.source_digest == file_digest(source)
    )


def decode_jobs(
    videos: pd.DataFrame,
    videos_dir: str | Path,
    out_dir: str | Path,
    settings: StoreSettings,
    min_readable_fraction: float = 0.5,
) -> list[DecodeJob]:
    """One job per row of ``videos`` (columns video_id, filename, duration), in table order."""
    return [
        DecodeJob(
            r.video_id,
            str(Path(videos_dir) / r.filename),
            float(r.duration),
            str(out_dir),
            settings,
            min_readable_fraction,
            source_name=r.filename,
        )
        for r in videos.itertuples(index=False)
    ]


def stored_entries(out_dir: str | Path) -> dict[str, StoredVideo]:
    """The store's entries: its ``index.json`` and the entry files of a killed run, read only."""
    index = read_index(out_dir)
    index.update(read_pending_entries(out_dir))
    return index


def reused_entry(entry: StoredVideo, job: DecodeJob) -> StoredVideo:
    """``entry``, reused for ``job``, as the index records it: with the source the table gives
    (an entry made before the index kept subfolders gets the full path)."""
    return replace(entry, source=job.recorded_source)


def current_entries(
    jobs: list[DecodeJob], entries: dict[str, StoredVideo], out_dir: str | Path
) -> dict[str, StoredVideo]:
    """The jobs' videos that ``entries`` (of the store ``out_dir``) hold current
    (:func:`is_current`), as :func:`decode_dataset` would reuse them (:func:`reused_entry`)."""
    return {
        job.video_id: reused_entry(entries[job.video_id], job)
        for job in jobs
        if is_current(entries.get(job.video_id), job, out_dir)
    }


def sort_report(report: DecodeReport, jobs: list[DecodeJob]) -> None:
    """Sort the report's lists in the order of the videos table: a run with several workers
    finishes videos in any order, and the report must not depend on it."""
    position = {job.video_id: k for k, job in enumerate(jobs)}
    report.decoded.sort(key=position.__getitem__)
    report.reused.sort(key=position.__getitem__)
    report.skipped.sort(key=lambda s: position[s["video_id"]])
    report.damaged.sort(key=lambda d: position[d["video_id"]])


def write_report(path: str | Path, settings: StoreSettings, report: DecodeReport) -> None:
    """The decode stage's report file: the settings, then :meth:`DecodeReport.to_json`."""
    document = {"settings": vars(settings), **report.to_json()}
    write_json(path, document, indent=1, sort_keys=False)


#: What a decode job gave: its entry and damage log, or None and the error that skips it.
_Result = tuple[StoredVideo, DecodeLog] | None
_Record = Callable[[DecodeJob, _Result, BaseException | None], None]


@dataclass
class _Bookkeeping:
    """A decode run's store while it runs: the index it commits when it ends and its report.

    Each finished video's entry goes to a file of its own as it finishes
    (:func:`~tsp_pretrain.video.store.write_pending_entry`): constant cost per video.
    """

    out_dir: Path
    index: dict[str, StoredVideo]
    report: DecodeReport = field(default_factory=DecodeReport)

    def plan(self, jobs: list[DecodeJob]) -> list[DecodeJob]:
        """The jobs to decode. First the index keeps only the current entries of the table's
        videos (the others are removed or decoded again), is written, and every other file of
        the store is deleted."""
        wanted = {job.video_id for job in jobs}
        for vid in sorted(set(self.index) - wanted):  # their files go in the sweep below
            self.index.pop(vid)
            self.report.removed.append(vid)
        current = current_entries(jobs, self.index, self.out_dir)
        todo = []
        for job in jobs:
            if job.video_id in current:
                self.index[job.video_id] = current[job.video_id]
                self.report.reused.append(job.video_id)
            else:
                self.index.pop(job.video_id, None)
                todo.append(job)
        # The index first: then the sweep may delete the merged entry files (and a kill in
        # between loses nothing).
        write_index(self.out_dir, self.index)
        remove_unindexed_files(self.out_dir, self.index)
        return todo

    def record(self, job: DecodeJob, result: _Result, error: BaseException | None) -> None:
        """Record a finished job: its entry (in the index and its entry file) or its skip."""
        if error is not None:
            log.warning("skipping %s: %s", job.video_id, error)
            self.report.skipped.append(
                {"video_id": job.video_id, "source": job.source, "reason": str(error)}
            )
            return
        entry, log_ = result
        self.index[job.video_id] = entry
        self.report.decoded.append(job.video_id)
        if entry.lost:
            self.report.damaged.append(_damage(job, entry, log_))
            log.warning(
                "%s: %d frames lost to corrupt data (%s); stored with the last good frame "
                "repeated there",
                job.video_id,
                log_.lost_frames,
                job.source,
            )
        write_pending_entry(self.out_dir, entry)


def _decode_serially(todo: list[DecodeJob], record: _Record, bar: tqdm) -> None:
    """Decode ``todo`` in this process, in order; a bad video is recorded as skipped. Only the
    decoding may fail as a bad video: an error recording it (a full disk) stops the run, as in
    :func:`_decode_in_pool`."""
    for job in todo:
        try:
            result = _decode_one(job)
        except _SKIPPABLE as err:
            record(job, None, err)
        else:
            record(job, result, None)
        bar.update()


def _decode_in_pool(todo: list[DecodeJob], workers: int, record: _Record, bar: tqdm) -> None:
    """Decode ``todo`` in ``workers`` processes, recording each video as it finishes; an error
    that is no bad video (:data:`_SKIPPABLE`) stops the run."""
    with process_pool(workers, get_context("spawn")) as pool:
        pending: dict[Future, DecodeJob] = {pool.submit(_decode_one, j): j for j in todo}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                job = pending.pop(future)
                error = future.exception()
                if error is not None and not isinstance(error, _SKIPPABLE):
                    raise error
                record(job, None if error else future.result(), error)
                bar.update()


def decode_dataset(
    videos: pd.DataFrame,
    videos_dir: str | Path,
    out_dir: str | Path,
    settings: StoreSettings,
    workers: int = 1,
    progress: bool = True,
    min_readable_fraction: float = 0.5,
) -> DecodeReport:
    """Decode every video of a canonical videos table into ``out_dir``.

    ``videos`` needs columns video_id, filename, duration. A video already in the store with the
    same settings and the same source content (digest) is reused; every other file in ``out_dir``
    (stale videos, outdated ones about to be decoded again, partial files of a killed run) is
    removed first, so a failure never leaves anything but ``index.json`` and finished videos.
    Before decoding, the store's size is estimated and :class:`DiskSpaceError` raised when the
    disk cannot hold it. A video with lost frames is kept when at least
    ``min_readable_fraction`` of it decodes.

    Bookkeeping costs the same per video however large the store: each finished video's entry is
    written to a small file of its own (:func:`tsp_pretrain.video.store.write_pending_entry`), and
    ``index.json`` is written twice per run, at the start (what is reused) and at the end (the
    complete index, entry files deleted), also when the run stops on an exception. A killed run's
    entry files are merged when the next run starts, so it resumes where it stopped. The
    report's lists follow the table's order, whatever the number of workers.
    """
    if settings.method == "official":
        subsampling_step(settings.frame_rate)  # an unsupported rate fails before any work
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    run = _Bookkeeping(out_dir, stored_entries(out_dir))  # with the videos a killed run finished
    jobs = decode_jobs(videos, videos_dir, out_dir, settings, min_readable_fraction)
    todo = run.plan(jobs)
    check_disk_space(out_dir, videos[videos["video_id"].isin({j.video_id for j in todo})], settings)
    if run.report.reused:
        log.info("reusing %d videos already decoded with these settings", len(run.report.reused))
    bar = tqdm(total=len(todo), desc="decode", unit="video", disable=not progress)
    try:
        if workers <= 1:
            _decode_serially(todo, run.record, bar)
        else:
            _decode_in_pool(todo, workers, run.record, bar)
    finally:  # the complete index, once, whatever stopped the loop
        commit_index(out_dir, run.index)
        bar.close()
    sort_report(run.report, jobs)
    return run.report
