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

``--scale`` measures what a real dataset costs, at the recipe's size and frames (``frame_size``
128 x 171, 15 fps, ``decode.method`` official; decoding alone is also timed with the ffmpeg
method), for npy and two mp4 settings (:data:`STORES`), on one realistic source (640x360,
30 fps, a few minutes: a fine multi-scale colour texture that pans, several moving shapes,
sensor noise, compressed as a download would be): bytes per minute of video per store, decode
throughput (seconds of video per CPU-second: the decode
runs in one process and x264 in one thread, so that is per core), and random 16-frame clip reads
per second in one process and in two worker processes, raw and with the training transform
(random crop 112, flip, normalise: what a DataLoader worker does per clip). ``--source 1280x720``
renders a 720p source instead (decoding cost grows with the source's pixels).

    python bench/frame_store.py [--videos 4 --seconds 30]
    python bench/frame_store.py --memory [--seconds 12]
    python bench/frame_store.py --scale [--seconds 120 --source 640x360]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import pandas as pd
import torch

from tsp_pretrain.data.transforms import ClipTransform
from tsp_pretrain.video.decode import decode_dataset, decode_frames
from tsp_pretrain.video.store import FrameStore, StoreSettings

RECIPE_SIZE = (128, 171)


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


def realistic_source(path: Path, seconds: float, seed: int = 0, size=(360, 640)) -> None:
    """A 30 fps source that compresses like footage rather than like a cartoon.

    A colour texture with detail at 2, 8 and 32 pixels pans across the frame; four shapes of
    different sizes move on their own paths; every frame gets sensor noise (std 3 grey levels,
    drawn from a bank of 16 noise frames at random offsets, to keep rendering cheap). Encoded at
    x264's defaults for a download (CRF 23, preset medium).
    """
    rng = np.random.default_rng(seed)
    h, w = size
    pad = 64
    texture = np.zeros((h + 2 * pad, w + 2 * pad, 3), np.float32)
    for cell, amp in ((2, 10.0), (8, 18.0), (32, 28.0)):
        coarse = rng.normal(0, 1, ((h + 2 * pad) // cell + 1, (w + 2 * pad) // cell + 1, 3))
        texture += amp * np.kron(coarse, np.ones((cell, cell, 1)))[: h + 2 * pad, : w + 2 * pad]
    texture += np.array([120.0, 110.0, 100.0], np.float32)
    noise = rng.normal(0, 3, (16, h + 16, w + 16, 1)).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    shapes = [
        (rng.uniform(0.05, 0.2) * h, rng.uniform(0.3, 2.0), rng.uniform(0, 255, 3))
        for _ in range(4)
    ]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30, options={"crf": "23", "preset": "medium"})
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(int(seconds * 30)):
            t = i / 30
            dy, dx = int(pad * 0.9 * np.sin(0.13 * t)), int(pad * 0.9 * np.cos(0.11 * t))
            img = texture[pad + dy : pad + dy + h, pad + dx : pad + dx + w].copy()
            for k, (radius, speed, colour) in enumerate(shapes):
                cx = w / 2 + w / 3 * np.sin(speed * t + k)
                cy = h / 2 + h / 3 * np.cos(1.3 * speed * t + 2 * k)
                img[((xx - cx) ** 2 + (yy - cy) ** 2) < radius**2] = colour
            oy, ox = rng.integers(0, 16, 2)
            img += noise[i % 16, oy : oy + h, ox : ox + w]
            frame = av.VideoFrame.from_ndarray(np.clip(img, 0, 255).astype(np.uint8), "rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _read_clips(
    store_dir: str, num_clips: int, seed: int, transform: bool, start=None
) -> tuple[float, float]:
    """Read ``num_clips`` random 16-frame clips; (wall seconds, CPU seconds) of the reads only.

    ``start``: a barrier the worker processes wait on after their imports, so that only the
    reading is timed.
    """
    torch.set_num_threads(1)  # as in a DataLoader worker: one core per reading process
    store = FrameStore(store_dir)
    preset = ClipTransform(crop_size=112, layout=store.layout) if transform else None
    rng = np.random.default_rng(seed)
    ids = store.video_ids
    if start is not None:
        start.wait()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(num_clips):
        video = store.open(ids[rng.integers(len(ids))])
        clip = video.read_stored(int(rng.integers(0, video.num_frames - 16)), 16)
        if preset is not None:  # the whole training transform, the device's part on this CPU
            window = preset.window(True, video.entry.height, video.entry.width)
            preset.to_model(torch.from_numpy(preset.crop(clip, window))[None], window[None])
    return time.perf_counter() - wall, time.process_time() - cpu


def _clip_rate(store_dir: Path, num_clips: int, workers: int, transform: bool) -> float:
    """Random clips per second of ``workers`` processes reading at once (1: this process)."""
    if workers == 1:
        wall, _ = _read_clips(str(store_dir), num_clips, 0, transform)
        return num_clips / wall
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager, ctx.Pool(workers) as pool:
        start = manager.Barrier(workers)
        jobs = [
            pool.apply_async(_read_clips, (str(store_dir), num_clips, seed, transform, start))
            for seed in range(workers)
        ]
        walls = [job.get()[0] for job in jobs]
    return workers * num_clips / max(walls)


#: The stores ``--scale`` measures (all with the official decode method): npy, the mp4 store's
#: default (CRF 18, yuv420p) and the settings that keep features within 1% of the official ones
#: (``bench/fidelity.py``; the ActivityNet preset's).
STORES = {
    "npy": {},
    "mp4": {"mp4_crf": 18, "mp4_pix_fmt": "yuv420p"},
    "mp4 CRF 8 yuv444p": {"mp4_crf": 8, "mp4_pix_fmt": "yuv444p"},
}


def scale(seconds: float, num_clips: int, source_size: tuple[int, int] = (360, 640)) -> None:
    """The ``--scale`` measurement: one realistic source, both stores at the recipe's size."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = tmp / "src"
        src.mkdir()
        t0 = time.perf_counter()
        realistic_source(src / "v.mp4", seconds, size=source_size)
        source_mb_min = (src / "v.mp4").stat().st_size / 1e6 / (seconds / 60)
        print(
            f"source: {seconds:g} s of {source_size[1]}x{source_size[0]} 30 fps, "
            f"{source_mb_min:.1f} MB/min "
            f"(rendered and encoded in {time.perf_counter() - t0:.0f} s)"
        )
        decode_only = {}
        for method in ("official", "ffmpeg"):
            cpu = time.process_time()
            frames = decode_frames(src / "v.mp4", 15, None, frame_size=RECIPE_SIZE, method=method)
            count = sum(1 for _ in frames)
            decode_only[method] = seconds / (time.process_time() - cpu)
        table = pd.DataFrame({"video_id": ["v"], "filename": ["v.mp4"], "duration": [seconds]})
        for store, mp4 in STORES.items():
            out = tmp / store
            settings = StoreSettings(
                15, None, store[:3], frame_size=RECIPE_SIZE, method="official", **mp4
            )
            cpu = time.process_time()
            decode_dataset(table, src, out, settings, workers=1, progress=False)
            cpu = time.process_time() - cpu
            entry = FrameStore(out).entries["v"]
            assert (entry.height, entry.width) == RECIPE_SIZE and entry.num_frames == count
            row = {
                "store": store,
                "MB/min": (out / entry.file).stat().st_size / 1e6 / (seconds / 60),
                "video s per CPU-s": seconds / cpu,
            }
            for workers in (1, 2):
                row[f"clips/s {workers}p"] = _clip_rate(out, num_clips, workers, False)
            for workers in (1, 2):
                row[f"+transform {workers}p"] = _clip_rate(out, num_clips, workers, True)
            rows.append(row)
    df = pd.DataFrame(rows).set_index("store")
    print(df.to_string(float_format=lambda x: f"{x:,.1f}"))
    npy, mp4 = df.loc["npy"], df.loc["mp4"]
    print(
        f"decoding alone (no store write): {decode_only['official']:.1f} video s per CPU-s with "
        f"the official method, {decode_only['ffmpeg']:.1f} with the ffmpeg method; "
        f"npy/mp4: bytes {npy['MB/min'] / mp4['MB/min']:.1f}x, "
        f"random clips {npy['clips/s 1p'] / mp4['clips/s 1p']:.1f}x (1 process), "
        f"{npy['+transform 1p'] / mp4['+transform 1p']:.1f}x with the transform; "
        f"2 processes / 1: npy {npy['clips/s 2p'] / npy['clips/s 1p']:.2f}, "
        f"mp4 {mp4['clips/s 2p'] / mp4['clips/s 1p']:.2f}; "
        f"mp4 store bytes per pixel {mp4['MB/min'] * 1e6 / (15 * 60 * 128 * 172):.3f}"
    )


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
from tsp_pretrain.video.decode import decode_dataset, decode_frames
from tsp_pretrain.video.store import FrameStore, StoreSettings

RECIPE_SIZE = (128, 171)
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
    total = sum(int(f.flat[0]) for f in video.iter_stored())
    rng = np.random.default_rng(0)
    for _ in range(200):
        video.read_stored(int(rng.integers(0, video.num_frames - 16)), 16)
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
    parser.add_argument("--seconds", type=float, help="per video; default 30 (--scale: 120)")
    parser.add_argument("--clips", type=int, default=300)
    parser.add_argument("--memory", action="store_true", help="peak RSS vs video length")
    parser.add_argument("--scale", action="store_true", help="real-scale figures (see above)")
    parser.add_argument("--source", default="640x360", help="--scale: source WxH (even)")
    args = parser.parse_args()
    if args.scale:
        width, height = (int(v) for v in args.source.split("x"))
        scale(args.seconds or 120.0, args.clips, (height, width))
        return
    args.seconds = args.seconds or 30.0
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
