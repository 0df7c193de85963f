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
import shutil
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from tsp_pretrain.atomic import write_csv
from tsp_pretrain.data.sampling import overlaps_lost, sliding_windows
from tsp_pretrain.data.transforms import EvalPreset
from tsp_pretrain.features.outputs import write_derived
from tsp_pretrain.features.store import CLIPS_FILE, FeatureIndex, write_features
from tsp_pretrain.video.store import FrameStore, FrameStoreError, StoredFrames

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


@torch.inference_mode()
def extract_video(
    encoder: nn.Module,
    video: StoredFrames,
    *,
    clip_len: int,
    stride: int,
    preset: EvalPreset,
    batch_size: int,
    device: torch.device,
) -> tuple[np.ndarray, np.ndarray]:
    """Features (T x F float32) and clip start frames (T) of one stored video."""
    feats, starts, batch = [], [], []

    def flush() -> None:
        clips = torch.stack(batch).to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.float16, enabled=device.type == "cuda"):
            feats.append(encoder(clips).float().cpu().numpy())
        batch.clear()

    for start, clip in iter_windows(video.iter_frames(), video.num_frames, clip_len, stride):
        starts.append(start)
        batch.append(preset(torch.from_numpy(clip)))
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    return np.concatenate(feats), np.asarray(starts, dtype=np.int64)


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
) -> dict[str, int]:
    """Extract features for every video of ``videos`` (columns video_id, filename).

    Videos missing from the frame store (skipped at decoding) are skipped and counted. Returns
    counts: extracted, reused, missing. Then the derived outputs are rebuilt from the ``.npy``
    files (:mod:`tsp_pretrain.features.outputs`): ``meta.json`` (``encoder_info`` describes the
    encoder), ``missing_files.txt`` (the store's missing videos plus ``skipped``, the annotated
    videos the annotation stage left out), and optionally ``features.hdf5`` (``h5``) and
    ``resized_<fixed_length>/``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    index = FeatureIndex(out_dir, settings)
    keep = {e["file"] for e in index.videos.values()} | {"index.json", CLIPS_FILE}
    for path in out_dir.iterdir():
        if path.name not in keep:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    encoder.eval().to(device)
    preset = EvalPreset(crop_size=crop_size)
    counts = {"extracted": 0, "reused": 0, "missing": 0}
    missing = set(skipped)
    wanted = videos[["video_id", "filename"]].itertuples(index=False)
    for video_id, filename in tqdm(
        list(wanted), desc="extract", unit="video", disable=not progress
    ):
        if video_id in index.videos:
            counts["reused"] += 1
            continue
        if video_id not in store:
            log.warning(
                "video %s is not in the frame store (see the decode report): skipped", video_id
            )
            counts["missing"] += 1
            missing.add(video_id)
            continue
        feats, starts = extract_video(
            encoder,
            store.open(video_id),
            clip_len=clip_len,
            stride=stride,
            preset=preset,
            batch_size=batch_size,
            device=device,
        )
        file = f"{Path(filename).stem}.npy"
        write_features(out_dir / file, feats)
        stored = store.open(video_id)
        index.videos[video_id] = {
            "file": file,
            "num_clips": len(starts),
            "num_frames": stored.num_frames,
            "lost": [list(r) for r in stored.lost],
        }
        index.save()
        counts["extracted"] += 1
    _write_clips_table(index, out_dir, clip_len, stride, frame_rate)
    write_derived(
        out_dir,
        {vid: entry["file"] for vid, entry in index.videos.items()},
        missing - set(index.videos),
        meta={
            "clip_len": clip_len,
            "stride": stride,
            "fps": frame_rate,
            "encoder": dict(encoder_info or {}),
        },
        h5=h5,
        fixed_length=fixed_length,
    )
    return counts


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
