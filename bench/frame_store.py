"""Benchmark: which frame store, npy (raw uint8) or mp4 (H.264, short keyframe interval)?

Decodes the same synthetic source videos into both stores, at the recipe's size (short side 128)
and the demo's (36), and measures in one run: bytes per frame, decode+write time, random 16-frame
clip reads per second (what training does) and sequential frames per second (what extraction
does), and for mp4 the share of a clip read spent opening the container. Prints the figures and
the npy/mp4 ratios.

``--memory`` measures instead the peak resident memory (VmHWM, reset after the imports) of
decoding one video, and of reading it (every frame in order, as extraction does, then random
clips, as training does), each in a fresh subprocess, for a short video and one ten times longer,
per store, and prints the long/short ratio: memory must not grow with the video's length.

    python bench/frame_store.py [--videos 4 --seconds 30]
    python bench/frame_store.py --memory [--seconds 12]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
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


_CHILD = """
import json, sys
import numpy as np, pandas as pd
from pathlib import Path
from tsp_pretrain.video.decode import decode_dataset
from tsp_pretrain.video.store import FrameStore, StoreSettings
phase, src, out, store, seconds = sys.argv[1:]
src, out, seconds = Path(src), Path(out), float(seconds)
def status(key):  # kB in /proc/self/status
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
# the imports (torch) peak higher than the work: reset the high-water mark (Linux) first
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
base = status("VmRSS")
if phase == "decode":
    table = pd.DataFrame({"video_id": ["v"], "filename": [src.name], "duration": [seconds]})
    decode_dataset(table, src.parent, out, StoreSettings(15, 128, store), progress=False)
else:
    video = FrameStore(out).open("v")
    total = sum(int(f[0, 0, 0]) for f in video.iter_frames())
    rng = np.random.default_rng(0)
    for _ in range(200):
        video.read_clip(int(rng.integers(0, video.num_frames - 16)), 16)
peak = status("VmHWM")
print(json.dumps({"after imports MB": base / 1024, "peak MB": peak / 1024,
                  "growth MB": (peak - base) / 1024}))
"""


def memory(seconds: float) -> None:
    """Peak RSS of decoding and of reading a video of ``seconds`` and one 10x longer."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for length in (seconds, 10 * seconds):
            src = tmp / f"src{length:g}.mp4"
            synthetic_source(src, length, seed=0)
            for store in ("npy", "mp4"):
                out = tmp / f"{store}{length:g}"
                for phase in ("decode", "read"):
                    cmd = [sys.executable, "-c", _CHILD, phase, src, out, store, str(length)]
                    result = subprocess.run(
                        [str(c) for c in cmd], check=True, capture_output=True, text=True
                    )
                    figures = json.loads(result.stdout.strip().splitlines()[-1])
                    rows.append({"seconds": length, "store": store, "phase": phase, **figures})
    df = pd.DataFrame(rows)
    print(df.to_string(index=False, float_format=lambda x: f"{x:,.0f}"))
    for (store, phase), g in df.groupby(["store", "phase"]):
        short, long = g.sort_values("seconds")[["peak MB", "growth MB"]].to_numpy()
        print(
            f"{store} {phase}: peak RSS 10x longer / short = {long[0] / short[0]:.2f} "
            f"(growth above the imports: {short[1]:.0f} MB -> {long[1]:.0f} MB)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clips", type=int, default=300)
    parser.add_argument("--memory", action="store_true", help="peak RSS vs video length")
    args = parser.parse_args()
    if args.memory:
        memory(args.seconds)
        return
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
