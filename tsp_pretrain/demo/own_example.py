"""A small stand-in for a researcher's own videos, laid out as such a folder usually is.

``python -m tsp_pretrain.demo.own_example data/own`` writes what ``presets/own-videos.yaml``
expects (``data/own/videos/`` and ``data/own/annotations.json``), so the own-videos route can be
tried end to end, and its output read, before pointing it at real data. Unlike the demo's tidy
``v_<id>.mp4`` files, the videos come the way own recordings do: in subfolders (one with a space
in its name), as ``.mp4`` and ``.mkv``, at 25 and 30 fps, named by their plain ids; the
annotations are an ActivityNet-style JSON with a ``training`` and a ``validation`` subset.
The motions and classes are the demo's (:mod:`tsp_pretrain.demo.motions`); the output is a pure
function of ``seed``.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from tsp_pretrain.atomic import write_json
from tsp_pretrain.config import DemoParams

from .dataset import render_video
from .motions import CLASSES
from .plan import VideoPlan, plan_untrimmed
from .writer import activitynet_json

#: Two recording sessions: (subfolder, container, frame rate, seed offset).
SESSIONS = (("session 1/cam-a", ".mp4", 30, 0), ("session 2", ".mkv", 25, 1))
ANNOTATIONS = "annotations.json"
VIDEOS = "videos"


def _session_params(seed: int, fps: int, videos: tuple[int, int]) -> DemoParams:
    return DemoParams(
        seed=seed,
        num_train_videos=videos[0],
        num_valid_videos=videos[1],
        num_empty_videos=0,
        min_duration=16.0,
        max_duration=30.0,
        fps=fps,
        size=64,
    )


def write_own_example(
    out_dir: str | Path, seed: int = 0, videos: tuple[int, int] = (8, 6)
) -> dict[str, int]:
    """Write ``videos`` (training, validation) per session under ``out_dir``; returns counts.

    Refuses a non-empty ``out_dir``, as the demo does, so that it never mixes with real data.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir}: not empty; choose an empty or new folder")
    plans: list[VideoPlan] = []
    for folder, suffix, fps, offset in SESSIONS:
        session = [
            _renamed(p, f"s{offset + 1}_{p.video_id}")
            for p in plan_untrimmed(_session_params(seed * 2 + offset, fps, videos))
        ]
        for plan in session:
            render_video(plan, 64, out_dir / VIDEOS / folder / f"{plan.video_id}{suffix}")
        plans += session
    write_json(out_dir / ANNOTATIONS, activitynet_json(plans, list(CLASSES), 64), indent=None)
    return {subset: sum(p.subset == subset for p in plans) for subset in ("training", "validation")}


def _renamed(plan: VideoPlan, video_id: str) -> VideoPlan:
    return replace(plan, video_id=video_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write (e.g. data/own)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    counts = write_own_example(args.out, args.seed)
    print(
        f"wrote {args.out / VIDEOS}/ ({counts['training']} training and {counts['validation']} "
        f"validation videos in subfolders) and {args.out / ANNOTATIONS}"
    )


if __name__ == "__main__":
    from tsp_pretrain.cli import run_stage

    run_stage(main, name="tsp_pretrain.demo.own_example")
