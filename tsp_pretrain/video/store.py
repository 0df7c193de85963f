"""The frame store: every video decoded once, at ``frame_rate`` and a fixed size, one file each.

Training reads random clips from it; feature extraction reads it front to back. Two formats share
one interface (measured in ``bench/frame_store.py``; figures in ``docs/frame-store.md``):

- ``npy``: raw uint8 ``T x H x W x 3`` arrays, read with explicit reads at offsets (no memory
  maps: memory stays flat in video length). A random clip is one read: hundreds of times faster
  than decoding, at the cost of disk (about 65 KB per 128x171 frame). The default for the demo and
  for any dataset whose decoded size fits on disk.
- ``mp4``: H.264 re-encode with a short keyframe interval (``keyint``), so a random clip needs at
  most ``keyint`` frames of decoding after a seek, coded with CAVLC (twice CABAC's decoding speed
  for 8 % more bytes). 20-50x smaller on disk: for ActivityNet-sized data. Readers hand its
  frames over in YUV, without colour conversion (:mod:`tsp_pretrain.video.colour`).

``index.json`` beside the files records, per video, the settings it was decoded with and its frame
count; it is what makes the decode stage resumable and what readers trust for ``num_frames``.
While the decode stage runs, each finished video's entry is written alone beside its file
(``<video_id>.entry.json``, :func:`write_pending_entry`): rewriting the whole index after every
video made the bookkeeping quadratic in the number of videos (85 minutes at 20,000). The stage
merges them into ``index.json`` when it ends, and a run killed before that merges them when it
resumes (:func:`read_pending_entries`, :func:`commit_index`); a finished store holds no entry file.

This module does not import torch: the decode stage's worker processes import it, and each would
spend a second importing torch for nothing. Only :meth:`StoredFrames.read_clip`, which returns a
tensor, imports it, when first called (in a process that reads clips, torch is loaded anyway).

Clips that run past the end of a video are padded by repeating the last frame (the official TSP
loader crashed on such clips near video ends; here they are legal and documented).
"""

from __future__ import annotations

import io
import json
import logging
import os
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import av
import numpy as np

from tsp_pretrain.atomic import atomic_path, write_json

from .encode import EncodeError, write_h264, x264_options

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

INDEX_FILE = "index.json"
#: Name ending of the per-video entry files written while the decode stage runs.
PENDING_SUFFIX = ".entry.json"
#: The mp4 store's default keyframe interval (``decode.mp4_keyint``). A random clip decodes on
#: average ``(keyint - 1) / 2`` frames before its first: at 8, 19.5 frames for a 16-frame clip
#: against 23.5 at 16, 1.12x the clip rate for 1.16x the bytes (``bench/input_pipeline.py``).
MP4_KEYINT = 8
MP4_CRF = 18
#: Stored bytes per pixel of the mp4 store at CRF 18 in yuv420p, for disk estimates: 0.171 and
#: 0.198 were measured with the official decode method on the benchmark's realistic synthetic
#: 360p and 720p sources (``bench/frame_store.py --scale``, docs/frame-store.md); the estimate
#: adds a quarter.
MP4_BYTES_PER_PIXEL = 0.25
#: Size of the other pixel formats against yuv420p at the same CRF, and the factor per CRF step
#: (x264's rule of thumb, 6 steps halve the size), as measured in ``bench/fidelity.py``:
#: 3.8, 4.1 and 9.5 kB per 128 x 171 frame at CRF 18 for yuv420p, yuv444p and rgb24 (rgb24 at
#: CRF 12: 17.5 kB, 2.2x the rule's yuv420p); yuv444p at CRF 12 and 8: 9.1 and 13.8 kB (the rule
#: gives 8.2 and 13.0). On the --scale sources, CRF 8 in yuv444p took 2.85x and 3.05x CRF 18 in
#: yuv420p (the rule: 3.2x), so the estimate errs on the large side.
MP4_PIX_FMT_FACTOR = {"yuv420p": 1.0, "yuv444p": 1.0, "rgb24": 2.3}


