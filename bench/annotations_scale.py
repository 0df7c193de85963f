"""How long the annotations stage takes on an ActivityNet-sized input, without any video file.

Generates a synthetic ActivityNet v1.3 JSON (default 20,000 videos, 40,000 segments, 200 classes,
with a sprinkling of the faults the report exists for) in a temporary folder, then times each
phase of :func:`tsp_pretrain.annotations.build_annotations` with a fake probe and locator.
Real probing costs PyAV's open time per file on top (I/O bound; see ``--workers``).

    python bench/annotations_scale.py [--videos 20000] [--segments 40000] [--workers 4]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from tsp_pretrain.annotations import (
    build_annotations,
    canonicalise,
    get_parser,
    probe_videos,
    write_annotations,
)
from tsp_pretrain.video.probe import VideoInfo

CLIP_SECONDS = 16 / 15


def make_activitynet(n_videos: int, n_segments: int, seed: int) -> tuple[dict, dict[str, float]]:
    """A synthetic ActivityNet JSON and each video's "file" duration (at times slightly off)."""
    rng = np.random.default_rng(seed)
    classes = [f"Class {i:03d}" for i in range(200)]
    taxonomy = [{"nodeId": 0, "nodeName": "Root", "parentId": None, "parentName": None}]
    taxonomy += [
        {"nodeId": i + 1, "nodeName": c, "parentId": 0, "parentName": "Root"}
        for i, c in enumerate(classes)
    ]
    ids = [f"vid{i:07d}" for i in range(n_videos)]
    subsets = rng.choice(["training", "validation", "testing"], size=n_videos, p=[0.5, 0.25, 0.25])
    durations = rng.uniform(20, 240, size=n_videos).round(2)
    labelled = np.flatnonzero(subsets != "testing")
    owner = rng.choice(labelled, size=n_segments)
    # a few starts below 0 and ends past the duration, so clipping and reporting are exercised
    starts = (rng.uniform(0, 0.9, size=n_segments) * durations[owner] - 0.5).round(2)
    ends = (starts + rng.exponential(25, size=n_segments) + 0.3).round(2)
    labels = rng.choice(classes, size=n_segments)

    database = {
        vid: {
            "subset": str(s),
            "duration": float(d),
            "resolution": "1280x720",
            "url": f"https://www.youtube.com/watch?v={vid}",
            "annotations": [],
        }
        for vid, s, d in zip(ids, subsets, durations, strict=True)
    }
    for k, s, e, label in zip(owner, starts, ends, labels, strict=True):
        database[ids[k]]["annotations"].append({"segment": [float(s), float(e)], "label": label})
    file_durations = durations + np.where(rng.random(n_videos) < 0.02, 5.0, 0.1)
    return (
        {"version": "VERSION 1.3", "taxonomy": taxonomy, "database": database},
        dict(zip(ids, file_durations.tolist(), strict=True)),
    )


def main() -> None:
    """Generate, then time each phase once, then the whole entry point once."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=20_000)
    parser.add_argument("--segments", type=int, default=40_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    timings: dict[str, float] = {}
    tick = time.perf_counter()
    data, file_durations = make_activitynet(args.videos, args.segments, args.seed)
    timings["generate (not part of the stage)"] = time.perf_counter() - tick

    def probe(path: Path) -> VideoInfo:
        duration = file_durations[path.stem.removeprefix("v_")]
        return VideoInfo(duration, 30.0, round(duration * 30), 320, 240)

    def locate(videos_dir: Path, video_id: str, filename: str | None) -> Path:
        return videos_dir / f"v_{video_id}.mp4"

    settings = dict(
        clip_seconds=CLIP_SECONDS, min_background=CLIP_SECONDS * 5, duration_tolerance=1.0
    )
    with tempfile.TemporaryDirectory() as tmp:
        json_path, videos_dir = Path(tmp) / "activity_net.json", Path(tmp) / "videos"
        tick = time.perf_counter()
        json_path.write_text(json.dumps(data))
        timings["write JSON (not part of the stage)"] = time.perf_counter() - tick

        tick = time.perf_counter()
        raw = get_parser("activitynet")(json_path)
        timings["parse"] = time.perf_counter() - tick
        tick = time.perf_counter()
        probed = probe_videos(
            raw.videos, videos_dir, probe=probe, locate=locate, workers=args.workers, progress=False
        )
        timings["probe (fake) + locate (fake)"] = time.perf_counter() - tick
        tick = time.perf_counter()
        result = canonicalise(raw, probed, **settings)
        timings["canonicalise (checks, clipping, background)"] = time.perf_counter() - tick
        tick = time.perf_counter()
        write_annotations(result, Path(tmp) / "out")
        timings["write tables + report"] = time.perf_counter() - tick

        tick = time.perf_counter()
        build_annotations(
            "activitynet",
            json_path,
            videos_dir,
            probe=probe,
            locate=locate,
            workers=args.workers,
            progress=False,
            **settings,
        )
        timings["build_annotations, end to end"] = time.perf_counter() - tick

    print(f"{args.videos} videos, {args.segments} segments, workers={args.workers}")
    for phase, seconds in timings.items():
        print(f"  {phase:<48} {seconds:7.2f} s")
    totals = result.totals()
    print(
        f"  -> {totals['videos']} videos, {totals['foreground_segments']} foreground and "
        f"{totals['background_segments']} background segments"
    )
    print("  report:", {k: v for k, v in result.report.counts().items() if v})


if __name__ == "__main__":
    main()
