"""Benchmark: feature bookkeeping per video against the number of videos (must stay flat).

Runs the real :func:`tsp_pretrain.features.extract.extract_dataset` (index, progress records,
``.npy`` writes, clips table, ``meta.json`` / ``missing_files.txt``) on 1,000 / 5,000 / 20,000
videos with the frame store and the model faked (one 1 x 1 frame per video, a zero 4-d feature),
so what is timed is the bookkeeping, and prints seconds per video for each size. Before the
per-video progress records, ``index.json`` was rewritten whole after every video: 2.9 s / 58 s /
18.7 min in total at these sizes (quadratic).

    python bench/feature_bookkeeping.py [--sizes 1000 5000 20000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from tsp_pretrain.features.extract import extract_dataset


class FakeVideo:
    """One black 1 x 1 frame: a single window, so the model's work is nil."""

    num_frames = 1
    lost = ()

    def iter_frames(self) -> Iterator[np.ndarray]:
        yield np.zeros((1, 1, 3), dtype=np.uint8)


class FakeStore:
    def __contains__(self, video_id: str) -> bool:
        return True

    def open(self, video_id: str) -> FakeVideo:
        return FakeVideo()


class FakeEncoder(nn.Module):
    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(clips), 4)


def run(n: int) -> float:
    """Seconds per video of a whole extract_dataset run over ``n`` fake videos."""
    ids = [f"video{i:06d}" for i in range(n)]
    videos = pd.DataFrame({"video_id": ids, "filename": [f"v_{v}.mp4" for v in ids]})
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        extract_dataset(
            FakeEncoder(),
            FakeStore(),
            videos,
            Path(tmp),
            settings={"bench": 1},
            clip_len=1,
            stride=1,
            frame_rate=15.0,
            crop_size=1,
            batch_size=1,
            device=torch.device("cpu"),
            progress=False,
        )
        return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{'videos':>8} {'total s':>9} {'ms/video':>9}")
    for n in args.sizes:
        per_video = run(n)
        print(f"{n:>8} {per_video * n:>9.1f} {per_video * 1000:>9.3f}", flush=True)


if __name__ == "__main__":
    main()
