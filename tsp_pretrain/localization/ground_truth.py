"""Ground truth for the evaluator, from any of the sources this project reads, and blocked videos.

* this project's canonical annotations folder (``data/annotations/<ds>``: ``videos.csv`` and
  ``segments.csv``; the foreground segments after the annotations stage's checks);
* an ActivityNet-style JSON (ActivityNet v1.3; ActionFormer's THUMOS14 JSON);
* a THUMOS14 folder of ``<Class>_val.txt`` / ``<Class>_test.txt`` (Ambiguous segments left out).

The result is one subset's videos (every video of it, also those without segments, whose
predictions can only be false positives) and its segments: video_id, t_start, t_end, label.
A blocked list (OpenTAD's ``blocked.json``: a JSON list of video ids) removes videos from both
ground truth and predictions.

What cannot be a segment is an error naming the entry (a missing or NaN time, an end before the
start): the official evaluation crashes on a missing time and silently never matches the others.
What it scores as given (a start before 0 s, a zero-length segment) is kept and noted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tsp_pretrain.annotations import parse_activitynet, parse_thumos14
from tsp_pretrain.annotations.schema import normalise_subset
from tsp_pretrain.evaluation.errors import EvaluationError
from tsp_pretrain.regions import FOREGROUND
from tsp_pretrain.tables import read_annotations

GT_COLUMNS = ["video_id", "t_start", "t_end", "label"]


@dataclass(frozen=True)
class GroundTruth:
    """The videos of one subset (sorted ids), their action segments, and notes on segments
    that are scored as the official evaluation scores them but are probably not meant."""

    videos: list[str]
    segments: pd.DataFrame
    source: str
    notes: list[str] = field(default_factory=list)

    def without(self, blocked: Iterable[str]) -> GroundTruth:
        """The same without the ``blocked`` videos."""
        blocked = set(blocked)
        return GroundTruth(
            [v for v in self.videos if v not in blocked],
            self.segments[~self.segments["video_id"].isin(blocked)].reset_index(drop=True),
            self.source,
            self.notes,
        )


def _from_canonical(
    videos: pd.DataFrame, segments: pd.DataFrame, source: str
) -> tuple[pd.DataFrame, ...]:
    fg = segments[segments["region"] == FOREGROUND]
    where = [f"{source}/segments.csv:row {i + 2}" for i in fg.index]
    return videos[["video_id", "subset"]], fg[GT_COLUMNS].assign(source=where)


def _from_raw(raw) -> tuple[pd.DataFrame, pd.DataFrame]:
    videos = raw.videos[raw.videos["labelled"]][["video_id", "subset"]]
    segments = raw.segments[~raw.segments["excluded"]]
    return videos, segments[[*GT_COLUMNS, "source"]]


def read_ground_truth(path: str | Path, subset: str) -> GroundTruth:
    """The ground truth of ``subset`` (``validation``, ``Test``, ... any usual spelling) in
    ``path``, whose kind is recognised (see the module docstring)."""
    path = Path(path)
    if path.is_dir() and (path / "segments.csv").is_file():
        tables = read_annotations(path)
        return ground_truth_from_tables(tables.videos, tables.segments, subset, str(path))
    if path.is_dir():
        videos, segments = _from_raw(parse_thumos14(path))
    elif path.is_file() and path.suffix.lower() == ".json":
        videos, segments = _from_raw(parse_activitynet(path))
    elif not path.exists():
        raise FileNotFoundError(f"{path}: ground truth not found")
    else:
        raise EvaluationError(
            f"{path}: not a ground truth this evaluator reads; pass an annotations folder "
            "(segments.csv, videos.csv), an ActivityNet-style JSON or a THUMOS14 txt folder"
        )
    return _subset(videos, segments, subset, str(path))


def ground_truth_from_tables(
    videos: pd.DataFrame, segments: pd.DataFrame, subset: str, source: str
) -> GroundTruth:
    """The ground truth of ``subset`` from canonical ``videos.csv`` / ``segments.csv`` tables
    (read from disk or from a git revision)."""
    return _subset(*_from_canonical(videos, segments, source), subset, source)


def _subset(videos: pd.DataFrame, segments: pd.DataFrame, subset: str, source: str) -> GroundTruth:
    wanted = normalise_subset(subset, "--subset")
    chosen = videos[videos["subset"] == wanted]
    if chosen.empty:
        present = sorted(videos["subset"].unique())
        raise EvaluationError(
            f"{source}: no annotated video in subset {wanted!r} (subsets with annotations: "
            f"{present}); pass --subset"
        )
    ids = sorted(chosen["video_id"].astype(str).unique())
    segments = segments.astype({"video_id": str, "label": str})
    segments = segments[segments["video_id"].isin(ids)]
    if segments.empty:
        raise EvaluationError(f"{source}: subset {wanted!r} has no action segment to detect")
    notes = _check_segments(segments)
    return GroundTruth(ids, segments[GT_COLUMNS].reset_index(drop=True), source, notes)


def _check_segments(segments: pd.DataFrame) -> list[str]:
    """Reject ground truth that cannot be a segment (naming its entry and the fix); notes for
    what the official evaluation scores as given (a negative start, a zero length)."""
    start = segments["t_start"].to_numpy(float)
    end = segments["t_end"].to_numpy(float)
    rejected = (
        (
            ~(np.isfinite(start) & np.isfinite(end)),
            "a missing (null), NaN or infinite time",
            "give both times in seconds, or remove the annotation",
        ),
        (
            end < start,
            "a segment that ends before it starts",
            "write the segment as [start, end] with start <= end",
        ),
    )
    for bad, what, fix in rejected:
        if bad.any():
            row = segments[bad].iloc[0]
            more = f" ({int(bad.sum())} such segments)" if bad.sum() > 1 else ""
            raise EvaluationError(
                f"{row['source']}: ground truth with {what} (video {row['video_id']}, "
                f"[{row['t_start']}, {row['t_end']}], {row['label']!r}){more}; {fix}"
            )
    notes = []
    for bad, what in (
        (start < 0, "start before 0 s; scored as given, as the official evaluation does"),
        (
            end == start,
            "zero length; kept as the official evaluation keeps them, no prediction can match",
        ),
    ):
        if bad.any():
            row = segments[bad].iloc[0]
            notes.append(
                f"{int(bad.sum())} ground-truth segment(s) with {what} (e.g. {row['source']}: "
                f"[{row['t_start']}, {row['t_end']}])"
            )
    return notes


def read_blocked(path: str | Path) -> list[str]:
    """Video ids of a blocked-videos file: a JSON list (OpenTAD's ``blocked.json``) or one id
    per line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: blocked-videos file not found")
    text = path.read_text()
    if path.suffix.lower() == ".json":
        try:
            ids = json.loads(text)
        except json.JSONDecodeError as err:
            raise EvaluationError(f"{path}: not valid JSON ({err})") from None
        if not isinstance(ids, list) or not all(isinstance(v, str) for v in ids):
            raise EvaluationError(f"{path}: expected a JSON list of video ids")
        return ids
    return [line.strip() for line in text.splitlines() if line.strip()]