@dataclass(frozen=True)
class StoreSettings:
    """Everything that determines a stored video's content; a change means re-decoding.

    The size rule is one of two: ``short_side`` (aspect ratio kept) or ``frame_size`` (every
    frame resized to exactly ``(H, W)``, as the official recipe does); exactly one is set (see
    :attr:`tsp_pretrain.config.DecodeParams.stored_short_side`).
    """

    frame_rate: float
    short_side: int | None
    store: str  # "npy" or "mp4"
    code: str = ""  # digest of the decoding code (tsp_pretrain.digest.code_digest)
    frame_size: tuple[int, int] | None = None
    #: "official" or "ffmpeg" (tsp_pretrain.video.decode.METHODS); entries written before the
    #: official method existed were decoded with "ffmpeg", the default here.
    method: str = "ffmpeg"
    #: The mp4 store's x264 CRF and pixel format (None in the npy store; an older mp4 entry
    #: without them was written with :data:`MP4_CRF` in yuv420p, the defaults filled in).
    mp4_crf: int | None = None
    mp4_pix_fmt: str | None = None
    #: The mp4 store's keyframe interval (None in the npy store; :data:`MP4_KEYINT` when not
    #: given. Entries written before it was a setting were coded at 16, and their code digest
    #: differs: they are decoded again).
    mp4_keyint: int | None = None

    def __post_init__(self) -> None:
        if self.frame_size is not None:  # a list when read back from index.json
            object.__setattr__(self, "frame_size", tuple(int(v) for v in self.frame_size))
        if self.store == "mp4":
            object.__setattr__(self, "mp4_crf", MP4_CRF if self.mp4_crf is None else self.mp4_crf)
            object.__setattr__(self, "mp4_pix_fmt", self.mp4_pix_fmt or "yuv420p")
            object.__setattr__(self, "mp4_keyint", self.mp4_keyint or MP4_KEYINT)
        else:
            object.__setattr__(self, "mp4_crf", None)
            object.__setattr__(self, "mp4_pix_fmt", None)
            object.__setattr__(self, "mp4_keyint", None)
        if (self.short_side is None) == (self.frame_size is None):
            raise ValueError(
                f"StoreSettings needs exactly one of short_side ({self.short_side}) and "
                f"frame_size ({self.frame_size})"
            )

    @property
    def suffix(self) -> str:
        return f".{self.store}"


@dataclass(frozen=True)
class StoredVideo:
    """One index entry: where a decoded video is and what it holds."""

    video_id: str
    file: str
    num_frames: int
    height: int
    width: int
    source: str
    source_digest: str
    settings: StoreSettings
    #: Frame ranges ``[start, stop)`` whose source frames were corrupt: they hold the last good
    #: frame repeated. Training never samples clips that overlap them; extraction marks the
    #: windows that do (:func:`tsp_pretrain.data.sampling.overlaps_lost`).
    lost: tuple[tuple[int, int], ...] = ()

    def to_json(self) -> dict:
        return {**asdict(self), "lost": [list(r) for r in self.lost]}

    @staticmethod
    def from_json(data: dict) -> StoredVideo:
        lost = tuple(tuple(r) for r in data.get("lost", ()))
        return StoredVideo(**{**data, "settings": StoreSettings(**data["settings"]), "lost": lost})


class FrameStoreError(RuntimeError):
    """A store that is missing, inconsistent, or lacks a requested video."""


def read_index(root: str | Path) -> dict[str, StoredVideo]:
    """Entries of ``root/index.json`` by video id; empty when the store does not exist yet."""
    path = Path(root) / INDEX_FILE
    if not path.is_file():
        return {}
    with path.open() as f:
        data = json.load(f)
    entries, outdated = {}, []
    for vid, entry in data.get("videos", {}).items():
        try:
            entries[vid] = StoredVideo.from_json(entry)
        except (TypeError, KeyError, ValueError):
            outdated.append(vid)
    if outdated:
        log.warning(
            "%s: %d entries (first: %s) are in an older format; they will be decoded again",
            path,
            len(outdated),
            outdated[0],
        )
    return entries


def write_index(root: str | Path, entries: dict[str, StoredVideo]) -> None:
    """Atomically replace the index, so an interrupted run never leaves a half-written one."""
    document = {"videos": {vid: entries[vid].to_json() for vid in sorted(entries)}}
    write_json(Path(root) / INDEX_FILE, document, indent=1, sort_keys=False)


