"""Benchmark: which frame store, npy (raw uint8) or mp4 (H.264, short keyframe interval)?

Decodes the same synthetic source videos into both stores, at the recipe's size (short side 128)
and the demo's (36), and measures in one run: bytes per frame, decode+write time, random 16-frame
clip reads per second (what training does) and sequential frames per second (what extraction
does), and for mp4 the share of a clip read spent opening the container. Prints the figures and
the npy/mp4 ratios.

    python bench/frame_store.py [--videos 4 --seconds 30]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import pandas as pd

from tsp_pretrain.video.decode import decode_dataset
from tsp_pretrain.video.store import FrameStore, StoreSettings


def synthetic_source(path: Path, seconds: float, seed: int, size=(240, 320)) -> None:
    """A 30 fps source with camera-like content: a smooth textured scene and moving shapes."""
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    texture = rng.normal(0, 1, (h // 8 + 2, w // 8 + 2)).astype(np.float32)
    texture = np.kron(texture, np.ones((8, 8), np.float32))
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(int(seconds * 30)):
            t = i / 30
            dy, dx = int(4 * np.sin(t)), int(6 * np.cos(0.7 * t))
            base = 110 + 25 * texture[8 + dy : 8 + dy + h, 8 + dx : 8 + dx + w]
            cx, cy = w / 2 + w / 4 * np.sin(2 * t), h / 2 + h / 5 * np.cos(3 * t)
            disk = ((xx - cx) ** 2 + (yy - cy) ** 2) < (h / 8) ** 2
            img = np.stack([base, base * 0.9, base * 1.1], -1)
            img[disk] = (230, 60, 40)
            frame = av.VideoFrame.from_ndarray(np.clip(img, 0, 255).astype(np.uint8), "rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def measure(store_dir: Path, clip_len: int, num_clips: int, seed: int) -> dict:
    store = FrameStore(store_dir)
    rng = np.random.default_rng(seed)
    ids = store.video_ids
    frames = sum(store.open(v).num_frames for v in ids)
    size = sum((store_dir / store.entries[v].file).stat().st_size for v in ids)
    start = time.perf_counter()
    for _ in range(num_clips):
        video = store.open(ids[rng.integers(len(ids))])
        video.read_clip(int(rng.integers(0, video.num_frames - clip_len)), clip_len)
    random_rate = num_clips / (time.perf_counter() - start)
    start = time.perf_counter()
    count = sum(1 for v in ids for _ in store.open(v).iter_frames())
    seq_rate = count / (time.perf_counter() - start)
    out = {"bytes/frame": size / frames, "clips/s": random_rate, "seq frames/s": seq_rate}
    if store.entries[ids[0]].settings.store == "mp4":
        # The mp4 reader opens the container for every clip: is that worth caching?
        start = time.perf_counter()
        for i in range(num_clips):
            with av.open(str(store_dir / store.entries[ids[i % len(ids)]].file)) as container:
                container.streams.video[0]
        out["open share"] = (time.perf_counter() - start) / num_clips * random_rate
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clips", type=int, default=300)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = tmp / "src"
        src.mkdir()
        for i in range(args.videos):
            synthetic_source(src / f"v{i}.mp4", args.seconds, seed=i)
        table = pd.DataFrame(
            {
                "video_id": [f"v{i}" for i in range(args.videos)],
                "filename": [f"v{i}.mp4" for i in range(args.videos)],
                "duration": [args.seconds] * args.videos,
            }
        )
        for short_side in (128, 36):
            for store in ("npy", "mp4"):
                out = tmp / f"{store}{short_side}"
                start = time.perf_counter()
                decode_dataset(
                    table, src, out, StoreSettings(15, short_side, store), workers=1, progress=False
                )
                write_s = time.perf_counter() - start
                rows.append(
                    {
                        "short side": short_side,
                        "store": store,
                        "decode+write s": write_s,
                        **measure(out, 16, args.clips, seed=0),
                    }
                )
    df = pd.DataFrame(rows)
    print(df.to_string(index=False, float_format=lambda x: f"{x:,.1f}"))
    for short_side, g in df.groupby("short side"):
        npy, mp4 = g.set_index("store").loc["npy"], g.set_index("store").loc["mp4"]
        print(
            f"short side {short_side}: npy/mp4 bytes "
            f"{npy['bytes/frame'] / mp4['bytes/frame']:.1f}x, "
            f"random clips {npy['clips/s'] / mp4['clips/s']:.1f}x, "
            f"sequential {npy['seq frames/s'] / mp4['seq frames/s']:.1f}x, "
            f"decode+write {npy['decode+write s'] / mp4['decode+write s']:.2f}x; "
            f"opening the mp4 is {mp4['open share']:.0%} of an mp4 clip read"
        )


if __name__ == "__main__":
    main()
