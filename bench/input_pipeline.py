"""Benchmark: the training input pipeline alone (clips/s ready on the host, no model).

At the paper's settings: random 16-frame clips, 112 x 112 after the training transform (random
crop, flip, normalise: ``TrainPreset``), read from a frame store at the recipe's size
(``frame_size`` 128 x 171, 15 fps), npy and mp4 stores, through the project's own
``ClipDataset`` and a torch ``DataLoader`` with 1, 2, 4, ... workers up to the cores available.
The floor is a plain sequential PyAV decode of the same source files (resampled to 15 fps and
resized to 128 x 171 as the store does, cut into consecutive 16-frame clips): what reading
without a frame store would give at best. Also measured in the same run: the mp4 store's raw
clip reads in one process with the decoder's threads at FFmpeg's default (one per core, as the
reader did before) and at one (``StoredFrames.DECODE_THREADS``, now).

The sources come from ``bench/frame_store.py``'s realistic renderer (640x360 30 fps, textured,
panning, noisy, x264 CRF 23): ``--videos`` of ``--seconds`` each. Rates are after the first
batch (worker start-up excluded); per-core rate = clips/s / workers.

    python bench/input_pipeline.py [--videos 3 --seconds 20 --clips 480]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from frame_store import RECIPE_SIZE, realistic_source
from torch.utils.data import DataLoader

from tsp_pretrain.data.clips import ClipDataset, clip_keys
from tsp_pretrain.data.transforms import EvalPreset, TrainPreset
from tsp_pretrain.video.decode import decode_dataset, decode_frames
from tsp_pretrain.video.store import FrameStore, StoredFrames, StoreSettings

CLIP_LEN, CROP, FRAME_RATE = 16, 112, 15


def worker_counts(cores: int) -> list[int]:
    """1, 2, 4, ... up to ``cores`` (and ``cores`` itself)."""
    counts, n = [], 1
    while n < cores:
        counts.append(n)
        n *= 2
    return [*counts, cores]


def floor_rate(sources: list[Path]) -> float:
    """Clips/s of a plain sequential decode of the sources (15 fps, 128 x 171), one process."""
    start, frames = time.perf_counter(), 0
    for path in sources:
        frames += sum(1 for _ in decode_frames(path, FRAME_RATE, None, frame_size=RECIPE_SIZE))
    return frames / CLIP_LEN / (time.perf_counter() - start)


def loader_rate(store: FrameStore, num_clips: int, workers: int, batch_size: int) -> float:
    """Clips/s a DataLoader with ``workers`` workers delivers, after its first batch."""
    rng = np.random.default_rng(workers)
    ids = store.video_ids
    vids = [ids[i] for i in rng.integers(len(ids), size=num_clips + batch_size)]
    starts = [int(rng.integers(0, store.entries[v].num_frames - CLIP_LEN)) for v in vids]
    samples = pd.DataFrame({"video_id": vids, "start_frame": starts, "action": 0, "region": 0})
    # keyed as the training loop keys them: each clip's crop seeded (what worker processes need)
    keys = clip_keys(samples, train=True, seeds=range(len(samples)))
    batches = [keys[i : i + batch_size] for i in range(0, len(keys), batch_size)]
    preset = TrainPreset(crop_size=CROP)
    dataset = ClipDataset(store, CLIP_LEN, preset, EvalPreset(crop_size=CROP))
    loader = DataLoader(dataset, batch_sampler=batches, num_workers=workers)
    it = iter(loader)
    first = next(it)
    assert tuple(first["clips"].shape) == (batch_size, 3, CLIP_LEN, CROP, CROP)
    start, count = time.perf_counter(), 0
    for batch in it:
        count += len(batch["clips"])
    return count / (time.perf_counter() - start)


def raw_mp4_rate(store: FrameStore, num_clips: int, threads: int) -> float:
    """Raw random clip reads per second from the mp4 store, one process, ``threads`` decoders."""
    rng = np.random.default_rng(0)
    old, StoredFrames.DECODE_THREADS = StoredFrames.DECODE_THREADS, threads
    try:
        videos = [store.open(v) for v in store.video_ids]
        start = time.perf_counter()
        for _ in range(num_clips):
            video = videos[rng.integers(len(videos))]
            video.read_array(int(rng.integers(0, video.num_frames - CLIP_LEN)), CLIP_LEN)
        return num_clips / (time.perf_counter() - start)
    finally:
        StoredFrames.DECODE_THREADS = old


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--videos", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0, help="per source video")
    parser.add_argument("--clips", type=int, default=480, help="per measurement (mp4: / 4)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--cores", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()
    torch.set_num_threads(1)  # the main process only collates: one core, like each worker
    counts = worker_counts(args.cores)
    print(f"cores available: {args.cores}; DataLoader workers measured: {counts}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = tmp / "src"
        src.mkdir()
        names = [f"v{i}" for i in range(args.videos)]
        for i, name in enumerate(names):
            realistic_source(src / f"{name}.mp4", args.seconds, seed=i)
        table = pd.DataFrame(
            {"video_id": names, "filename": [f"{n}.mp4" for n in names], "duration": args.seconds}
        )
        floor = floor_rate([src / f"{n}.mp4" for n in names])
        print(f"floor (sequential PyAV decode of the sources, 1 process): {floor:.1f} clips/s")
        rows = []
        for store_kind in ("npy", "mp4"):
            out = tmp / store_kind
            settings = StoreSettings(FRAME_RATE, None, store_kind, frame_size=RECIPE_SIZE)
            decode_dataset(table, src, out, settings, workers=1, progress=False)
            store = FrameStore(out)
            clips = args.clips if store_kind == "npy" else max(args.clips // 4, 4 * args.batch_size)
            if store_kind == "mp4":
                for threads in (0, 1, 0, 1):  # alternated: the machine's load drifts
                    rate = raw_mp4_rate(store, clips, threads)
                    print(f"mp4 raw clip reads, 1 process, decoder threads={threads}: {rate:.1f}/s")
            for workers in counts:
                rate = loader_rate(store, clips, workers, args.batch_size)
                rows.append(
                    {
                        "store": store_kind,
                        "workers": workers,
                        "clips/s": rate,
                        "per core": rate / workers,
                        "x floor": rate / floor,
                    }
                )
                print(f"{store_kind} {workers} worker(s): {rate:.1f} clips/s", flush=True)
    df = pd.DataFrame(rows)
    df["x 1 worker"] = df["clips/s"] / df.groupby("store")["clips/s"].transform("first")
    print(df.to_string(index=False, float_format=lambda x: f"{x:,.2f}"))
    for store_kind, g in df.groupby("store"):
        per_core = g["per core"].iloc[0]
        print(
            f"{store_kind}: {per_core:.0f} clips/s per worker (1 worker); at an assumed 500 "
            f"clips/s consumed by one H100 training r2plus1d_34, {500 / per_core:.0f} cores"
        )


if __name__ == "__main__":
    main()