def pending_entry_path(root: str | Path, video_id: str) -> Path:
    """Where :func:`write_pending_entry` puts ``video_id``'s entry (never a frames file's name:
    those end in ``.npy`` or ``.mp4``)."""
    return Path(root) / f"{video_id}{PENDING_SUFFIX}"


def write_pending_entry(root: str | Path, entry: StoredVideo) -> None:
    """Record one finished video in a file of its own, atomically: constant cost per video.

    Written after the video's frames file, so an entry always names a complete file; a run killed
    between the two leaves a frames file without an entry, which the next run removes and
    decodes again.
    """
    write_json(pending_entry_path(root, entry.video_id), entry.to_json(), indent=1, sort_keys=False)


def read_pending_entries(root: str | Path) -> dict[str, StoredVideo]:
    """Entries that :func:`write_pending_entry` wrote and no :func:`commit_index` merged yet.

    An entry file that cannot be read (edited by hand, or of an older format) is reported and
    left out: the next decode run removes it and decodes that video again.
    """
    entries = {}
    for path in sorted(Path(root).glob(f"*{PENDING_SUFFIX}")):
        try:
            with path.open() as f:
                entry = StoredVideo.from_json(json.load(f))
        except (json.JSONDecodeError, UnicodeDecodeError, TypeError, KeyError, ValueError) as err:
            log.warning("%s: unreadable (%s); that video will be decoded again", path, err)
            continue
        entries[entry.video_id] = entry
    return entries


def commit_index(root: str | Path, entries: dict[str, StoredVideo]) -> None:
    """Write ``entries`` as the complete ``index.json``, then delete the per-video entry files.

    In that order: a run killed in between leaves entry files that repeat what the index holds,
    and merging them again changes nothing.
    """
    write_index(root, entries)
    for path in Path(root).glob(f"*{PENDING_SUFFIX}"):
        path.unlink()


def remove_unindexed_files(root: str | Path, entries: dict[str, StoredVideo]) -> None:
    """Delete every file of the store ``root`` that is neither ``index.json`` nor the file of one
    of ``entries``: stale and outdated videos, partial files and entry files of a killed run.
    Folders (a sharded run's ``.shards``) are left alone.

    The one rule of what a store holds, applied by a decode run after it wrote its first index
    and by a merge of shards after it wrote the complete one.
    """
    known = {INDEX_FILE} | {entry.file for entry in entries.values()}
    for path in Path(root).iterdir():
        if path.is_file() and path.name not in known:
            path.unlink()


# --------------------------------------------------------------------------------------- writers


def stored_frame_bytes(
    height: int,
    width: int,
    store: str,
    crf: int = MP4_CRF,
    pix_fmt: str = "yuv420p",
    keyint: int = MP4_KEYINT,
) -> float:
    """Bytes one stored frame takes: exact for npy (raw RGB), an estimate for mp4 (coded size,
    from the CRF, the pixel format and the keyframe interval)."""
    if store == "npy":
        return height * width * 3
    coded_h, coded_w = even_size(height, width)
    scale = MP4_PIX_FMT_FACTOR[pix_fmt] * 2 ** ((MP4_CRF - crf) / 6) * _keyint_factor(keyint)
    return coded_h * coded_w * MP4_BYTES_PER_PIXEL * scale


def _keyint_factor(keyint: int) -> float:
    """Size against a keyframe every 16 frames (what :data:`MP4_BYTES_PER_PIXEL` was measured
    at): proportional to ``0.838 + 2.59 / keyint``, fitted to intervals 4, 8, 16 and 32 at CRF 18
    in yuv420p on the benchmark's realistic sources (1.43, 1.16, 1, 0.92 measured; the fit is
    within 4 %)."""
    return (0.838 + 2.59 / keyint) / (0.838 + 2.59 / 16)


