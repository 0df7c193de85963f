"""Building the whole demo dataset on disk: untrimmed videos, trimmed clips, annotations, summary.

Layout under ``out_dir`` (nothing else is written)::

    untrimmed/videos/v_<id>.mp4
    untrimmed/activity_net.v1-3.min.json
    trimmed/videos/v_<id>.mp4
    trimmed/activity_net.v1-3.min.json
    summary.json

The untrimmed set stands in for ActivityNet (TSP/TAC training, feature extraction, probes); the
trimmed set stands in for Kinetics (action pretraining of the initial encoder).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tsp_pretrain.atomic import write_json
from tsp_pretrain.config import DemoParams
from tsp_pretrain.pools import process_pool

from .motions import CLASSES, trajectory
from .plan import TRAINING, VALIDATION, VideoPlan, plan_trimmed, plan_untrimmed
from .render import render_frames
from .writer import activitynet_json, write_mp4

log = logging.getLogger(__name__)

ANNOTATION_FILE = "activity_net.v1-3.min.json"


@dataclass(frozen=True)
class SubsetSummary:
    """Counts of one subset of one part (untrimmed or trimmed) of the demo."""

    videos: int
    empty_videos: int
    segments: int
    seconds: float
    foreground_seconds: float


@dataclass(frozen=True)
class DemoSummary:
    """What was generated; written to ``summary.json`` and returned to the caller."""

    classes: list[str]
    untrimmed: dict[str, SubsetSummary]
    trimmed: dict[str, SubsetSummary]
    total_seconds: float
    params: dict

    def to_dict(self) -> dict:
        return asdict(self)


def render_video(plan: VideoPlan, size: int, path: Path) -> None:
    """Render and encode one planned video to ``path`` (top level, so worker processes can run
    it)."""
    rng = np.random.default_rng(list(plan.render_seed))
    traj = trajectory(rng, plan.num_frames, plan.fps, plan.segments, plan.idle)
    written = write_mp4(path, render_frames(rng, size, plan.fps, plan.appearance, traj), plan.fps)
    if written != plan.num_frames:
        raise RuntimeError(f"{path}: wrote {written} frames, planned {plan.num_frames}")


def _summarise(plans: Sequence[VideoPlan]) -> dict[str, SubsetSummary]:
    out = {}
    for subset in (TRAINING, VALIDATION):
        sub = [p for p in plans if p.subset == subset]
        out[subset] = SubsetSummary(
            videos=len(sub),
            empty_videos=sum(not p.segments for p in sub),
            segments=sum(len(p.segments) for p in sub),
            seconds=round(sum(p.duration for p in sub), 2),
            foreground_seconds=round(sum(s.end - s.start for p in sub for s in p.segments), 2),
        )
    return out


def make_demo_dataset(
    params: DemoParams, out_dir: Path, progress: bool = True, workers: int = 1
) -> DemoSummary:
    """Generate the demo dataset described by ``params`` under ``out_dir``.

    Output is a pure function of ``params``: the same seed gives byte-identical files whatever
    ``workers`` is, in which order and on how busy a machine (each video has its own random
    stream; x264 runs with the deterministic settings of :mod:`tsp_pretrain.video.encode`).
    ``workers`` > 1 encodes videos in that many processes.

    Raises ``FileExistsError`` when ``out_dir`` is not empty, so that stale videos from an earlier
    configuration can never mix with new ones (``dvc repro`` empties declared outputs itself).
    """
    out_dir = Path(out_dir)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(
            f"{out_dir}: not empty; remove it or choose another output folder "
            "(the demo never writes into an existing dataset)"
        )
    parts = {"untrimmed": plan_untrimmed(params), "trimmed": plan_trimmed(params)}
    jobs: list[tuple[VideoPlan, int, Path]] = []
    for part, plans in parts.items():
        videos = out_dir / part / "videos"
        videos.mkdir(parents=True)
        jobs += [(plan, params.size, videos / plan.filename) for plan in plans]
    _render_all(jobs, workers, progress)
    return _write_annotations_and_summary(params, parts, out_dir)


def _render_all(jobs: list[tuple[VideoPlan, int, Path]], workers: int, progress: bool) -> None:
    """Run :func:`render_video` on every job, here (``workers`` 1) or in worker processes."""
    bar = tqdm(total=len(jobs), desc="demo videos", unit="video", disable=not progress)
    with bar:
        if workers == 1:
            for job in jobs:
                render_video(*job)
                bar.update()
        else:
            with process_pool(workers) as pool:
                for _ in pool.map(render_video, *zip(*jobs, strict=True), chunksize=4):
                    bar.update()


def _write_annotations_and_summary(
    params: DemoParams, parts: dict[str, list[VideoPlan]], out_dir: Path
) -> DemoSummary:
    """Each part's ActivityNet JSON, then ``summary.json``; returns the summary."""
    classes = list(CLASSES)
    for part, plans in parts.items():
        write_json(
            out_dir / part / ANNOTATION_FILE,
            activitynet_json(plans, classes, params.size),
            indent=None,
        )
    untrimmed, trimmed = parts["untrimmed"], parts["trimmed"]
    summary = DemoSummary(
        classes=classes,
        untrimmed=_summarise(untrimmed),
        trimmed=_summarise(trimmed),
        total_seconds=round(sum(p.duration for p in untrimmed + trimmed), 2),
        params=params.model_dump(),
    )
    write_json(out_dir / "summary.json", summary.to_dict(), indent=2)
    log.info(
        "demo: %d untrimmed and %d trimmed videos, %.0f s in all, under %s",
        len(untrimmed),
        len(trimmed),
        summary.total_seconds,
        out_dir,
    )
    return summary
