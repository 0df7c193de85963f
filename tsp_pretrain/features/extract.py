"""Sliding-window feature extraction over every video of a frame store.

Each video is read front to back once (every frame decoded or read once), cut into windows of
``clip_len`` frames every ``stride`` frames (:func:`tsp_pretrain.data.sampling.sliding_windows`),
cropped centrally in the loader's workers, made the model's input on its device (colour,
normalisation: :class:`tsp_pretrain.data.transforms.ClipTransform`), encoded in batches, and
written as one ``T x F`` array.

What a run does is one :class:`~tsp_pretrain.features.spec.ExtractionRun`, built once (by the
stage from the params) and passed down. What is reused is decided per video
(:func:`features_are_current`, the one rule): the folder's identity (code, encoder file,
extraction params: :meth:`~tsp_pretrain.features.spec.FeatureSpec.identity`) must match, and each
video's entry records the frame-store entry its features were computed from
(:func:`frames_record`). So an interrupted run resumes where it stopped, and a re-run after the
dataset changed extracts only the new, renamed or re-decoded videos and deletes the features of
the videos no longer in it; every other video's file is left untouched.

Videos with lost frames (corrupt source stretches, stored as the last good frame repeated) keep one
feature row per window, so row i is always the window starting at frame i x stride; the windows
that overlap lost frames are marked ``lost_frames = 1`` in ``clips.csv`` (consumers that must not
trust them drop those rows).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset, get_worker_info
from tqdm import tqdm

from tsp_pretrain.atomic import atomic_path, write_csv
from tsp_pretrain.data.sampling import overlaps_lost, sliding_windows
from tsp_pretrain.data.transforms import ClipTransform
from tsp_pretrain.features.outputs import META_FILE, MISSING_FILE, feature_file, write_derived
from tsp_pretrain.features.shards import (
    SHARDS_DIR,
    Shard,
    ShardError,
    check_shards,
    finish_shard,
    merged_entries,
    shard_dir,
    shard_videos,
)
from tsp_pretrain.features.spec import ExtractionRun, FeatureSpec
from tsp_pretrain.features.store import CLIPS_FILE, PROGRESS_DIR, FeatureIndex, write_features
from tsp_pretrain.video.store import INDEX_FILE, FrameStore, FrameStoreError, StoredVideo

log = logging.getLogger(__name__)

#: Key of a feature index entry holding the identity of the frames it was extracted from
#: (:func:`frames_record`).
FRAMES_KEY = "frames"


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


def frames_record(stored: StoredVideo) -> str:
    """Digest of a video's frame-store index entry: the identity of the frames it was extracted
    from, kept in its feature entry (key :data:`FRAMES_KEY`).

    The entry holds everything that determines the stored frames (source file name and digest,
    the decoding settings with the decoding code's digest) and what decoding found (frame count,
    size, lost ranges), so equal digests mean the same stored frames; the decode stage writes a
    new entry for every video it decodes again.
    """
    text = json.dumps(stored.to_json(), sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def features_are_current(entry: Mapping | None, stored: StoredVideo | None, file: str) -> bool:
    """Whether a video's existing features are still valid: the one rule of reuse, asked by a
    single-process run, by each shard and by the merge of shards.

    ``entry`` is the video's entry in a feature index read with this run's folder identity (code,
    encoder, extraction params; :class:`FeatureIndex` keeps only entries of that identity whose
    file exists), ``stored`` its entry in the frame store now (None: not in the store) and
    ``file`` the feature file its video file name gives (:func:`feature_file`). Valid when the
    features were computed from exactly these stored frames and sit under that name (an entry
    written before entries recorded their frames has no record: extracted again).
    """
    return (
        entry is not None
        and stored is not None
        and entry["file"] == file
        and entry.get(FRAMES_KEY) == frames_record(stored)
    )


@dataclass
class ExtractionPlan:
    """What a run does with each video, by :func:`features_are_current` (see :func:`plan_run`).

    ``reuse_merged`` is for shards only: videos whose features in the merged folder are valid;
    the shard leaves them there and the merge keeps them. ``outdated`` videos are in the dataset
    but their features are not valid (frames re-decoded, file renamed, or no longer in the frame
    store): their files are deleted. ``removed`` videos are no longer in the dataset: likewise.
    """

    extract: list[str] = field(default_factory=list)
    reuse: list[str] = field(default_factory=list)
    reuse_merged: list[str] = field(default_factory=list)
    not_in_store: list[str] = field(default_factory=list)
    outdated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def plan_run(
    index: FeatureIndex,
    store: FrameStore,
    files: Mapping[str, str],
    merged: Mapping[str, dict] | None = None,
) -> ExtractionPlan:
    """Sort the videos of ``files`` (video id -> feature file) and the entries of ``index``.

    ``merged``: a shard's view of the merged folder's entries (:func:`merged_entries`).
    """
    plan = ExtractionPlan()
    for video_id, file in files.items():
        stored = store.entries.get(video_id)
        entry = index.videos.get(video_id)
        if features_are_current(entry, stored, file):
            plan.reuse.append(video_id)
            continue
        if entry is not None:
            plan.outdated.append(video_id)
        if stored is None:
            plan.not_in_store.append(video_id)
        elif merged is not None and features_are_current(merged.get(video_id), stored, file):
            plan.reuse_merged.append(video_id)
        else:
            plan.extract.append(video_id)
    plan.removed = sorted(set(index.videos) - set(files))
    return plan


class VideoBatches(IterableDataset):
    """A video's windows in batches, for a DataLoader over videos.

    Video k goes to worker ``k % num_workers``; each worker reads its videos front to back (every
    frame read once, in the store's pixel layout), crops each frame to the central window as it
    comes, cuts the windows and stacks up to ``batch_size`` of them. Items: ``(k, clips, windows,
    last)``: uint8 clips cropped in the store's layout and their windows, which
    :func:`encode_batch` turns into the model's input on its device
    (:meth:`ClipTransform.to_model`); ``last`` on the video's final batch. The batches of a video
    are the ones a sequential run makes, so the features are identical whatever the number of
    workers.
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
        self.transform = ClipTransform(crop_size=crop_size, layout=store.layout)

    def __iter__(self) -> Iterator[tuple[int, torch.Tensor, torch.Tensor, bool]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        for k in range(worker, len(self.video_ids), workers):
            video = self.store.open(self.video_ids[k])
            window = self.transform.window(False, video.entry.height, video.entry.width)
            total = len(sliding_windows(video.num_frames, self.clip_len, self.stride))
            batch, done = [], 0
            frames = (self.transform.crop(f[None], window)[0] for f in video.iter_stored())
            for _, clip in iter_windows(frames, video.num_frames, self.clip_len, self.stride):
                batch.append(clip)
                if len(batch) == self.batch_size or done + len(batch) == total:
                    done += len(batch)
                    windows = window.expand(len(batch), -1).contiguous()
                    yield k, torch.from_numpy(np.stack(batch)), windows, done == total
                    batch = []


@torch.inference_mode()
def encode_batch(
    encoder: nn.Module,
    transform: ClipTransform,
    clips: torch.Tensor,
    windows: torch.Tensor,
    device: torch.device,
    dtype: torch.dtype,
    channels_last: bool = False,
) -> np.ndarray:
    """Features (B x F float32) of one batch of :class:`VideoBatches`; the copy to the device is
    asynchronous, the clips become the model's input there."""
    clips = transform.to_model(
        clips.to(device, non_blocking=True), windows.to(device, non_blocking=True)
    )
    if channels_last:
        clips = clips.contiguous(memory_format=torch.channels_last_3d)
    with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
        return encoder(clips).float().cpu().numpy()


def iter_features(
    encoder: nn.Module,
    store: FrameStore,
    video_ids: list[str],
    spec: FeatureSpec,
    *,
    batch_size: int,
    device: torch.device,
    workers: int = 0,
) -> Iterator[tuple[str, np.ndarray]]:
    """``(video_id, T x F features)`` for every video, as each finishes (order may vary): the
    windows, crop and arithmetic of ``spec``, ``batch_size`` clips at a time on ``device``.

    Clips are read and transformed in ``workers`` processes (0: in this one) while the model
    runs; batches are pinned on CUDA so that their copy overlaps the computation.
    """
    dataset = VideoBatches(
        store,
        video_ids,
        clip_len=spec.clip.clip_len,
        stride=spec.stride,
        crop_size=spec.clip.crop_size,
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
    channels_last = spec.channels_last_3d
    if channels_last:
        encoder = encoder.to(memory_format=torch.channels_last_3d)
    for k, clips, windows, last in loader:
        features = encode_batch(
            encoder, dataset.transform, clips, windows, device, spec.dtype, channels_last
        )
        pending.setdefault(k, []).append(features)
        if last:
            yield video_ids[k], np.concatenate(pending.pop(k))


def extract_dataset(
    encoder: nn.Module,
    store: FrameStore,
    videos: pd.DataFrame,
    out_dir: str | Path,
    run: ExtractionRun,
) -> dict[str, int]:
    """Extract features for every video of ``videos`` (columns video_id, filename).

    Only videos without valid features are extracted (:func:`features_are_current`); the
    features of videos no longer in ``videos`` are deleted. Videos missing from the frame store
    (skipped at decoding) are skipped. Returns counts: extracted, reused (kept unchanged) and
    missing (videos of ``videos`` not in the frame store); the log line says the rest. Then the
    derived outputs are rebuilt from the ``.npy`` files (:func:`finish_folder`).

    With ``run.num_shards > 1`` only shard ``run.shard``'s share of the videos is extracted, into
    its own folder under ``out_dir`` (:mod:`tsp_pretrain.features.shards`), leaving the videos
    whose features in ``out_dir`` are still valid where they are; :func:`merge_shards` then
    writes the feature folder.
    """
    out_dir = Path(out_dir)
    table = videos[["video_id", "filename"]]
    merged = None
    if run.num_shards > 1:
        table = shard_videos(table, run.shard, run.num_shards)
        merged = merged_entries(out_dir, run.identity)
        out_dir = shard_dir(out_dir, run.shard, run.num_shards)
    out_dir.mkdir(parents=True, exist_ok=True)
    index = FeatureIndex(out_dir, run.identity)
    files = {vid: feature_file(name) for vid, name in table.itertuples(index=False)}
    plan = plan_run(index, store, files, merged)
    _drop_invalid(index, plan, out_dir)
    for video_id in plan.not_in_store:
        log.warning("video %s is not in the frame store (see the decode report): skipped", video_id)
    extracted = _extract_videos(encoder, store, plan.extract, files, index, run)
    index.save()
    if run.num_shards > 1:
        _finish_shard_run(out_dir, plan, files, run)
    else:
        without = finish_folder(out_dir, index, plan.not_in_store, run)
        log.info("%s", run_summary(out_dir, plan, without))
    return {
        "extracted": extracted,
        "reused": len(plan.reuse) + len(plan.reuse_merged),
        "missing": len(plan.not_in_store),
    }


def _extract_videos(
    encoder: nn.Module,
    store: FrameStore,
    video_ids: list[str],
    files: Mapping[str, str],
    index: FeatureIndex,
    run: ExtractionRun,
) -> int:
    """Encode ``video_ids`` and write each video's features into the index's folder as it
    finishes, then its entry (a crash in between leaves a file without an entry: extracted
    again). Returns how many were written."""
    features = iter_features(
        encoder.eval().to(run.device),
        store,
        video_ids,
        run.features,
        batch_size=run.batch_size,
        device=run.device,
        workers=run.workers,
    )
    bar = tqdm(
        features, total=len(video_ids), desc="extract", unit="video", disable=not run.progress
    )
    written = 0
    for video_id, feats in bar:
        write_features(index.root / files[video_id], feats)
        index.add(video_id, _feature_entry(files[video_id], feats, store.entries[video_id]))
        written += 1
    return written


def _finish_shard_run(
    folder: Path, plan: ExtractionPlan, files: Mapping[str, str], run: ExtractionRun
) -> None:
    """Mark a shard's folder finished for the merge (``shard.json``) and log what it did."""
    finish_shard(
        folder,
        run.identity,
        videos=list(files),
        missing=plan.not_in_store,
        reused_from_merged=plan.reuse_merged,
        shard=run.shard,
        num_shards=run.num_shards,
    )
    log.info("%s", shard_summary(folder, plan, run.shard, run.num_shards))


def _feature_entry(file: str, features: np.ndarray, stored: StoredVideo) -> dict:
    """A video's entry in the feature index: its file, size, frames and their identity."""
    return {
        "file": file,
        "num_clips": len(features),
        "num_frames": stored.num_frames,
        "lost": [list(r) for r in stored.lost],
        FRAMES_KEY: frames_record(stored),
    }


def _drop_invalid(index: FeatureIndex, plan: ExtractionPlan, out_dir: Path) -> None:
    """Forget the outdated and removed videos, then delete every entry of ``out_dir`` that no
    kept video names: their features, the derived outputs (rebuilt at the end), partial files
    and a shard's earlier ``shard.json`` (rewritten when this run finishes).

    The index file on disk still lists the dropped videos until :meth:`FeatureIndex.save`; a run
    killed in between is safe, as entries whose file is gone are not read back.
    """
    for video_id in plan.outdated + plan.removed:
        del index.videos[video_id]
    keep = {e["file"] for e in index.videos.values()} | {INDEX_FILE, CLIPS_FILE, PROGRESS_DIR}
    for path in out_dir.iterdir():
        if path.name not in keep:
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def merge_shards(
    out_dir: str | Path,
    videos: pd.DataFrame,
    store: FrameStore,
    run: ExtractionRun,
    rerun: str = "python stages/extract.py ... --shard {i} --num-shards N",
) -> dict[str, int]:
    """Check the ``run.num_shards`` shards of ``out_dir`` and write the feature folder from them,
    then drop them.

    Each video's features come from its shard, or stay where they are when its shard found them
    still valid; every one is checked again with :func:`features_are_current` against ``store``
    now. The result is byte-identical to a single-process :func:`extract_dataset` run on
    ``videos`` (same ``.npy`` bytes, index, clips table and derived outputs). Every check failure
    is a :class:`~tsp_pretrain.features.shards.ShardError` naming the shard and the fix
    (``rerun``: the command that runs shard ``{i}``). Returns counts: videos merged, missing
    (videos without features: ``meta.json``'s ``num_missing``).
    """
    out_dir = Path(out_dir)
    shards = check_shards(out_dir, videos[["video_id"]], run.identity, run.num_shards, rerun)
    table = videos[["video_id", "filename"]]
    files = {vid: feature_file(name) for vid, name in table.itertuples(index=False)}
    index = FeatureIndex(out_dir, run.identity)
    sources = _merge_sources(out_dir, shards, index, store, files, rerun)
    previous = set(index.videos)
    _gather_files(out_dir, sources)
    index.videos = {vid: entry for vid, (_, entry) in sources.items()}
    index.save()
    without = finish_folder(out_dir, index, set().union(*(shard.missing for shard in shards)), run)
    shutil.rmtree(out_dir / SHARDS_DIR)
    kept = sum(folder == out_dir for folder, _ in sources.values())
    removed = sorted(previous - set(files))
    summary = merge_summary(out_dir, run.num_shards, len(sources) - kept, kept, removed, without)
    log.info("%s", summary)
    return {"merged": len(index.videos), "missing": len(without)}


def _gather_files(out_dir: Path, sources: Mapping[str, tuple[Path, dict]]) -> None:
    """Make ``out_dir`` hold exactly the merged videos' files (and the shards, until the end):
    delete every other entry, then copy in each file that a shard holds."""
    keep = {SHARDS_DIR} | {e["file"] for folder, e in sources.values() if folder == out_dir}
    for path in sorted(out_dir.iterdir()):
        if path.name not in keep:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    for folder, entry in sources.values():
        if folder != out_dir:
            with atomic_path(out_dir / entry["file"]) as tmp:
                shutil.copyfile(folder / entry["file"], tmp)


def _merge_sources(
    out_dir: Path,
    shards: list[Shard],
    index: FeatureIndex,
    store: FrameStore,
    files: Mapping[str, str],
    rerun: str,
) -> dict[str, tuple[Path, dict]]:
    """Per video, the folder holding its features (a shard's, or ``out_dir`` for those its shard
    left there) and its entry, each checked with :func:`features_are_current` against the frame
    store now: a store or folder changed after a shard ran is that shard's error, never a merge
    of stale features."""
    sources: dict[str, tuple[Path, dict]] = {}
    for shard in shards:
        fix = f"run it again (it resumes): {rerun.format(i=shard.number)}"
        taken = {vid: (shard.folder, entry) for vid, entry in shard.entries.items()}
        taken |= {vid: (out_dir, index.videos.get(vid)) for vid in shard.reused_from_merged}
        for vid, (_, entry) in sorted(taken.items()):
            if not features_are_current(entry, store.entries.get(vid), files[vid]):
                raise ShardError(
                    f"shard {shard.folder.name}: the features of video {vid} do not match its "
                    f"frames in the frame store now (the store or {out_dir} changed after the "
                    f"shard ran): {fix}"
                )
        stored_now = sorted(vid for vid in shard.missing if vid in store.entries)
        if stored_now:
            raise ShardError(
                f"shard {shard.folder.name}: videos {', '.join(stored_now[:5])} were not in the "
                f"frame store when it ran and are now: {fix}"
            )
        sources.update(taken)
    return sources


def finish_folder(
    out_dir: Path, index: FeatureIndex, missing: Iterable[str], run: ExtractionRun
) -> list[str]:
    """``clips.csv`` and the derived outputs of a folder whose ``index.json`` is written.

    Shared by a single-process run and the merge of shards, so that both give the same bytes.
    ``missing``: the videos missing from the frame store (``run.skipped`` are added). Returns the
    videos without features, sorted: what ``missing_files.txt`` lists and ``meta.json`` counts,
    for the log line to say the same.
    """
    spec = run.features
    _write_clips_table(index, out_dir, spec.clip.clip_len, spec.stride, spec.clip.frame_rate)
    without = sorted((set(missing) | set(run.skipped)) - set(index.videos))
    files = {vid: entry["file"] for vid, entry in index.videos.items()}
    write_derived(out_dir, files, without, spec, run.outputs)
    return without


def _videos(count: int) -> str:
    return f"{count} video{'' if count == 1 else 's'}"


def _some(video_ids: list[str], limit: int = 5) -> str:
    """The first ``limit`` ids, and how many more."""
    more = len(video_ids) - limit
    return ", ".join(video_ids[:limit]) + (f" and {more} more" if more > 0 else "")


def _without_features(without: list[str], not_in_store: list[str]) -> str:
    left_out = len(set(without) - set(not_in_store))
    return (
        f"{_videos(len(without))} without features, listed in {MISSING_FILE} and counted in "
        f"{META_FILE} ({len(not_in_store)} not in the frame store, {left_out} left out by the "
        "annotation stage)"
    )


def run_summary(out_dir: Path, plan: ExtractionPlan, without: list[str]) -> str:
    """A single-process run in one sentence for the log. ``without`` is what
    :func:`finish_folder` wrote, so the log and ``meta.json`` give the same number."""
    again = len(set(plan.outdated) & set(plan.extract))
    parts = [
        f"features -> {out_dir}: {_videos(len(plan.extract))} extracted"
        + (f" ({again} of them again: their frames changed)" if again else ""),
        f"{len(plan.reuse)} kept unchanged",
    ]
    if plan.removed:
        gone = _some(plan.removed)
        parts.append(f"{len(plan.removed)} removed (no longer in the dataset: {gone})")
    return ", ".join(parts) + "; " + _without_features(without, plan.not_in_store)


def shard_summary(folder: Path, plan: ExtractionPlan, shard: int, num_shards: int) -> str:
    """A shard's run in one sentence for the log."""
    return (
        f"shard {shard} of {num_shards} -> {folder}: {_videos(len(plan.extract))} extracted, "
        f"{len(plan.reuse)} kept unchanged here, {len(plan.reuse_merged)} left unchanged in the "
        f"merged folder, {len(plan.not_in_store)} not in the frame store; merge the shards "
        "(--merge) to write the feature folder"
    )


def merge_summary(
    out_dir: Path,
    num_shards: int,
    from_shards: int,
    kept: int,
    removed: list[str],
    without: list[str],
) -> str:
    """The merge of shards in one sentence for the log (``without``: as in :func:`run_summary`)."""
    text = (
        f"merged {num_shards} shards -> {out_dir}: {_videos(from_shards + kept)} with features "
        f"({from_shards} from the shards, {kept} kept unchanged)"
    )
    if removed:
        text += f", {len(removed)} removed (no longer in the dataset: {_some(removed)})"
    return f"{text}; {_videos(len(without))} without features, listed in {MISSING_FILE}"


def _write_clips_table(
    index: FeatureIndex, out_dir: Path, clip_len: int, stride: int, frame_rate: float
) -> None:
    """``clips.csv``: one row per feature row, videos in sorted order.

    Built from whole columns (one array per video, concatenated once): it is rebuilt on every
    run, also one that only kept the videos it had, and a table per video cost 0.8 ms per video
    (4 s of a 5,000-video re-run, ``bench/feature_bookkeeping.py``).
    """
    ids, starts, ends, lost = [], [], [], []
    for vid in sorted(index.videos):
        entry = index.videos[vid]
        video_starts = sliding_windows(entry["num_frames"], clip_len, stride)
        ids.append(np.full(len(video_starts), vid, dtype=object))
        starts.append(video_starts)
        ends.append(np.minimum(video_starts + clip_len, max(entry["num_frames"], 1)))
        lost.append(overlaps_lost(video_starts, clip_len, entry["lost"]))
    columns = ["video_id", "clip_index", "start_frame", "t_start", "t_end", "lost_frames"]
    if not ids:
        write_csv(out_dir / CLIPS_FILE, pd.DataFrame(columns=columns), float_format="%.4f")
        return
    start_frames = np.concatenate(starts)
    table = pd.DataFrame(
        {
            "video_id": np.concatenate(ids),
            "clip_index": np.concatenate([np.arange(len(v)) for v in starts]),
            "start_frame": start_frames,
            "t_start": start_frames / frame_rate,
            "t_end": np.concatenate(ends) / frame_rate,
            "lost_frames": np.concatenate(lost).astype(np.int8),
        }
    )
    write_csv(out_dir / CLIPS_FILE, table, float_format="%.4f")