def _npy_header(num_frames: int, shape: tuple[int, ...]) -> bytes:
    """The ``.npy`` header of a uint8 ``num_frames x H x W x 3`` array.

    NumPy pads the header so that the first dimension can grow to 21 digits without changing its
    length: the header written before the first frame is later rewritten in place with the count.
    """
    buffer = io.BytesIO()
    header = {"descr": "|u1", "fortran_order": False, "shape": (num_frames, *shape)}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue()


def write_npy(path: Path, frames: Iterator[np.ndarray]) -> tuple[int, int, int]:
    """Stream frames into a ``.npy`` file without holding the video in memory or on disk twice.

    The header is written with a frame count of 0 and rewritten in place once the count is known.
    Returns (num_frames, height, width).
    """
    count, shape = 0, None
    with atomic_path(path) as tmp, tmp.open("wb") as f:
        for frame in frames:
            if shape is None:
                shape = tuple(frame.shape)
                f.write(_npy_header(0, shape))
            f.write(np.ascontiguousarray(frame, dtype=np.uint8).tobytes())
            count += 1
        if shape is None:
            raise FrameStoreError(f"{path.name}: no frame decoded")
        f.seek(0)
        f.write(_npy_header(count, shape))
    return count, shape[0], shape[1]


def even_size(height: int, width: int) -> tuple[int, int]:
    """The coded size of an mp4-stored frame of ``height x width``: both rounded up to even."""
    return height + height % 2, width + width % 2


