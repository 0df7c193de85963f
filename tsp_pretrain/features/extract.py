"""Sliding-window feature extraction over every video of a frame store.

Each video is read front to back once (every frame decoded or read once), cut into windows of
``clip_len`` frames every ``stride`` frames (:func:`tsp_pretrain.data.sampling.sliding_windows`),
transformed with the evaluation preset, encoded in batches, and written as one ``T x F`` array.
Progress is per video; an interrupted run resumes at the first video not yet in the index.

Videos with lost frames (corrupt source stretches, stored as the last good frame repeated) keep one
feature row per window, so row i is always the window starting at frame i x stride; the windows
that overlap lost frames are marked ``lost_frames = 1`` in ``clips.csv`` (consumers that must not
trust them drop those rows).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset, get_worker_info
from tqdm import tqdm

from tsp_pretrain.atomic import atomic_path, write_csv
from tsp_pretrain.data.sampling import overlaps_lost, sliding_windows
from tsp_pretrain.data.transforms import EvalPreset
from tsp_pretrain.digest import code_digest, file_digest
from tsp_pretrain.features.outputs import write_derived
from tsp_pretrain.features.shards import (
    SHARD_FILE,
    SHARDS_DIR,
    check_shards,
    finish_shard,
    shard_dir,
    shard_videos,
)
from tsp_pretrain.features.store import (
    CLIPS_FILE,
    INDEX_FILE,
    PROGRESS_DIR,
    FeatureIndex,
    write_features,
)
from tsp_pretrain.models.device import pick_device
from tsp_pretrain.video.store import FrameStore, FrameStoreError

log = logging.getLogger(__name__)


def iter_windows(
    frames: Iterator[np.ndarray], num_frames: int, clip_len: int, stride: int
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start, clip)`` for every window, reading ``frames`` once, in order.

    Only the frames of the current window are kept in memory. A video shorter than one clip gives
    one window padded with its last frame (as the clip reader pads).
    """
    starts = sliding_windows(num_frames, clip_len, stride)
    k, buf, buf_start, seen = 0, [], 0, 0
    for i, frame in enumerate(frames):
        seen = i + 1
        if i < buf_start:
            continue
        buf.append(frame)
        while k < len(starts) and i >= min(starts[k] + clip_len, num_frames) - 1:
            offset = int(starts[k]) - buf_start
            clip = buf[offset : offset + clip_len]
            clip += [clip[-1]] * (clip_len - len(clip))
            yield int(starts[k]), np.stack(clip)
            k += 1
            nxt = int(starts[k]) if k < len(starts) else i + 1
            drop = min(nxt - buf_start, len(buf))
            del buf[:drop]
            buf_start = nxt
    if k < len(starts):
        raise FrameStoreError(
            f"expected {num_frames} frames, read {seen}: the store is inconsistent; "
            "re-run the decode stage"
        )


PRECISIONS = ("auto", "float32", "float16", "bfloat16")


def compute_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The autocast dtype of extraction: ``auto`` is float16 on CUDA and float32 elsewhere.

    float32 runs without autocast (the CPU default: its features are bit-identical to earlier
    versions). float16 / bfloat16 are CUDA options (bfloat16 also works on recent CPUs, slowly).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"extract.dtype must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    return getattr(torch, precision)


def feature_settings(
    encoder_file: Path,
    frames: Path,
    *,
    clip_len: int,
    stride: int,
    frame_rate: float,
    crop_size: int,
    dtype: torch.dtype,
    channels_last_3d: bool,
) -> dict:
    """What identifies a feature folder: the settings every per-video record and every shard
    carries, so that resuming (or merging) reuses only features made exactly this way.

    The code, the encoder file and the frame store's index by digest, and every parameter
    that changes the numbers. dtype and channels_last_3d are recorded only when they differ
    from float32 / off, so float32 on the CPU keeps the identity (and bytes) of earlier folders.
    """
    settings: dict = {
        "code": code_digest(),
        "encoder": file_digest(encoder_file),
        "frames": file_digest(Path(frames) / "index.json"),
        "clip_len": clip_len,
        "stride": stride,
        "frame_rate": frame_rate,
        "crop_size": crop_size,
    }
    if dtype != torch.float32:
        settings["dtype"] = str(dtype).removeprefix("torch.")
    if channels_last_3d:
        settings["channels_last_3d"] = True
    return settings


