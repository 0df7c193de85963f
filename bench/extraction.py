"""Benchmark: end-to-end feature extraction against the model alone on the same batches.

Builds a small npy frame store from synthetic sources and, at two settings, measures in one run:

* ``paper``: 16 x 112 x 112 clips, stride 16, from a store at short side 128, ``r2plus1d_18``;
* ``demo``: the demo's tiny settings (16 x 32 x 32 clips, stride 8, short side 36,
  ``r2plus1d_tiny``);

the model alone (clips/s over the pre-made batches of the run: the ceiling, measured again right
before each end-to-end run), and end-to-end
:func:`~tsp_pretrain.features.extract.extract_dataset` (read, window, transform, encode, write)
with 0, 1 and 2 input worker processes; prints clips/s and the ratio to the model alone. It also
checks that every worker count wrote the same feature bytes.

    python bench/extraction.py [--settings paper demo] [--workers 0 1 2] [--videos 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pandas as pd
import torch

from tsp_pretrain.config import ClipSpec
from tsp_pretrain.features.extract import VideoBatches, encode_batch, extract_dataset
from tsp_pretrain.features.spec import ExtractionRun, FeatureSpec
from tsp_pretrain.models.encoder import build_encoder
from tsp_pretrain.video.decode import decode_dataset
from tsp_pretrain.video.store import FrameStore, StoreSettings

SETTINGS = {
    "paper": dict(backbone="r2plus1d_18", short_side=128, crop=112, clip_len=16, stride=16),
    "demo": dict(backbone="r2plus1d_tiny", short_side=36, crop=32, clip_len=16, stride=8),
}


def write_source(path: Path, seconds: float, seed: int, size=(240, 320)) -> None:
    """A 30 fps H.264 source: a moving noise texture (content does not matter for speed)."""
    rng = np.random.default_rng(seed)
    h, w = size
    path.parent.mkdir(parents=True, exist_ok=True)
    texture = rng.integers(0, 256, (h, w * 2, 3), dtype=np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(int(seconds * 30)):
            image = np.ascontiguousarray(texture[:, i % w : i % w + w])
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def measure(name: str, root: Path, table: pd.DataFrame, workers: list[int]) -> None:
    cfg = SETTINGS[name]
    frames = root / f"frames-{name}"
    decode_dataset(
        table, root / "videos", frames, StoreSettings(15, cfg["short_side"], "npy"), progress=False
    )
    store = FrameStore(frames)
    torch.manual_seed(0)
    encoder = build_encoder(cfg["backbone"], "none").module.eval()
    common = dict(clip_len=cfg["clip_len"], stride=cfg["stride"], crop_size=cfg["crop"])
    dataset = VideoBatches(store, list(table["video_id"]), batch_size=8, **common)
    batches = [(clips, windows) for _, clips, windows, _ in dataset]
    clips = sum(len(b) for b, _ in batches)
    cpu = torch.device("cpu")
    encode_batch(encoder, dataset.transform, *batches[0], cpu, torch.float32)  # warm-up
    clip = ClipSpec(cfg["clip_len"], 15.0, cfg["crop"])
    features = FeatureSpec(clip, cfg["stride"])
    run = ExtractionRun(features, identity={}, batch_size=8, device=cpu, progress=False)

    def model_alone() -> float:
        start = time.perf_counter()
        for batch in batches:
            encode_batch(encoder, dataset.transform, *batch, cpu, torch.float32)
        return clips / (time.perf_counter() - start)

    print(f"{name}: {len(table)} videos, {clips} clips", flush=True)
    outputs = {}
    for w in workers:  # the model alone right before each run: the machine's load drifts
        model = model_alone()
        out = root / f"features-{name}-{w}"
        start = time.perf_counter()
        extract_dataset(encoder, store, table, out, replace(run, workers=w))
        rate = clips / (time.perf_counter() - start)
        outputs[w] = {p.name: p.read_bytes() for p in sorted(out.glob("*.npy"))}
        print(
            f"  workers={w}: model alone {model:.2f} clips/s, end-to-end {rate:.2f} clips/s "
            f"= {rate / model:.2f}x",
            flush=True,
        )
    same = all(outputs[w] == outputs[workers[0]] for w in workers)
    print(f"  features identical across workers {workers}: {same}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--videos", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=12.0)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ids = [f"vid{i}" for i in range(args.videos)]
        for i, vid in enumerate(ids):
            write_source(root / "videos" / f"{vid}.mp4", args.seconds, seed=i)
        table = pd.DataFrame(
            {"video_id": ids, "filename": [f"{v}.mp4" for v in ids], "duration": args.seconds}
        )
        for name in args.settings:
            measure(name, root, table, args.workers)


if __name__ == "__main__":
    main()