def _pad_to_even(frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    """Frames with an odd side extended by repeating their last row / column.

    yuv420p (what libx264 writes and every decoder reads) halves the chroma planes, so it cannot
    hold an odd width such as the recipe's 171. The mp4 store codes such frames one column (row)
    larger and the reader crops it off again (:meth:`StoredFrames._decode_range`): the stored
    frames keep exactly the requested size in both stores, and the padding column, a copy of its
    neighbour, only shares chroma samples with it.
    """
    for frame in frames:
        h, w = frame.shape[:2]
        if h % 2 or w % 2:
            frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        yield frame


def write_mp4(
    path: Path,
    frames: Iterator[np.ndarray],
    frame_rate: float,
    crf: int = MP4_CRF,
    pix_fmt: str = "yuv420p",
    keyint: int = MP4_KEYINT,
) -> tuple[int, int, int]:
    """Re-encode frames as H.264 with a keyframe every ``keyint`` frames (pts = index), in CAVLC.

    ``crf`` and ``pix_fmt`` (see :data:`tsp_pretrain.video.encode.PIX_FMTS`) trade disk for
    fidelity; their effect on features is measured in ``bench/fidelity.py`` (docs/frame-store.md).
    ``keyint`` trades disk for random-clip speed (:data:`MP4_KEYINT`).

    Odd sizes are coded padded to even (see :func:`_pad_to_even`); the returned (num_frames,
    height, width) is the size before padding, the one the index records and readers return.
    """
    shape: list[tuple[int, int]] = []

    def record(frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        for frame in frames:
            if not shape:
                shape.append(frame.shape[:2])
            yield frame

    try:
        count, _, _ = write_h264(
            path,
            _pad_to_even(record(frames)),
            frame_rate,
            x264_options(crf, keyint=keyint, cabac=False),
            pix_fmt,
        )
    except EncodeError as err:
        raise FrameStoreError(str(err)) from None
    return count, shape[0][0], shape[0][1]


# --------------------------------------------------------------------------------------- readers


def _pad_indices(start: int, length: int, num_frames: int) -> np.ndarray:
    if start < 0:
        raise ValueError(f"clip start must be >= 0, got {start}")
    return np.minimum(np.arange(start, start + length), num_frames - 1)


class OpenContainers:
    """The mp4 files one process keeps open for clip reads: at most ``size``, the least recently
    used closed first.

    Opening a container (demuxer, decoder, its threads) took 1 ms against 3-6 ms for a clip's
    decoding at 128 x 171 (``bench/input_pipeline.py``). It is saved only when a clip comes from
    a video read recently: often for small datasets, validation and clips of one video in a batch,
    rarely when clips are drawn at random from thousands of videos. The cache is per process: a
    forked DataLoader worker drops what it inherited (it does not own those file offsets) and
    opens its own. ``size=0`` opens and closes a container for every read.
    """

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._open: OrderedDict[Path, av.container.InputContainer] = OrderedDict()
        self._pid = os.getpid()

    @contextmanager
    def use(self, path: Path) -> Iterator[av.container.InputContainer]:
        """The open container of ``path``; a read that fails closes it rather than keep it."""
        if os.getpid() != self._pid:  # inherited by fork: the parent's, left alone
            self._open, self._pid = OrderedDict(), os.getpid()
        container = self._open.pop(path, None)
        if container is None:
            container = av.open(str(path))
            container.streams.video[0].codec_context.thread_count = StoredFrames.DECODE_THREADS
        try:
            yield container
        except BaseException:
            container.close()
            raise
        if self.size == 0:
            container.close()
            return
        self._open[path] = container
        while len(self._open) > self.size:
            self._open.popitem(last=False)[1].close()

    def close(self) -> None:
        """Close every container kept open (also done when the object is collected)."""
        while self._open:
            self._open.popitem()[1].close()

    def __len__(self) -> int:
        return len(self._open)


class StoredFrames:
    """Random and sequential access to one stored video.

    Frames come in two forms: in the store's pixel layout (:attr:`layout`; :meth:`read_stored`,
    :meth:`iter_stored`), what training and extraction read, cropped in the loader's workers and
    converted to RGB in batch on the model's device (:mod:`tsp_pretrain.video.colour`); and as
    RGB (:meth:`read_array`, :meth:`read_clip`, :meth:`iter_frames`), by the same conversion on
    the CPU, for everything else.

    npy files are read with explicit reads at offsets of the frames asked for, never
    memory-mapped: a memory map keeps every page it touched in the process's resident set,
    so reading a video front to back grew the memory use with the video's length.
    """

    #: Frames read at once by :meth:`iter_stored` from an npy file.
    CHUNK = 64
    #: Decoder threads per mp4 clip read. FFmpeg's default (0: one per core, slice threading)
    #: starts that many threads at every container open and gains nothing: the store's frames
    #: are coded as one slice each (x264 with ``threads=1``). DataLoader workers already give
    #: one core each. Measured in ``bench/input_pipeline.py`` (docs/performance.md).
    DECODE_THREADS = 1

    def __init__(
        self, path: Path, entry: StoredVideo, containers: OpenContainers | None = None
    ) -> None:
        self.path = path
        self.entry = entry
        self._offset: int | None = None  # where the frames start in the npy file
        self._containers = OpenContainers(0) if containers is None else containers

    @property
    def num_frames(self) -> int:
        return self.entry.num_frames

    @property
    def lost(self) -> tuple[tuple[int, int], ...]:
        """Frame ranges that stand for corrupt source frames (see :class:`StoredVideo`)."""
        return self.entry.lost

    @property
    def layout(self) -> str:
        """The pixel layout :meth:`read_stored` returns (:data:`tsp_pretrain.video.colour.LAYOUTS`):
        ``rgb`` for the npy store and mp4 in rgb24, else the mp4 store's pixel format."""
        return stored_layout(self.entry.settings)

    def _data_offset(self, f: BinaryIO) -> int:
        """Where the frames start in the open npy file ``f``, checked against the index once."""
        if self._offset is None:
            version = np.lib.format.read_magic(f)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, _, dtype = read_header(f)
            expected = (self.num_frames, self.entry.height, self.entry.width, 3)
            if tuple(shape) != expected or dtype != np.uint8:
                raise FrameStoreError(
                    f"{self.path}: holds {shape} {dtype}, the index says {expected} uint8; "
                    "delete the file and re-run the decode stage"
                )
            self._offset = f.tell()
        return self._offset

    def _read_npy(self, first: int, stop: int) -> np.ndarray:
        """Frames ``first .. stop-1`` of the npy file, read into a fresh array.

        The file is opened for each read (microseconds, against the read itself): a store of
        thousands of videos never holds thousands of open files, and forked DataLoader workers
        share no file offset.
        """
        frame_bytes = self.entry.height * self.entry.width * 3
        out = np.empty((stop - first, self.entry.height, self.entry.width, 3), np.uint8)
        with self.path.open("rb", buffering=0) as f:
            f.seek(self._data_offset(f) + first * frame_bytes)
            view, done = memoryview(out).cast("B"), 0
            while done < len(view):
                n = f.readinto(view[done:])
                if not n:
                    raise FrameStoreError(
                        f"{self.path}: file ends before frame {stop - 1}; the store is corrupt: "
                        "delete the file and re-run the decode stage"
                    )
                done += n
        return out

    def read_stored(self, start: int, length: int) -> np.ndarray:
        """Frames ``start .. start+length-1`` in the store's :attr:`layout` (uint8, ``T x ...``;
        mp4 frames at their coded size, see :func:`tsp_pretrain.video.colour.crop_stored`).

        Indices past the last frame repeat the last frame, so every clip has ``length`` frames.
        """
        idx = _pad_indices(start, length, self.num_frames)
        first, stop = int(idx[0]), int(idx[-1]) + 1
        if self.entry.settings.store == "npy":
            frames = self._read_npy(first, stop)
        else:
            frames = self._decode_range(first, stop)
        return frames if len(frames) == length else frames[idx - first]

    def read_array(self, start: int, length: int) -> np.ndarray:
        """:meth:`read_stored` as a contiguous uint8 RGB ``T x H x W x 3`` array."""
        from .colour import frames_to_rgb

        raw = self.read_stored(start, length)
        return np.ascontiguousarray(
            frames_to_rgb(raw, self.layout, self.entry.height, self.entry.width)
        )

    def read_clip(self, start: int, length: int) -> torch.Tensor:
        """:meth:`read_array` as a tensor (sharing its memory). torch is imported here, not with
        the module (see the module's docstring)."""
        import torch

        return torch.from_numpy(self.read_array(start, length))

    def iter_stored(self) -> Iterator[np.ndarray]:
        """Every frame in order, in the store's :attr:`layout`, each decoded or read once (for
        sliding-window extraction).

        Memory use is flat in the video's length: npy files are read :attr:`CHUNK` frames at a
        time into fresh buffers; mp4 files are decoded frame by frame.
        """
        if self.entry.settings.store == "npy":
            for start in range(0, self.num_frames, self.CHUNK):
                yield from self._read_npy(start, min(start + self.CHUNK, self.num_frames))
        else:
            with av.open(str(self.path)) as container:
                stream = container.streams.video[0]
                stream.codec_context.thread_count = self.DECODE_THREADS
                for frame in container.decode(stream):
                    yield self._stored_form(frame)

    def iter_frames(self) -> Iterator[np.ndarray]:
        """:meth:`iter_stored` as RGB ``H x W x 3`` frames."""
        from .colour import frames_to_rgb

        h, w = self.entry.height, self.entry.width
        for frame in self.iter_stored():
            yield frames_to_rgb(frame[None], self.layout, h, w)[0]

    def _stored_form(self, frame: av.VideoFrame, out: np.ndarray | None = None) -> np.ndarray:
        """A decoded frame's planes as an array of the store's layout (no colour conversion),
        copied into ``out`` when given (the planes straight into their place: no intermediate
        array, unlike ``to_ndarray``'s per-plane copies and concatenation)."""
        expected = _DECODED_FORMAT[self.layout]
        if frame.format.name != expected:
            raise FrameStoreError(
                f"{self.path}: decodes to {frame.format.name}, the index says {expected}; "
                "delete the file and re-run the decode stage"
            )
        if out is None:
            out = np.empty(_frame_shape(self.layout, frame.height, frame.width), np.uint8)
        if self.layout == "rgb":  # planar GBR: to_ndarray interleaves it as RGB
            out[...] = frame.to_ndarray()
            return out
        flat, offset = out.reshape(-1), 0
        for plane in frame.planes:
            h, w, stride = plane.height, plane.width, plane.line_size
            rows = np.frombuffer(plane, np.uint8)[: h * stride].reshape(h, stride)[:, :w]
            flat[offset : offset + h * w].reshape(h, w)[...] = rows
            offset += h * w
        return out

    def _decode_range(self, first: int, stop: int) -> np.ndarray:
        """Frames ``first .. stop-1`` of the mp4 file: one seek to the keyframe before ``first``,
        then decoding into one preallocated array."""
        rate = self.entry.settings.frame_rate
        out, count = None, 0
        with self._containers.use(self.path) as container:
            stream = container.streams.video[0]
            target = int(first / rate / stream.time_base)
            container.seek(target, stream=stream, backward=True, any_frame=False)
            for frame in container.decode(stream):
                index = round(frame.time * rate)
                if index < first:
                    continue
                if index != first + count:
                    break
                if out is None:
                    shape = _frame_shape(self.layout, frame.height, frame.width)
                    out = np.empty((stop - first, *shape), np.uint8)
                self._stored_form(frame, out[count])
                count += 1
                if count == stop - first:
                    break
            if count != stop - first:  # inside: the container is closed, not kept
                raise FrameStoreError(
                    f"{self.path}: expected frames {first}..{stop - 1}, decoded {count}; "
                    "the store is corrupt: delete the file and re-run the decode stage"
                )
        return out


#: PyAV's name of the decoded frame format of each layout (libx264rgb decodes to planar GBR,
#: which PyAV's ``to_ndarray`` returns as ``H x W x 3`` RGB).
_DECODED_FORMAT = {"rgb": "gbrp", "yuv420p": "yuv420p", "yuv444p": "yuv444p"}


def _frame_shape(layout: str, coded_height: int, coded_width: int) -> tuple[int, ...]:
    """The shape of one frame of ``layout`` at its coded size (see
    :mod:`tsp_pretrain.video.colour`)."""
    if layout == "yuv420p":
        return (coded_height * 3 // 2, coded_width)
    if layout == "yuv444p":
        return (3, coded_height, coded_width)
    return (coded_height, coded_width, 3)


def stored_layout(settings: StoreSettings) -> str:
    """The pixel layout a store with ``settings`` hands over (see :attr:`StoredFrames.layout`)."""
    if settings.store == "npy" or settings.mp4_pix_fmt == "rgb24":
        return "rgb"
    return settings.mp4_pix_fmt


class FrameStore:
    """A decoded dataset: ``index.json`` plus one file per video.

    mp4 clip reads share one :class:`OpenContainers` of ``max_open`` containers per process.
    """

    #: Containers kept open per process by default (see :class:`OpenContainers`).
    MAX_OPEN = 8

    def __init__(self, root: str | Path, max_open: int = MAX_OPEN) -> None:
        self.root = Path(root)
        if not (self.root / INDEX_FILE).is_file():
            raise FrameStoreError(
                f"{self.root}: no {INDEX_FILE}; run the decode stage (dvc repro) first"
            )
        self.entries = read_index(self.root)
        self._opened: dict[str, StoredFrames] = {}
        self.containers = OpenContainers(max_open)

    @property
    def layout(self) -> str:
        """The pixel layout every video of the store hands over (:attr:`StoredFrames.layout`)."""
        layouts = {stored_layout(e.settings) for e in self.entries.values()}
        if len(layouts) > 1:
            raise FrameStoreError(
                f"{self.root}: videos stored in several pixel layouts ({sorted(layouts)}); "
                "re-run the decode stage"
            )
        return layouts.pop() if layouts else "rgb"

    def close(self) -> None:
        """Close the mp4 containers kept open for clip reads."""
        self.containers.close()

    @property
    def video_ids(self) -> list[str]:
        return sorted(self.entries)

    def __contains__(self, video_id: str) -> bool:
        return video_id in self.entries

    def open(self, video_id: str) -> StoredFrames:
        """The video's frames; the reader is kept (with its checked npy header offset) for the
        next clip."""
        if video_id in self._opened:
            return self._opened[video_id]
        try:
            entry = self.entries[video_id]
        except KeyError:
            raise FrameStoreError(
                f"{self.root}: video {video_id!r} is not in the store (skipped at decoding? "
                "see the decode report)"
            ) from None
        self._opened[video_id] = StoredFrames(self.root / entry.file, entry, self.containers)
        return self._opened[video_id]

    def read_clip(self, video_id: str, start: int, length: int) -> torch.Tensor:
        """Shortcut for ``open(video_id).read_clip(start, length)``."""
        return self.open(video_id).read_clip(start, length)
