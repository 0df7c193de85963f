"""Benchmark: the training input pipeline alone (random training clips per second, no model).

At the paper's settings: random 16-frame clips read from a frame store at the recipe's size
(``frame_size`` 128 x 171, 15 fps), cropped to 112 x 112 with a random flip, through the
project's own ``ClipDataset`` and a torch ``DataLoader`` with 1, 2, ... workers up to the cores
available, side by side in one run:

- ``npy``: the raw store;
- ``mp4``: the mp4 store as it is now (CAVLC coding, a keyframe every ``MP4_KEYINT`` = 8 frames;
  the workers decode YUV and crop it; colour conversion, flips and normalisation run on the
  batch where the model is, :class:`tsp_pretrain.data.transforms.ClipTransform`);
- ``mp4 before``: the mp4 store as it was (CABAC coding, keyframe interval 16; a container opened
  per clip; swscale's RGB conversion of every decoded frame and torchvision's per-clip transform
  in the worker), rebuilt here from the same parts for the comparison;
- ``mp4 444`` and ``mp4 444 before``: the same two at the ActivityNet preset's CRF 8 in yuv444p
  (the default above is CRF 18 in yuv420p);
- the floor: a plain sequential PyAV decode of the source files (resampled and resized as the
  store does, cut into consecutive 16-frame clips), what reading without a frame store gives.

Extraction's sequential reading (``VideoBatches``: every frame once, windows of 16 at stride 16,
centre crop) is measured in one process too. The workers' output is a batch of uint8 crops;
turning it into the model's float input is timed separately (``device step``: on this CPU here,
on a GPU in ``bench/gpu_check.py``). Unless
``--max-open`` says otherwise, every clip opens its container (``max_open=0``): clips drawn at
random from thousands of videos almost never hit a cache of a few open ones, and 3 source videos
would make every read a hit. The levers are measured one by one in one process: the entropy
coder, the colour conversion, the container cache, the keyframe interval; and the share of clips
that could share a decode with another clip of their batch is computed for ActivityNet's size.

The sources come from ``bench/frame_store.py``'s realistic renderer (640x360 30 fps, textured,
panning, noisy, x264 CRF 23): ``--videos`` of ``--seconds`` each. Rates are after the first
batch (worker start-up excluded); per-core rate = clips/s / workers.

    python bench/input_pipeline.py [--videos 3 --seconds 20 --clips 960 --cores 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import pandas as pd
import torch
from frame_store import RECIPE_SIZE, realistic_source
from torch.utils.data import DataLoader, Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from tsp_pretrain.data.clips import ClipDataset, ClipKey, clip_keys
from tsp_pretrain.data.transforms import KINETICS_MEAN, KINETICS_STD, ClipTransform
from tsp_pretrain.features.extract import VideoBatches
from tsp_pretrain.video import encode as encode_module
from tsp_pretrain.video import store as store_module
from tsp_pretrain.video.decode import decode_dataset, decode_frames
from tsp_pretrain.video.store import FrameStore, StoreSettings

CLIP_LEN, CROP, FRAME_RATE, BATCH = 16, 112, 15, 32
#: ActivityNet's training set and the recipe's batch, for the shared-decode estimate.
ANET_TRAIN_VIDEOS, ANET_CLIPS_PER_VIDEO = 10_024, 50
#: The ActivityNet preset's mp4 store (CRF and pixel format: docs/frame-store.md, "Fidelity").
ANET_FMT = "8:yuv444p"


def worker_counts(cores: int) -> list[int]:
    """1, 2, 4, ... up to ``cores`` (and ``cores`` itself)."""
    counts, n = [], 1
    while n < cores:
        counts.append(n)
        n *= 2
    return [*counts, cores]


class BeforeDataset(Dataset):
    """The mp4 reader and transform as they were: open, seek, swscale RGB per frame, torchvision
    per clip (float clips out of the worker)."""

    def __init__(self, store: FrameStore) -> None:
        self.store = store
        self.preset = v2.Compose(
            [
                v2.RandomCrop(CROP),
                v2.RandomHorizontalFlip(),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(KINETICS_MEAN, KINETICS_STD),
            ]
        )

    def __getitem__(self, key: ClipKey) -> dict[str, torch.Tensor]:
        video = self.store.open(key.video_id)
        h, w, first = video.entry.height, video.entry.width, key.start_frame
        frames = []
        with av.open(str(video.path)) as container:
            stream = container.streams.video[0]
            stream.codec_context.thread_count = 1
            container.seek(int(first / FRAME_RATE / stream.time_base), stream=stream)
            for frame in container.decode(stream):
                index = round(frame.time * FRAME_RATE)
                if index >= first + CLIP_LEN:
                    break
                if index >= first:
                    frames.append(frame.to_ndarray(format="rgb24")[:h, :w])
        torch.manual_seed(key.seed)
        clip = tv_tensors.Video(torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2))
        return {"clips": self.preset(clip).as_subclass(torch.Tensor).permute(1, 0, 2, 3)}


def sample_keys(store: FrameStore, count: int, seed: int) -> list[ClipKey]:
    """``count`` random training clips (seeded per clip, as the training loop's workers do)."""
    rng = np.random.default_rng(seed)
    ids = store.video_ids
    vids = [ids[i] for i in rng.integers(len(ids), size=count)]
    starts = [int(rng.integers(0, store.entries[v].num_frames - CLIP_LEN)) for v in vids]
    samples = pd.DataFrame({"video_id": vids, "start_frame": starts, "action": 0, "region": 0})
    return clip_keys(samples, train=True, seeds=range(count))


def loader_rate(dataset: Dataset, keys: list[ClipKey], workers: int) -> float:
    """Clips/s a DataLoader with ``workers`` workers delivers, after its first batch."""
    batches = [keys[i : i + BATCH] for i in range(0, len(keys) - BATCH + 1, BATCH)]
    loader = DataLoader(dataset, batch_sampler=batches, num_workers=workers)
    it = iter(loader)
    next(it)
    start, count = time.perf_counter(), 0
    for batch in it:
        count += len(batch["clips"])
    return count / (time.perf_counter() - start)


def device_step_rate(store: FrameStore, keys: list[ClipKey]) -> float:
    """Clips/s of :meth:`ClipTransform.to_model` on this CPU, on batches the workers made."""
    dataset = ClipDataset(store, CLIP_LEN, ClipTransform(crop_size=CROP, layout=store.layout))
    batches = [
        torch.utils.data.default_collate([dataset[k] for k in keys[i : i + BATCH]])
        for i in range(0, min(len(keys), 4 * BATCH), BATCH)
    ]
    start = time.perf_counter()
    for batch in batches:
        dataset.transform.to_model(batch["clips"], batch["window"])
    return sum(len(b["clips"]) for b in batches) / (time.perf_counter() - start)


def sequential_rate(store: FrameStore) -> float:
    """Extraction's reading: windows (clip 16, stride 16, centre crop) per second through
    :class:`VideoBatches` in one process, every frame decoded or read once."""
    batches = VideoBatches(
        store, store.video_ids, clip_len=CLIP_LEN, stride=CLIP_LEN, crop_size=CROP, batch_size=BATCH
    )
    start = time.perf_counter()
    clips = sum(len(clips) for _, clips, _, _ in batches)
    return clips / (time.perf_counter() - start)


def raw_read_rate(store: FrameStore, keys: list[ClipKey], rgb: bool = False) -> float:
    """Raw clip reads per second in one process (``rgb``: converted by swscale per frame)."""
    start = time.perf_counter()
    for key in keys:
        video = store.open(key.video_id)
        if rgb:
            with av.open(str(video.path)) as container:
                stream = container.streams.video[0]
                stream.codec_context.thread_count = 1
                first = key.start_frame
                container.seek(int(first / FRAME_RATE / stream.time_base), stream=stream)
                for frame in container.decode(stream):
                    if round(frame.time * FRAME_RATE) >= first + CLIP_LEN:
                        break
                    frame.to_ndarray(format="rgb24")
        else:
            video.read_stored(key.start_frame, CLIP_LEN)
    return len(keys) / (time.perf_counter() - start)


def floor_rate(sources: list[Path]) -> float:
    """Clips/s of a plain sequential decode of the sources (15 fps, 128 x 171), one process."""
    start, frames = time.perf_counter(), 0
    for path in sources:
        frames += sum(1 for _ in decode_frames(path, FRAME_RATE, None, frame_size=RECIPE_SIZE))
    return frames / CLIP_LEN / (time.perf_counter() - start)


def build_store(
    table,
    src,
    out,
    kind: str,
    keyint: int = store_module.MP4_KEYINT,
    cabac: bool = False,
    fmt: str = "18:yuv420p",
) -> FrameStore:
    """Decode the sources into a store; mp4 coded with ``keyint``, ``cabac`` and ``fmt`` (CRF and
    pixel format) as asked."""
    real_options = encode_module.x264_options

    def options(crf, **kwargs):
        return real_options(crf, **{**kwargs, "cabac": cabac})

    store_module.x264_options = options
    try:
        crf, pix_fmt = fmt.split(":")
        settings = StoreSettings(
            FRAME_RATE,
            None,
            kind,
            frame_size=RECIPE_SIZE,
            mp4_crf=int(crf),
            mp4_pix_fmt=pix_fmt,
            mp4_keyint=keyint,
        )
        decode_dataset(table, src, out, settings, workers=1, progress=False)
    finally:
        store_module.x264_options = real_options
    return FrameStore(out, max_open=0)


def shared_decode_share(videos: int, clips_per_video: int, batch: int, seed: int = 0) -> float:
    """Share of clips, drawn as training draws them (every clip of every video, shuffled), that
    have another clip of their video in their batch: what sharing a decode could save at most."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(np.repeat(np.arange(videos), clips_per_video))
    shared = 0
    for i in range(0, len(order) - batch + 1, batch):
        _, counts = np.unique(order[i : i + batch], return_counts=True)
        shared += int(counts[counts > 1].sum())
    return shared / (len(order) // batch * batch)


def measure_levers(table, src: Path, tmp: Path, keys: list[ClipKey]) -> list[dict]:
    """Raw clip reads in one process, one lever changed at a time."""
    rows = []
    grid = [(k, c, "18:yuv420p") for k in (4, 8, 16, 32) for c in (True, False)]
    for keyint, cabac, fmt in [*grid, (16, True, ANET_FMT), (8, False, ANET_FMT)]:
        out = tmp / f"k{keyint}{cabac}{fmt.replace(':', '')}"
        store = build_store(table, src, out, "mp4", keyint, cabac, fmt)
        kb = sum(p.stat().st_size for p in store.root.glob("*.mp4")) / 1e3
        frames = sum(e.num_frames for e in store.entries.values())
        row = {"format": fmt, "keyint": keyint, "coder": "CABAC" if cabac else "CAVLC"}
        row["kB/frame"] = kb / frames
        row["yuv clips/s"] = raw_read_rate(store, keys)
        if keyint == 16 and fmt != ANET_FMT:
            row["swscale rgb clips/s"] = raw_read_rate(store, keys, rgb=True)
            store.containers.size = 8  # every read of the 3 videos now hits the cache
            row["yuv, containers kept open"] = raw_read_rate(store, keys)
        rows.append(row)
        print(row, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--videos", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0, help="per source video")
    parser.add_argument("--clips", type=int, default=960, help="per measurement")
    parser.add_argument("--cores", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--max-open", type=int, default=0, help="containers kept per worker")
    parser.add_argument("--no-levers", action="store_true", help="the DataLoader tables only")
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
        stores = {
            "npy": build_store(table, src, tmp / "npy", "npy"),
            "mp4": build_store(table, src, tmp / "mp4", "mp4"),
            "mp4 before": build_store(table, src, tmp / "mp4b", "mp4", 16, cabac=True),
            "mp4 444": build_store(table, src, tmp / "m444", "mp4", fmt=ANET_FMT),
            "mp4 444 before": build_store(table, src, tmp / "m444b", "mp4", 16, True, ANET_FMT),
        }
        for store in stores.values():
            store.containers.size = args.max_open
        keys = sample_keys(stores["npy"], max(args.clips, 3 * BATCH), seed=0)  # 2 timed batches
        rows = []
        for workers in counts:
            for kind, store in stores.items():
                if kind.endswith("before"):
                    dataset = BeforeDataset(store)
                else:
                    transform = ClipTransform(crop_size=CROP, layout=store.layout)
                    dataset = ClipDataset(store, CLIP_LEN, transform)
                rate = loader_rate(dataset, keys, workers)
                rows.append({"store": kind, "workers": workers, "clips/s": rate})
                print(f"{kind} {workers} worker(s): {rate:.1f} clips/s", flush=True)
        device = {k: device_step_rate(stores[k], keys) for k in ("npy", "mp4", "mp4 444")}
        for kind in ("npy", "mp4", "mp4 444"):
            rate = sequential_rate(stores[kind])
            print(f"extraction's reading, {kind}, 1 process: {rate:,.0f} windows/s (stride 16)")
        levers = (
            pd.DataFrame()
            if args.no_levers
            else pd.DataFrame(measure_levers(table, src, tmp, keys[: max(args.clips // 4, 64)]))
        )
    report(pd.DataFrame(rows), floor, device, levers)


def report(df: pd.DataFrame, floor: float, device: dict[str, float], levers: pd.DataFrame) -> None:
    """The tables and the cores-per-GPU model."""
    df["per core"] = df["clips/s"] / df["workers"]
    df["x floor"] = df["clips/s"] / floor
    df["x 1 worker"] = df["clips/s"] / df.groupby("store")["clips/s"].transform("first")
    fmt = {"float_format": lambda x: f"{x:,.2f}", "index": False}
    print("\nDataLoader, random training clips (uint8 crops; mp4 before: float clips)")
    print(df.to_string(**fmt))
    for kind, rate in device.items():
        print(f"device step (to_model) on this CPU, {kind}: {rate:,.0f} clips/s, one core")
    if not levers.empty:
        print("\nlevers, raw clip reads in one process")
        print(levers.to_string(**fmt))
    share = shared_decode_share(ANET_TRAIN_VIDEOS, ANET_CLIPS_PER_VIDEO, BATCH)
    print(
        f"\nshared decode: {share:.2%} of clips have another clip of their video in their batch "
        f"of {BATCH} ({ANET_TRAIN_VIDEOS:,} videos x {ANET_CLIPS_PER_VIDEO} clips)"
    )
    one = df[df["workers"] == 1].set_index("store")["per core"]
    print(
        f"\nmp4 / npy per core (1 worker): {one['mp4'] / one['npy']:.2f}; mp4 now / before: "
        f"{one['mp4'] / one['mp4 before']:.2f}; mp4 444 now / before: "
        f"{one['mp4 444'] / one['mp4 444 before']:.2f}"
    )
    model = pd.DataFrame(
        {
            "per core (1 worker)": one,
            "cores for 500 clips/s": 500 / one,
            "cores for 1000 clips/s": 1000 / one,
            "16 cores, clips/s": 16 * one,
        }
    )
    print("\ncores per GPU at the 1-worker per-core rate (scaling model: linear in workers)")
    print(model.to_string(float_format=lambda x: f"{x:,.1f}"))


if __name__ == "__main__":
    main()