def default_workers(device: torch.device, cpus: int | None = None) -> int:
    """Input worker processes for ``extract.workers: auto``.

    On the CPU the model needs every core (workers competing with it made training 0.75-0.80x
    slower on 2 cores), so 0: clips are read in the main process. On a GPU the input side decides
    the speed: one worker per core of this process's share, less one for the main process, up to 8.
    """
    if device.type != "cuda":
        return 0
    if cpus is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    local = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return max(1, min(8, (cpus or 1) // local - 1))


def extraction_device(requested: str, shard: int, num_shards: int) -> torch.device:
    """The device of one extraction process: with several shards on CUDA and no index given,
    GPU ``LOCAL_RANK`` (torchrun) or ``shard`` modulo the GPUs of the machine."""
    device = pick_device(requested)
    if device.type == "cuda" and num_shards > 1 and device.index is None:
        local = int(os.environ.get("LOCAL_RANK", shard))
        device = pick_device(f"cuda:{local % torch.cuda.device_count()}")
    return device


class VideoBatches(IterableDataset):
    """A video's windows in batches of transformed clips, for a DataLoader over videos.

    Video k goes to worker ``k % num_workers``; each worker reads its videos front to back (every
    frame read once), cuts the windows, stacks up to ``batch_size`` of them and transforms the
    whole batch (:meth:`EvalPreset.batch`). Items: ``(k, clips, last)``, ``last`` on the video's
    final batch. The batches of a video are the ones a sequential run makes, so the features are
    identical whatever the number of workers.
    """

    def __init__(
        self,
        store: FrameStore,
        video_ids: list[str],
        *,
        clip_len: int,
        stride: int,
        crop_size: int,
        batch_size: int,
    ) -> None:
        self.store, self.video_ids = store, video_ids
        self.clip_len, self.stride, self.batch_size = clip_len, stride, batch_size
        self.preset = EvalPreset(crop_size=crop_size)

    def __iter__(self) -> Iterator[tuple[int, torch.Tensor, bool]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        for k in range(worker, len(self.video_ids), workers):
            video = self.store.open(self.video_ids[k])
            total = len(sliding_windows(video.num_frames, self.clip_len, self.stride))
            batch, done = [], 0
            frames = video.iter_frames()
            for _, clip in iter_windows(frames, video.num_frames, self.clip_len, self.stride):
                batch.append(clip)
                if len(batch) == self.batch_size or done + len(batch) == total:
                    done += len(batch)
                    clips = self.preset.batch(torch.from_numpy(np.stack(batch)))
                    batch = []
                    yield k, clips, done == total


@torch.inference_mode()
def encode_batch(
    encoder: nn.Module,
    clips: torch.Tensor,
    device: torch.device,
    dtype: torch.dtype,
    channels_last: bool = False,
) -> np.ndarray:
    """Features (B x F float32) of one batch; the copy to the device is asynchronous."""
    clips = clips.to(device, non_blocking=True)
    if channels_last:
        clips = clips.contiguous(memory_format=torch.channels_last_3d)
    with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
        return encoder(clips).float().cpu().numpy()


def iter_features(
    encoder: nn.Module,
    store: FrameStore,
    video_ids: list[str],
    *,
    clip_len: int,
    stride: int,
    crop_size: int,
    batch_size: int,
    device: torch.device,
    workers: int = 0,
    dtype: torch.dtype = torch.float32,
    channels_last: bool = False,
) -> Iterator[tuple[str, np.ndarray]]:
    """``(video_id, T x F features)`` for every video, as each finishes (order may vary).

    Clips are read and transformed in ``workers`` processes (0: in this one) while the model
    runs; batches are pinned on CUDA so that their copy overlaps the computation.
    """
    dataset = VideoBatches(
        store,
        video_ids,
        clip_len=clip_len,
        stride=stride,
        crop_size=crop_size,
        batch_size=batch_size,
    )
    loader = DataLoader(
        dataset,
        batch_size=None,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        prefetch_factor=2 if workers else None,
    )
    pending: dict[int, list[np.ndarray]] = {}
    if channels_last:
        encoder = encoder.to(memory_format=torch.channels_last_3d)
    for k, clips, last in loader:
        pending.setdefault(k, []).append(encode_batch(encoder, clips, device, dtype, channels_last))
        if last:
            yield video_ids[k], np.concatenate(pending.pop(k))


def extract_dataset(
    encoder: nn.Module,
    store: FrameStore,
    videos: pd.DataFrame,
    out_dir: Path,
    *,
    settings: dict,
    clip_len: int,
    stride: int,
    frame_rate: float,
    crop_size: int,
    batch_size: int,
    device: torch.device,
    encoder_info: Mapping | None = None,
    skipped: Iterable[str] = (),
    h5: bool = False,
    fixed_length: int = 0,
    progress: bool = True,
    workers: int = 0,
    dtype: torch.dtype = torch.float32,
    channels_last: bool = False,
    shard: int = 0,
    num_shards: int = 1,
) -> dict[str, int]:
    """Extract features for every video of ``videos`` (columns video_id, filename).

    Videos missing from the frame store (skipped at decoding) are skipped and counted. Returns
    counts: extracted, reused, missing. Then the derived outputs are rebuilt from the ``.npy``
    files (:mod:`tsp_pretrain.features.outputs`): ``meta.json`` (``encoder_info`` describes the
    encoder), ``missing_files.txt`` (the store's missing videos plus ``skipped``, the annotated
    videos the annotation stage left out), and optionally ``features.hdf5`` (``h5``) and
    ``resized_<fixed_length>/``.

    With ``num_shards > 1`` only shard ``shard``'s share of the videos is extracted, into its own
    folder under ``out_dir`` (:mod:`tsp_pretrain.features.shards`); :func:`merge_shards` then
    writes the feature folder.
    """
    out_dir = Path(out_dir)
    table = videos[["video_id", "filename"]]
    if num_shards > 1:
        table = shard_videos(table, shard, num_shards)
        out_dir = shard_dir(out_dir, shard, num_shards)
    out_dir.mkdir(parents=True, exist_ok=True)
    index = FeatureIndex(out_dir, settings)
    keep = {e["file"] for e in index.videos.values()} | {INDEX_FILE, CLIPS_FILE, PROGRESS_DIR}
    if num_shards > 1:
        keep.add(SHARD_FILE)
    for path in out_dir.iterdir():
        if path.name not in keep:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    encoder.eval().to(device)
    counts = {"extracted": 0, "reused": 0, "missing": 0}
    missing = set(skipped)
    files = dict(table.itertuples(index=False))
    todo = []
    for video_id in files:
        if video_id in index.videos:
            counts["reused"] += 1
        elif video_id not in store:
            log.warning(
                "video %s is not in the frame store (see the decode report): skipped", video_id
            )
            counts["missing"] += 1
            missing.add(video_id)
        else:
            todo.append(video_id)
    features = iter_features(
        encoder,
        store,
        todo,
        clip_len=clip_len,
        stride=stride,
        crop_size=crop_size,
        batch_size=batch_size,
        device=device,
        workers=workers,
        dtype=dtype,
        channels_last=channels_last,
    )
    for video_id, feats in tqdm(
        features, total=len(todo), desc="extract", unit="video", disable=not progress
    ):
        file = f"{Path(files[video_id]).stem}.npy"
        write_features(out_dir / file, feats)
        stored = store.open(video_id)
        index.add(
            video_id,
            {
                "file": file,
                "num_clips": len(feats),
                "num_frames": stored.num_frames,
                "lost": [list(r) for r in stored.lost],
            },
        )
        counts["extracted"] += 1
    index.save()
    if num_shards > 1:
        finish_shard(out_dir, settings, list(files), missing & set(files), shard, num_shards)
        return counts
    finish_folder(
        out_dir,
        index,
        missing,
        clip_len=clip_len,
        stride=stride,
        frame_rate=frame_rate,
        encoder_info=encoder_info,
        h5=h5,
        fixed_length=fixed_length,
    )
    return counts


def merge_shards(
    out_dir: Path,
    videos: pd.DataFrame,
    *,
    settings: dict,
    num_shards: int,
    clip_len: int,
    stride: int,
    frame_rate: float,
    encoder_info: Mapping | None = None,
    skipped: Iterable[str] = (),
    h5: bool = False,
    fixed_length: int = 0,
    rerun: str = "python stages/extract.py ... --shard {i} --num-shards N",
) -> dict[str, int]:
    """Check the shards of ``out_dir`` and write the feature folder from them, then drop them.

    The result is byte-identical to a single-process :func:`extract_dataset` run on ``videos``
    (same ``.npy`` bytes, index, clips table and derived outputs). Every check failure is a
    :class:`~tsp_pretrain.features.shards.ShardError` naming the shard and the fix (``rerun``:
    the command that runs shard ``{i}``). Returns counts: videos merged, missing.
    """
    out_dir = Path(out_dir)
    shards = check_shards(out_dir, videos[["video_id"]], settings, num_shards, rerun)
    for path in sorted(out_dir.iterdir()):
        if path.name != SHARDS_DIR:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    index = FeatureIndex(out_dir, settings)
    missing = set(skipped)
    for shard in shards:
        missing.update(shard.missing)
        for video_id, entry in shard.entries.items():
            with atomic_path(out_dir / entry["file"]) as tmp:
                shutil.copyfile(shard.folder / entry["file"], tmp)
            index.videos[video_id] = entry
    index.save()
    finish_folder(
        out_dir,
        index,
        missing,
        clip_len=clip_len,
        stride=stride,
        frame_rate=frame_rate,
        encoder_info=encoder_info,
        h5=h5,
        fixed_length=fixed_length,
    )
    shutil.rmtree(out_dir / SHARDS_DIR)
    return {"merged": len(index.videos), "missing": len(missing - set(index.videos))}


def finish_folder(
    out_dir: Path,
    index: FeatureIndex,
    missing: Iterable[str],
    *,
    clip_len: int,
    stride: int,
    frame_rate: float,
    encoder_info: Mapping | None,
    h5: bool,
    fixed_length: int,
) -> None:
    """``clips.csv`` and the derived outputs of a folder whose ``index.json`` is written.

    Shared by a single-process run and the merge of shards, so that both give the same bytes.
    """
    _write_clips_table(index, out_dir, clip_len, stride, frame_rate)
    write_derived(
        out_dir,
        {vid: entry["file"] for vid, entry in index.videos.items()},
        set(missing) - set(index.videos),
        meta={
            "clip_len": clip_len,
            "stride": stride,
            "fps": frame_rate,
            "encoder": dict(encoder_info or {}),
        },
        h5=h5,
        fixed_length=fixed_length,
    )


def _write_clips_table(
    index: FeatureIndex, out_dir: Path, clip_len: int, stride: int, frame_rate: float
) -> None:
    rows = []
    for vid in sorted(index.videos):
        entry = index.videos[vid]
        starts = sliding_windows(entry["num_frames"], clip_len, stride)
        ends = np.minimum(starts + clip_len, max(entry["num_frames"], 1))
        lost = overlaps_lost(starts, clip_len, entry.get("lost", []))
        rows.append(
            pd.DataFrame(
                {
                    "video_id": vid,
                    "clip_index": np.arange(len(starts)),
                    "start_frame": starts,
                    "t_start": starts / frame_rate,
                    "t_end": ends / frame_rate,
                    "lost_frames": lost.astype(np.int8),
                }
            )
        )
    table = (
        pd.concat(rows, ignore_index=True)
        if rows
        else pd.DataFrame(
            columns=["video_id", "clip_index", "start_frame", "t_start", "t_end", "lost_frames"]
        )
    )
    write_csv(out_dir / CLIPS_FILE, table, float_format="%.4f")
