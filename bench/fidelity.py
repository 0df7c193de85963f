"""Benchmark: are this project's features the released TSP code's features?

For realistic synthetic sources (a colour texture with detail at several scales that pans like a
camera, shapes moving on their own paths, sensor noise; H.264 as a download would be) at each
frame rate of ``--rates`` and each size of ``--sizes``, features of a release-layout checkpoint
(r2plus1d_18, seeded default initialisation, saved as the official ``train.py`` saves it and
loaded through the project's weights code) are computed two ways:

- **reference**: an independent re-implementation, in this file, of the official preprocessing
  (``extract_features/eval_video_dataset.py`` and ``common/transforms.py`` of HumamAlwassel/TSP).
  Standardisation to constant 30 fps with the rule of FFmpeg's ``fps`` filter, written out here
  from the source frames' timestamps (slot ``n`` shows the last frame whose time rounds, half
  up, to ``n / 30`` or before); every 2nd frame; RGB; float ``/ 255``; bilinear ``interpolate``
  to 128 x 171 without antialiasing; Kinetics normalisation; centre crop 112.
- **project**: the extract route: ``decode_dataset`` into a frame store (``decode.method``
  official, ``frame_size`` [128, 171], each store of ``--stores``), then ``iter_features``.

It prints, per source and store, the relative L2 distance ``|f - f_ref| / |f_ref|`` over the
clips (median and max), then one summary line per store with its disk cost. For scale, two more
columns: the same distance between a reference clip and the clip one stored frame (1/15 s) later,
and the effect of the official standardisation's lossy re-encode (x264 at FFmpeg's defaults,
CRF 23, preset medium), which the project does not repeat; ``--figure`` draws the latter.

    python bench/fidelity.py [--seconds 5 --rates 24,25,29.97,30,50,60 --sizes 320x240,1280x720]
        [--stores npy,npy-ffmpeg,mp4:18:yuv420p,mp4:18:yuv444p,...] [--figure PATH]

A store is ``npy``, ``npy-ffmpeg`` (the ``ffmpeg`` decode method: one fps filter, area scaling
in YUV; the method before the official one existed) or ``mp4:<crf>:<pix_fmt>``.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

if __name__ == "__main__":  # the CPU numerics contract first, as in every stage
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tsp_pretrain.numerics import pin

    pin(reexec=True)

import av
import numpy as np
import pandas as pd
import torch

from tsp_pretrain.config import ClipSpec
from tsp_pretrain.features.extract import iter_features
from tsp_pretrain.features.spec import FeatureSpec
from tsp_pretrain.models.registry import get_backbone
from tsp_pretrain.models.weights import load_encoder_weights
from tsp_pretrain.video.decode import decode_dataset
from tsp_pretrain.video.store import FrameStore, StoreSettings

SIZE, CROP, CLIP_LEN, RATE = (128, 171), 112, 16, 15
MEAN = torch.tensor([0.43216, 0.394666, 0.37645]).view(3, 1, 1, 1)
STD = torch.tensor([0.22803, 0.22145, 0.216989]).view(3, 1, 1, 1)


# ------------------------------------------------------------------------------------- sources


def render_source(path: Path, fps: Fraction, size: tuple[int, int], seconds: float, seed: int):
    """A source that moves and compresses like footage, at ``fps`` (exact, e.g. 30000/1001).

    A colour texture with detail at 2, 8 and 32 pixels pans back and forth (peak speed 15% of
    the width per second); four shapes move on their own paths; every frame gets sensor noise
    (std 3 levels). Encoded with x264 at CRF 18 in yuv420p, timestamps ``i / fps``.
    """
    rng = np.random.default_rng(seed)
    h, w = size
    pad_y, pad_x = h // 4, w // 3
    th, tw = h + 2 * pad_y, w + 2 * pad_x
    texture = np.zeros((th, tw, 3), np.float32)
    scale = max(1, w // 320)
    for cell, amp in ((2 * scale, 10.0), (8 * scale, 18.0), (32 * scale, 28.0)):
        coarse = rng.normal(0, 1, (th // cell + 1, tw // cell + 1, 3)).astype(np.float32)
        texture += amp * np.kron(coarse, np.ones((cell, cell, 1), np.float32))[:th, :tw]
    texture += np.array([120.0, 110.0, 100.0], np.float32)
    noise = rng.normal(0, 3, (8, h + 16, w + 16, 1)).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    shapes = [(rng.uniform(0.05, 0.2) * h, rng.uniform(0.5, 2.0), rng.uniform(0, 255, 3))]
    shapes += [(rng.uniform(0.05, 0.2) * h, rng.uniform(0.5, 2.0), rng.uniform(0, 255, 3))]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.time_base = 1 / fps
        stream.options = {"crf": "18", "preset": "veryfast", "x264-params": "threads=1"}
        for i in range(int(seconds * fps)):
            t = float(i / fps)
            dx = int(pad_x * 0.95 * math.sin(0.15 * w / (pad_x * 0.95) * t))
            dy = int(pad_y * 0.5 * math.cos(0.7 * t))
            img = texture[pad_y + dy : pad_y + dy + h, pad_x + dx : pad_x + dx + w].copy()
            for k, (radius, speed, colour) in enumerate(shapes):
                cx = w / 2 + w / 3 * math.sin(speed * t + k)
                cy = h / 2 + h / 3 * math.cos(1.3 * speed * t + 2 * k)
                img[((xx - cx) ** 2 + (yy - cy) ** 2) < radius**2] = colour
            oy, ox = rng.integers(0, 16, 2)
            img += noise[i % 8, oy : oy + h, ox : ox + w]
            frame = av.VideoFrame.from_ndarray(np.clip(img, 0, 255).astype(np.uint8), "rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


# ------------------------------------------------------------ the official pipeline, re-written


def standardised_frames(path: Path) -> list[av.VideoFrame]:
    """The frames ``ffmpeg -i IN -filter:v fps=fps=30`` keeps, in order, one per 30 fps slot.

    A source frame at time ``t`` falls in slot ``round_half_up(30 t)``; slot ``n`` shows the last
    frame whose slot is ``n`` or earlier. Slots run from the first frame's to the last frame's.
    """
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        decoded = [
            (math.floor(frame.pts * stream.time_base * 30 + Fraction(1, 2)), frame)
            for frame in container.decode(stream)
        ]
    out, j = [], 0
    for n in range(decoded[0][0], decoded[-1][0] + 1):
        while j + 1 < len(decoded) and decoded[j + 1][0] <= n:
            j += 1
        out.append(decoded[j][1])
    return out


def reencoded(frames: list[av.VideoFrame], workdir: Path) -> list[av.VideoFrame]:
    """``frames`` through the standardisation's own x264 re-encode (FFmpeg's defaults: CRF 23,
    preset medium, yuv420p, 30 fps) and decoded back."""
    path = workdir / "standardised.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = frames[0].width, frames[0].height, "yuv420p"
        stream.options = {"crf": "23", "preset": "medium", "x264-params": "threads=1"}
        for i, frame in enumerate(frames):
            copy = av.VideoFrame.from_ndarray(frame.to_ndarray(), format="yuv420p")
            copy.pts = i
            container.mux(stream.encode(copy))
        container.mux(stream.encode())
    with av.open(str(path)) as container:
        return list(container.decode(video=0))


def official_clip(frames: list[av.VideoFrame], start: int) -> torch.Tensor:
    """Clip ``start`` (in 15 fps frames) as the official loader and transform build it."""
    picked = frames[2 * start : 2 * start + 2 * CLIP_LEN : 2]
    rgb = torch.from_numpy(np.stack([f.to_ndarray(format="rgb24") for f in picked]))
    x = rgb.permute(3, 0, 1, 2).to(torch.float32) / 255  # C x T x H x W
    x = torch.nn.functional.interpolate(x, size=SIZE, mode="bilinear", align_corners=False)
    x = (x - MEAN) / STD
    top, left = round((SIZE[0] - CROP) / 2), round((SIZE[1] - CROP) / 2)  # torchvision's rule
    return x[:, :, top : top + CROP, left : left + CROP]


@torch.inference_mode()
def features(encoder: torch.nn.Module, clips: list[torch.Tensor]) -> np.ndarray:
    return np.concatenate(
        [encoder(torch.stack(clips[i : i + 8])).numpy() for i in range(0, len(clips), 8)]
    )


# ------------------------------------------------------------------------------- the project


@dataclass(frozen=True)
class Store:
    name: str
    settings: StoreSettings


def parse_store(spec: str) -> Store:
    common = {"frame_rate": RATE, "short_side": None, "frame_size": SIZE}
    if spec == "npy":
        return Store(spec, StoreSettings(store="npy", method="official", **common))
    if spec == "npy-ffmpeg":
        return Store(spec, StoreSettings(store="npy", method="ffmpeg", **common))
    _, crf, pix_fmt = spec.split(":")
    settings = StoreSettings(
        store="mp4", method="official", mp4_crf=int(crf), mp4_pix_fmt=pix_fmt, **common
    )
    return Store(spec, settings)


def release_layout_encoder(workdir: Path) -> torch.nn.Module:
    """r2plus1d_18, seeded default initialisation, saved as a TSP release and loaded back through
    the project's weights code."""
    spec = get_backbone("r2plus1d_18")
    torch.manual_seed(0)
    net = spec.build()
    spec.remove_classifier(net)
    state = {f"features.{k}": v for k, v in net.state_dict().items()}
    state |= {"fc1.weight": torch.zeros(200, 512), "fc1.bias": torch.zeros(200)}
    state |= {"fc2.weight": torch.zeros(2, 1024), "fc2.bias": torch.zeros(2)}
    path = workdir / "r2plus1d_18-release-layout.pth"
    torch.save({"model": state, "optimizer": {}, "lr_scheduler": {}, "epoch": 5}, path)
    encoder = spec.build()
    spec.remove_classifier(encoder)
    load_encoder_weights(encoder, spec, str(path))
    return encoder.eval()


