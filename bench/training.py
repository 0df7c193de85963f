"""Benchmark: end-to-end training steps against the model alone on the same batches.

Builds a small npy frame store from synthetic sources and runs the real
:func:`~tsp_pretrain.training.loop.train` (one epoch, TSP with GVF) with 0, 1 and 2 DataLoader
workers. Every training step (forward, loss, backward, optimizer step) is timed in place, and
the batches of the first run are kept; the model alone then replays exactly those batches (same
model, same optimiser). Steady-state clips/s (the first step, which also pays for starting the
workers, is left out) and the ratio end-to-end / model alone are printed, measured in one run.

    python bench/training.py [--settings paper demo] [--workers 0 1 2] [--steps 6]

``paper``: r2plus1d_18, 16 x 112 x 112 clips from a store at short side 128, batch 4 (CPU-sized);
``demo``: the demo's r2plus1d_tiny, 16 x 32 x 32 from short side 36, batch 16.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from extraction import write_source  # bench/extraction.py: the same synthetic sources

from tsp_pretrain.config import ClipSpec, OptimParams
from tsp_pretrain.models.param_groups import param_groups
from tsp_pretrain.models.tsp import build_tsp_model
from tsp_pretrain.training import loop
from tsp_pretrain.video.decode import decode_dataset
from tsp_pretrain.video.store import FrameStore, StoreSettings

SETTINGS = {
    "paper": dict(backbone="r2plus1d_18", short_side=128, crop=112, clip_len=16, batch=4),
    "demo": dict(backbone="r2plus1d_tiny", short_side=36, crop=32, clip_len=16, batch=16),
}


def _segments(ids: list[str], seconds: float) -> pd.DataFrame:
    half = seconds / 2
    rows = [(v, 0.0, half, "x", 0, "foreground") for v in ids]
    rows += [(v, half, seconds, "", -1, "background") for v in ids]
    cols = ["video_id", "t_start", "t_end", "label", "label_id", "region"]
    return pd.DataFrame(rows, columns=cols)


class StepTimer:
    """Times each training step of the real loop (start of forward to end of the optimizer step)
    by wrapping the loop's forward_and_loss and SGD.step; optionally keeps each step's batch."""

    def __init__(self, keep: bool) -> None:
        self.real_forward, self.real_step = loop.forward_and_loss, torch.optim.SGD.step
        self.keep = keep
        self.batches: list[dict] = []
        self.starts: list[float] = []
        self.ends: list[float] = []

    def __call__(self, model, batch, *args, **kwargs):
        if model.training:
            self.starts.append(time.perf_counter())
            if self.keep:
                self.batches.append({k: v.clone() for k, v in batch.items() if v is not None})
        return self.real_forward(model, batch, *args, **kwargs)

    def __enter__(self) -> StepTimer:
        timer = self

        def step(optimizer, *args, **kwargs):
            out = timer.real_step(optimizer, *args, **kwargs)
            timer.ends.append(time.perf_counter())
            return out

        loop.forward_and_loss, torch.optim.SGD.step = self, step
        return self

    def __exit__(self, *exc) -> None:
        loop.forward_and_loss, torch.optim.SGD.step = self.real_forward, self.real_step


def steady_rate(starts: list[float], end: float, batch: int) -> float:
    """Clips/s from the second step's start to the end of the last one."""
    return (len(starts) - 1) * batch / (end - starts[1])


def measure(name: str, root: Path, workers: list[int], steps: int) -> None:
    cfg = SETTINGS[name]
    seconds = 8.0
    ids = [f"v{i}" for i in range(4)]
    for i, vid in enumerate(ids):
        write_source(root / "videos" / f"{vid}.mp4", seconds, seed=i)
    table = pd.DataFrame(
        {"video_id": ids, "filename": [f"{v}.mp4" for v in ids], "duration": seconds}
    )
    frames = root / f"frames-{name}"
    settings = StoreSettings(15, cfg["short_side"], "npy")
    decode_dataset(table, root / "videos", frames, settings, progress=False)
    segments = _segments(ids, seconds)
    per_segment = max(1, steps * cfg["batch"] // len(segments))
    results: dict[str, float] = {}
    kept: list[dict] = []
    for w in workers:
        model = build_tsp_model(cfg["backbone"], 2, objective="tsp", gvf=True, seed=0)
        gvf = {v: torch.rand(model.feature_dim) for v in ids}
        clip = ClipSpec(cfg["clip_len"], 15, cfg["crop"])
        data = loop.ClipSource(FrameStore(frames), segments, segments.head(1), clip, gvf)
        params = OptimParams(
            epochs=1,
            batch_size=cfg["batch"],
            clips_per_segment=per_segment,
            device="cpu",
            workers=w,
            warmup_epochs=0,
            lr_milestones=(),
        )
        with StepTimer(keep=not kept) as timer, tempfile.TemporaryDirectory() as tmp:
            outputs = loop.RunOutputs(Path(tmp) / "c.pt", Path(tmp) / "live", "bench")
            loop.train(model, data, params, outputs, seed=0)
        kept = kept or timer.batches
        results[f"end-to-end, {w} workers"] = steady_rate(
            timer.starts, timer.ends[-1], cfg["batch"]
        )

    model = build_tsp_model(cfg["backbone"], 2, objective="tsp", gvf=True, seed=0).train()
    optimizer = torch.optim.SGD(param_groups(model, 0.0, 1e-3, 1e-3, 0.0), momentum=0.9)
    starts = []
    for batch in kept:
        starts.append(time.perf_counter())
        loss, _ = loop.forward_and_loss(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    alone = steady_rate(starts, time.perf_counter(), cfg["batch"])
    print(
        f"[{name}] {cfg['backbone']}, {cfg['clip_len']}x{cfg['crop']}x{cfg['crop']}, batch "
        f"{cfg['batch']}, {len(kept)} steps; torch threads {torch.get_num_threads()}"
    )
    print(f"  model alone on the same batches: {alone:8.2f} clips/s")
    for key, rate in results.items():
        print(f"  {key:26s}: {rate:8.2f} clips/s  ({rate / alone:.2f}x the model alone)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", default=["demo", "paper"], choices=SETTINGS)
    parser.add_argument("--workers", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.settings:
            measure(name, Path(tmp) / name, args.workers, args.steps)


if __name__ == "__main__":
    main()
