"""Decoding source videos into the frame store: resample to ``frame_rate``, resize, write.

Resampling uses FFmpeg's ``fps`` filter through PyAV's filter graph (the same rule as the official
recipe's ``ffmpeg -filter:v fps=...`` re-encode). Its rule: output frame k (time k / frame_rate
after the first frame) is the last source frame that starts before (k + 0.5) / frame_rate, i.e.
source frame ``ceil((k + 0.5) * source_fps / frame_rate) - 1``: every 2nd frame for 30 -> 15 fps.
Resizing uses FFmpeg's ``scale`` filter (area interpolation, which does not alias on
downscaling) to a fixed short side; the RGB conversion is PyAV's ``to_ndarray(format="rgb24")``,
identical to a direct decode.

:func:`decode_dataset` runs over a videos table in parallel processes, skips videos already decoded
with the same settings (resumable), and reports, never crashes on, unreadable or truncated files.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from fractions import Fraction
from multiprocessing import get_context
from pathlib import Path

import av
import av.filter
import numpy as np
import pandas as pd
from tqdm import tqdm

from tsp_pretrain.digest import file_digest
from tsp_pretrain.video.store import (
    INDEX_FILE,
    StoredVideo,
    StoreSettings,
    read_index,
    write_index,
    write_mp4,
    write_npy,
)

log = logging.getLogger(__name__)

#: A decode that yields fewer frames than the probed duration promises, by more than this fraction
#: (and more than two frames), is treated as a truncated file.
TRUNCATION_TOLERANCE = 0.05


class DecodeError(RuntimeError):
    """A video that could not be decoded completely."""


#: Errors that mean "this video is bad" (corrupt containers make PyAV raise ValueError and
#: UnicodeDecodeError too): reported and skipped. Anything else is a bug and raises.
_SKIPPABLE = (DecodeError, av.error.FFmpegError, OSError, ValueError)


def target_size(height: int, width: int, short_side: int, even: bool) -> tuple[int, int]:
    """(height, width) with the short side scaled to ``short_side``, aspect ratio kept.

    ``even`` rounds both sides to even numbers (H.264 with yuv420p refuses odd sizes).
    """
    scale = short_side / min(height, width)
    step = 2 if even else 1
    return step * round(height * scale / step), step * round(width * scale / step)


def decode_frames(
    path: str | Path, frame_rate: float, short_side: int | None, even: bool = False
) -> Iterator[np.ndarray]:
    """Yield RGB uint8 ``H x W x 3`` frames of ``path`` resampled to ``frame_rate``.

    ``short_side=None`` keeps the source size. Raises ``av.error.FFmpegError`` subclasses on
    corrupt input (callers decide whether to skip).
    """
    rate = Fraction(frame_rate).limit_denominator(1001)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        graph = av.filter.Graph()
        chain = [graph.add_buffer(template=stream), graph.add("fps", f"fps={rate}")]
        height, width = stream.codec_context.height, stream.codec_context.width
        if short_side is not None:
            h, w = target_size(height, width, short_side, even)
            if (h, w) != (height, width):
                chain.append(graph.add("scale", f"w={w}:h={h}:flags=area"))
        chain.append(graph.add("buffersink"))
        for a, b in itertools.pairwise(chain):
            a.link_to(b)
        graph.configure()

        def drain() -> Iterator[np.ndarray]:
            while True:
                try:
                    frame = graph.vpull()
                except (av.error.BlockingIOError, av.error.EOFError):
                    return
                yield frame.to_ndarray(format="rgb24")

        for frame in container.decode(stream):
            graph.vpush(frame)
            yield from drain()
        graph.vpush(None)
        yield from drain()


@dataclass(frozen=True)
class DecodeJob:
    video_id: str
    source: str
    duration: float
    out_dir: str
    settings: StoreSettings


def _decode_one(job: DecodeJob) -> StoredVideo:
    """Decode one video into the store (runs in a worker process)."""
    source = Path(job.source)
    if not source.is_file():
        raise DecodeError(f"{source}: file not found")
    if source.stat().st_size == 0:
        raise DecodeError(f"{source}: empty file (0 bytes)")
    out = Path(job.out_dir) / f"{job.video_id}{job.settings.suffix}"
    frames = decode_frames(
        source, job.settings.frame_rate, job.settings.short_side, even=job.settings.store == "mp4"
    )
    try:
        if job.settings.store == "npy":
            count, h, w = write_npy(out, frames)
        else:
            count, h, w = write_mp4(out, frames, job.settings.frame_rate)
    except av.error.FFmpegError as err:
        raise DecodeError(f"{source}: FFmpeg failed while decoding ({err})") from err
    expected = job.duration * job.settings.frame_rate
    if math.isfinite(expected) and count < expected * (1 - TRUNCATION_TOLERANCE) - 2:
        out.unlink(missing_ok=True)
        raise DecodeError(
            f"{source}: truncated: decoded {count} frames at {job.settings.frame_rate} fps, "
            f"expected about {expected:.0f} from its duration {job.duration:.2f} s"
        )
    return StoredVideo(
        job.video_id, out.name, count, h, w, source.name, file_digest(source), job.settings
    )


@dataclass
class DecodeReport:
    """What a decode run did: counts and, for every skipped video, why."""

    decoded: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "counts": {
                "decoded": len(self.decoded),
                "reused": len(self.reused),
                "skipped": len(self.skipped),
                "removed_stale": len(self.removed),
            },
            "skipped": self.skipped,
            "removed_stale": self.removed,
        }


def _is_current(entry: StoredVideo | None, job: DecodeJob, out_dir: Path) -> bool:
    if entry is None or entry.settings != job.settings:
        return False
    source = Path(job.source)
    return (
        (out_dir / entry.file).is_file()
        and source.is_file()
        and entry.source == source.name
        and entry.source_digest == file_digest(source)
    )


def decode_dataset(
    videos: pd.DataFrame,
    videos_dir: str | Path,
    out_dir: str | Path,
    settings: StoreSettings,
    workers: int = 1,
    progress: bool = True,
) -> DecodeReport:
    """Decode every video of a canonical videos table into ``out_dir``.

    ``videos`` needs columns video_id, filename, duration. A video already in the store with the
    same settings and the same source content (digest) is reused; files in ``out_dir`` that
    belong to no listed video are removed (and reported). The index is rewritten after every
    finished video, so an interrupted run resumes where it stopped.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    index = read_index(out_dir)
    report = DecodeReport()
    jobs = [
        DecodeJob(
            r.video_id,
            str(Path(videos_dir) / r.filename),
            float(r.duration),
            str(out_dir),
            settings,
        )
        for r in videos.itertuples(index=False)
    ]
    wanted = {job.video_id for job in jobs}
    for vid in sorted(set(index) - wanted):  # their files go in the sweep below
        index.pop(vid)
        report.removed.append(vid)
    todo = []
    for job in jobs:
        if _is_current(index.get(job.video_id), job, out_dir):
            report.reused.append(job.video_id)
        else:
            index.pop(job.video_id, None)
            todo.append(job)
    known_files = {e.file for e in index.values()} | {
        f"{j.video_id}{settings.suffix}" for j in jobs
    }
    for path in out_dir.iterdir():  # stale videos and the temporary files of an interrupted run
        if path.is_file() and path.name != INDEX_FILE and path.name not in known_files:
            path.unlink()
    write_index(out_dir, index)
    if report.reused:
        log.info("reusing %d videos already decoded with these settings", len(report.reused))

    def finish(job: DecodeJob, result: StoredVideo | None, error: BaseException | None) -> None:
        if error is None:
            index[job.video_id] = result
            report.decoded.append(job.video_id)
            write_index(out_dir, index)
        else:
            log.warning("skipping %s: %s", job.video_id, error)
            report.skipped.append(
                {"video_id": job.video_id, "source": job.source, "reason": str(error)}
            )

    bar = tqdm(total=len(todo), desc="decode", unit="video", disable=not progress)
    if workers <= 1:
        for job in todo:
            try:
                finish(job, _decode_one(job), None)
            except _SKIPPABLE as err:
                finish(job, None, err)
            bar.update()
    else:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            pending: dict[Future, DecodeJob] = {pool.submit(_decode_one, j): j for j in todo}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    job = pending.pop(future)
                    error = future.exception()
                    if error is not None and not isinstance(error, _SKIPPABLE):
                        raise error
                    finish(job, None if error else future.result(), error)
                    bar.update()
    bar.close()
    return report