def project_features(
    encoder: torch.nn.Module, source: Path, duration: float, store: Store, workdir: Path
) -> tuple[np.ndarray, int]:
    """Features through the extract route, and the store's bytes."""
    out = workdir / store.name.replace(":", "_")
    videos = pd.DataFrame({"video_id": ["v"], "filename": [source.name], "duration": [duration]})
    decode_dataset(videos, source.parent, out, store.settings, workers=1, progress=False)
    frames = FrameStore(out)
    feats = dict(
        iter_features(
            encoder,
            frames,
            ["v"],
            FeatureSpec(ClipSpec(CLIP_LEN, RATE, CROP), STRIDE),
            batch_size=8,
            device=torch.device("cpu"),
        )
    )["v"]
    size = sum(p.stat().st_size for p in out.iterdir() if p.name != "index.json")
    return feats, size // max(frames.open("v").num_frames, 1)


# ------------------------------------------------------------------------------------- running

STRIDE = 8


def relative(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    n = min(len(a), len(b))
    return np.linalg.norm(a[:n] - b[:n], axis=1) / np.linalg.norm(b[:n], axis=1)


def run_source(encoder, fps, size, seconds, stores, workdir, seed) -> dict:
    source = workdir / "source.mp4"
    render_source(source, fps, size, seconds, seed)
    frames = standardised_frames(source)
    num = (len(frames) + 1) // 2  # every 2nd of the 30 fps frames
    starts = list(range(0, num - CLIP_LEN, STRIDE))  # leaves one frame for the shifted clip
    reference = features(encoder, [official_clip(frames, s) for s in starts])
    shifted = features(encoder, [official_clip(frames, s + 1) for s in starts])
    lossy = reencoded(frames, workdir)
    standard = features(encoder, [official_clip(lossy, s) for s in starts])
    row = {
        "shift": relative(shifted, reference),
        "reencode": relative(standard, reference),
    }
    for store in stores:
        feats, frame_bytes = project_features(encoder, source, seconds, store, workdir)
        row[store.name] = relative(feats, reference)
        row[store.name + ":bytes"] = frame_bytes
    return row


def _cell(values: np.ndarray) -> str:
    return f"{100 * np.median(values):6.2f} {100 * np.max(values):6.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rates", default="24,25,29.97,30,50,60")
    parser.add_argument("--sizes", default="320x240,1280x720", help="WxH, comma-separated")
    parser.add_argument("--stores", default="npy,npy-ffmpeg,mp4:18:yuv420p")
    parser.add_argument("--figure", type=Path, help="draw the re-encode's effect to this PNG")
    args = parser.parse_args()
    rates = [Fraction(30000, 1001) if r == "29.97" else Fraction(r) for r in args.rates.split(",")]
    sizes = [tuple(int(v) for v in s.split("x"))[::-1] for s in args.sizes.split(",")]
    stores = [parse_store(s) for s in args.stores.split(",")]
    torch.set_num_threads(2)
    results = {}
    print("relative L2 distance of features to the official preprocessing's, %")
    print(_header(stores), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        encoder = release_layout_encoder(Path(tmp))
        for size in sizes:
            for k, fps in enumerate(rates):
                with tempfile.TemporaryDirectory(dir=tmp) as work:
                    row = run_source(encoder, fps, size, args.seconds, stores, Path(work), k)
                results[(size, fps)] = row
                print(_row_text(size, fps, row, stores), flush=True)
    print(_summary(results, stores))
    if args.figure:
        _figure(results, args.figure)


def _header(stores: list[Store]) -> str:
    cols = ["1-frame shift", "re-encode"] + [s.name for s in stores]
    units = "    median    max" * len(cols)
    return "source" + " " * 13 + "".join(f"{c:>16}" for c in cols) + "\n" + " " * 19 + units


def _row_text(size, fps, row, stores) -> str:
    name = f"{size[1]}x{size[0]} {float(fps):5.2f} fps"
    cells = [_cell(row["shift"]), _cell(row["reencode"])] + [_cell(row[s.name]) for s in stores]
    return f"{name:<19}" + "".join(f"  {c}" for c in cells)


def _summary(results: dict, stores: list[Store]) -> str:
    lines = ["", "all sources (relative L2 to the official preprocessing, %; stored bytes/frame):"]
    for key in ["shift", "reencode"] + [s.name for s in stores]:
        values = np.concatenate([r[key] for r in results.values()])
        label = {"shift": "1-frame shift", "reencode": "official re-encode"}.get(key, key)
        extra = ""
        if key not in ("shift", "reencode"):
            per_frame = np.mean([r[key + ":bytes"] for r in results.values()])
            extra = f"  {per_frame / 1e3:8.1f} kB/frame"
        lines.append(
            f"  {label:<20} median {100 * np.median(values):6.2f}  max "
            f"{100 * np.max(values):6.2f}{extra}"
        )
    return "\n".join(lines)


def _figure(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(results)
    labels = [f"{s[1]}x{s[0]}\n{float(f):.2f}" for s, f in keys]
    fig, ax = plt.subplots(figsize=(9, 3.6))
    x = np.arange(len(keys))
    for offset, key, name in (
        (-0.2, "reencode", "official re-encode (CRF 23)"),
        (0.2, "shift", "clip one frame (1/15 s) later"),
    ):
        med = [100 * np.median(results[k][key]) for k in keys]
        top = [100 * np.max(results[k][key]) for k in keys]
        ax.bar(x + offset, med, 0.4, label=f"{name}: median")
        ax.scatter(x + offset, top, marker="_", color="k", s=80)
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_ylabel("relative L2 of features (%)")
    ax.set_title("What the official standardisation's lossy re-encode does to features (- : max)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    print(f"figure: {path}")


if __name__ == "__main__":
    main()
