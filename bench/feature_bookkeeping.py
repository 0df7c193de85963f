"""Benchmark: feature bookkeeping per video against the number of videos (must stay flat).

Runs the real :func:`tsp_pretrain.features.extract.extract_dataset` (index, progress records,
``.npy`` writes, clips table, ``meta.json`` / ``missing_files.txt``) on 1,000 / 5,000 / 20,000
videos with the frame store and the model faked (one 1 x 1 frame per video, a zero 4-d feature),
so what is timed is the bookkeeping, and prints seconds per video for each size. Before the
per-video progress records, ``index.json`` was rewritten whole after every video: 2.9 s / 58 s /
18.7 min in total at these sizes (quadratic).

Then, on ``--incremental`` N videos, a full extraction and a re-run after one video is added to
the dataset (and the frame store), under two identities in the same run: the folder-wide digest
of the whole frame-store index (the rule before: one new video re-extracted all N + 1) and the
per-video frame entry (now: only the new one). It prints the videos each re-run extracted and
its time against the full run's. The fake model costs nothing, so the time ratio is the
bookkeeping's alone (reading the index, rebuilding clips.csv and meta.json); with a real model,
whose time is per video extracted, the re-run costs about 1/N of the full run.

    python bench/feature_bookkeeping.py [--sizes 1000 5000 20000] [--incremental 1000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from tsp_pretrain.config import ClipSpec
from tsp_pretrain.features.extract import extract_dataset
from tsp_pretrain.features.spec import ExtractionRun, FeatureSpec
from tsp_pretrain.video.store import StoredVideo, StoreSettings


class FakeVideo:
    """One black 1 x 1 frame: a single window, so the model's work is nil."""

    num_frames = 1
    lost = ()

    def __init__(self, entry: StoredVideo) -> None:
        self.entry = entry

    def iter_stored(self) -> Iterator[np.ndarray]:
        yield np.zeros((1, 1, 3), dtype=np.uint8)


class FakeStore:
    """A frame store of ``video_ids``, each one :class:`FakeVideo` with an index entry."""

    def __init__(self, video_ids: list[str]) -> None:
        settings = StoreSettings(15.0, 1, "npy")
        self.entries = {
            vid: StoredVideo(vid, f"{vid}.npy", 1, 1, 1, f"v_{vid}.mp4", "0" * 16, settings)
            for vid in video_ids
        }

    layout = "rgb"

    def open(self, video_id: str) -> FakeVideo:
        return FakeVideo(self.entries[video_id])

    def index_digest(self) -> str:
        """What the old folder identity held: a digest of the store's whole ``index.json``."""
        document = {vid: self.entries[vid].to_json() for vid in sorted(self.entries)}
        return hashlib.blake2b(json.dumps(document).encode(), digest_size=8).hexdigest()


class FakeEncoder(nn.Module):
    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(clips), 4)


def video_ids(n: int) -> list[str]:
    return [f"video{i:06d}" for i in range(n)]


def extract(ids: list[str], out: Path, identity: dict) -> tuple[int, float]:
    """One extract_dataset run over the fake videos ``ids``: (videos extracted, seconds)."""
    videos = pd.DataFrame({"video_id": ids, "filename": [f"v_{v}.mp4" for v in ids]})
    start = time.perf_counter()
    counts = extract_dataset(
        FakeEncoder(),
        FakeStore(ids),
        videos,
        out,
        ExtractionRun(
            FeatureSpec(ClipSpec(clip_len=1, frame_rate=15.0, crop_size=1), stride=1),
            identity=identity,
            batch_size=1,
            device=torch.device("cpu"),
            progress=False,
        ),
    )
    return counts["extracted"], time.perf_counter() - start


def run(n: int) -> float:
    """Seconds per video of a whole extract_dataset run over ``n`` fake videos."""
    with tempfile.TemporaryDirectory() as tmp:
        _, seconds = extract(video_ids(n), Path(tmp), {"bench": 1})
        return seconds / n


def add_one_video(n: int, whole_index_identity: bool) -> tuple[int, float, int, float]:
    """A full run over ``n`` videos, then a re-run with one more: (videos extracted, seconds)
    of each. ``whole_index_identity``: the folder settings hold the digest of the whole frame
    index, as they did before the per-video rule."""
    before, after = video_ids(n), video_ids(n + 1)

    def settings(ids: list[str]) -> dict:
        if not whole_index_identity:
            return {"bench": 1}
        return {"bench": 1, "frames": FakeStore(ids).index_digest()}

    with tempfile.TemporaryDirectory() as tmp:
        full = extract(before, Path(tmp), settings(before))
        added = extract(after, Path(tmp), settings(after))
    return (*full, *added)


def report_incremental(n: int) -> None:
    """Print the videos re-extracted and the time after adding one video, under both rules."""
    print(f"\n{n} videos extracted, then one video added to the dataset and the frame store")
    print(f"{'identity':<34} {'full run':>16} {'after adding one':>18} {'time ratio':>11}")
    for label, whole in (
        ("before: whole frame index", True),
        ("now: per-video frame entry", False),
    ):
        full_n, full_s, added_n, added_s = add_one_video(n, whole)
        print(
            f"{label:<34} {full_n:>6} in {full_s:>6.2f} s {added_n:>6} in {added_s:>7.2f} s "
            f"{added_s / full_s:>10.2f}x",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument(
        "--incremental", type=int, default=1000, help="videos of the add-one-video run (0: skip)"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{'videos':>8} {'total s':>9} {'ms/video':>9}")
    for n in args.sizes:
        per_video = run(n)
        print(f"{n:>8} {per_video * n:>9.1f} {per_video * 1000:>9.3f}", flush=True)
    if args.incremental:
        report_incremental(args.incremental)


if __name__ == "__main__":
    main()
