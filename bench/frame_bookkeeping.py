"""Benchmark: the decode stage's bookkeeping per video against the number of videos.

Runs the real :func:`tsp_pretrain.video.decode.decode_dataset` (one process) over a videos table
of N videos with the decoder faked: each "decoded" video is a one-frame npy file written through
the store's own writer, so that only the bookkeeping around the decoder is measured (index
entries, the sweep of the folder, the final index). Bookkeeping = wall time of decode_dataset
minus the time spent inside the fake decoder. Flat seconds per video from 1,000 to 20,000
videos means linear bookkeeping; before the per-video entry files, the whole index.json was
rewritten after every video (quadratic: 12 s at 1,000 videos, 317 s at 5,000).

    python bench/frame_bookkeeping.py [--sizes 1000 5000 20000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from tsp_pretrain.video import decode as decode_module
from tsp_pretrain.video.store import (
    PENDING_SUFFIX,
    FrameStore,
    StoredVideo,
    StoreSettings,
    write_npy,
)

SETTINGS = StoreSettings(frame_rate=15, short_side=128, store="npy")


def run(num_videos: int) -> dict:
    """Decode ``num_videos`` fake videos into a fresh store; the timings in seconds."""
    in_decoder = [0.0]
    frame = np.zeros((2, 2, 3), np.uint8)

    def fake_decode(job: decode_module.DecodeJob):
        start = time.perf_counter()
        out = Path(job.out_dir) / f"{job.video_id}{job.settings.suffix}"
        count, h, w = write_npy(out, iter([frame]))
        entry = StoredVideo(job.video_id, out.name, count, h, w, "x.mp4", "0", job.settings)
        in_decoder[0] += time.perf_counter() - start
        return entry, decode_module.DecodeLog()

    names = [f"video_{i:06d}" for i in range(num_videos)]
    table = pd.DataFrame(
        {"video_id": names, "filename": [f"{v}.mp4" for v in names], "duration": 1.0}
    )
    real = decode_module._decode_one
    decode_module._decode_one = fake_decode
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "frames"
            start = time.perf_counter()
            report = decode_module.decode_dataset(table, tmp, out, SETTINGS, progress=False)
            total = time.perf_counter() - start
            assert len(report.decoded) == num_videos
            assert len(FrameStore(out).entries) == num_videos
            assert not list(out.glob(f"*{PENDING_SUFFIX}"))  # merged into index.json
    finally:
        decode_module._decode_one = real
    bookkeeping = total - in_decoder[0]
    return {
        "videos": num_videos,
        "total s": total,
        "fake decoder s": in_decoder[0],
        "bookkeeping s": bookkeeping,
        "bookkeeping ms/video": 1000 * bookkeeping / num_videos,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    args = parser.parse_args()
    rows = []
    for n in args.sizes:
        rows.append(run(n))
        print(
            f"{n:>6} videos: bookkeeping {rows[-1]['bookkeeping s']:.2f} s, "
            f"{rows[-1]['bookkeeping ms/video']:.3f} ms per video",
            flush=True,
        )
    df = pd.DataFrame(rows).set_index("videos")
    print(df.to_string(float_format=lambda x: f"{x:,.3f}"))
    first, last = df.iloc[0], df.iloc[-1]
    print(
        f"ms per video at {df.index[-1]:,} / at {df.index[0]:,} videos: "
        f"{last['bookkeeping ms/video'] / first['bookkeeping ms/video']:.2f} (1.0 = flat)"
    )


if __name__ == "__main__":
    main()
