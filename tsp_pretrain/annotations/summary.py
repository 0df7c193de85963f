"""Counts per subset, printed as a block that stands out, and the checks that fail the stage.

A run that loses most of its videos, or whose label map matches none of the annotated labels,
used to end with exit code 0 and a few INFO lines; a later stage then failed blaming something
else. :func:`check_summary` fails it here, naming the likely cause: too many annotated videos
without a usable file (``annotations.max_missing_fraction``), or a labelled subset left without
any foreground segment.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import pandas as pd

from tsp_pretrain.regions import FOREGROUND

from .schema import AnnotationError, Report

SUMMARY_COLUMNS = ["annotated", "found", "missing", "unreadable", "foreground_segments"]
# Issues that remove actions; named when a subset ends up without foreground.
_DROPPING = ("unknown_label", "too_short", "invalid_time", "zero_length", "inverted")


def lost_videos(raw_videos: pd.DataFrame, probed: pd.DataFrame) -> pd.DataFrame:
    """The annotated videos without a usable file: video_id, filename (as annotated), subset."""
    bad = probed.loc[probed["problem"] != "", ["video_id"]]
    return bad.merge(raw_videos[["video_id", "filename", "subset"]], on="video_id", how="left")


def subset_summary(
    raw_videos: pd.DataFrame, probed: pd.DataFrame, segments: pd.DataFrame
) -> pd.DataFrame:
    """Per subset: videos annotated / found / missing / unreadable, foreground segments, labelled.

    ``raw_videos`` is the parser's video table, ``probed`` the result of ``probe_videos`` for it
    and ``segments`` the canonical segments.
    """
    videos = raw_videos[["video_id", "subset", "labelled"]].merge(
        probed[["video_id", "problem"]], on="video_id", how="left", validate="one_to_one"
    )
    fg = segments[segments["region"] == FOREGROUND]
    fg_subset = fg["video_id"].map(videos.set_index("video_id")["subset"])
    rows = {}
    for subset, group in videos.groupby("subset", sort=True):
        rows[subset] = {
            "annotated": len(group),
            "found": int((group["problem"] == "").sum()),
            "missing": int((group["problem"] == "missing_video").sum()),
            "unreadable": int((group["problem"] == "unreadable_video").sum()),
            "foreground_segments": int((fg_subset == subset).sum()),
            "labelled": bool(group["labelled"].any()),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def format_summary(summary: pd.DataFrame, title: str) -> str:
    """The counts as a framed text block (one line per subset)."""
    header = f"{'subset':<12}" + "".join(
        f"{c.replace('_segments', ''):>12}" for c in SUMMARY_COLUMNS
    )
    lines = [header]
    for subset, row in summary.iterrows():
        lines.append(f"{subset:<12}" + "".join(f"{int(row[c]):>12}" for c in SUMMARY_COLUMNS))
    rule = "=" * max(len(line) for line in [*lines, title])
    return "\n".join([rule, title, rule, *lines, rule])


def describe_totals(totals: dict, counts: dict[str, int]) -> str:
    """One sentence for the log: what the tables hold and how many report rows per issue.

    ``totals`` is :meth:`~.schema.CanonicalAnnotations.totals`, ``counts`` the report's rows per
    issue (:meth:`~.schema.Report.counts`); the issue names are the ``issue`` column of
    report.csv, so a reader can filter it for them.
    """
    per_subset = ", ".join(f"{k} {v}" for k, v in totals["videos_per_subset"].items())
    issues = ", ".join(f"{k} {v}" for k, v in counts.items() if v)
    return (
        f"{_plural(totals['videos'], 'video')} with a usable file"
        + (f" ({per_subset})" if per_subset else "")
        + f", {_plural(totals['foreground_segments'], 'action segment')}, "
        f"{_plural(totals['background_segments'], 'background segment')}, "
        f"{_plural(totals['labels'], 'label')}; "
        + (f"report.csv rows per issue: {issues}" if issues else "nothing to report")
    )


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def sibling_hint(videos_dir: str | Path, missing: pd.DataFrame) -> str:
    """Where the missing files may be: sibling folders of ``videos_dir`` holding some of them.

    ``missing`` has video_id and filename. Only names are compared (no file is read), and only the
    entries directly inside each sibling folder (the official layout: ``train/``, ``valid/``).
    """
    root = Path(videos_dir).resolve()
    stems = set()
    for video_id, filename in zip(missing["video_id"], missing["filename"], strict=True):
        stems.update(
            {PurePosixPath(filename).stem} if filename else {f"v_{video_id}", str(video_id)}
        )
    hits: list[tuple[int, str]] = []
    try:
        siblings = sorted(p for p in root.parent.iterdir() if p.is_dir() and p != root)
    except OSError:
        return ""
    for folder in siblings:
        try:
            names = [entry.name for entry in os.scandir(folder)]
        except OSError:
            continue
        n = sum(1 for name in names if PurePosixPath(name).stem in stems)
        if n:
            hits.append((n, str(folder)))
    if not hits:
        return ""
    found = ", ".join(f"{folder} ({n})" for n, folder in sorted(hits, reverse=True))
    return (
        f"; they may be in a sibling folder: {found}. Point the videos param at the common "
        f"parent {root.parent} (subfolders are searched)"
    )


def check_summary(
    summary: pd.DataFrame,
    lost: pd.DataFrame,
    report: Report,
    *,
    max_missing_fraction: float,
    videos_dir: str | Path,
    param: str = "annotations.max_missing_fraction",
) -> None:
    """Raise :class:`AnnotationError` naming every subset that cannot be used, and why.

    A subset fails when more than ``max_missing_fraction`` of its annotated videos have no usable
    file (missing or unreadable), or when it is labelled but has no foreground segment left.
    ``lost`` lists the videos without a usable file (video_id, filename, subset).
    """
    problems = []
    counts = report.counts()
    for subset, row in summary.iterrows():
        n_lost = int(row["missing"] + row["unreadable"])
        if row["annotated"] and n_lost / row["annotated"] > max_missing_fraction:
            missing = lost[lost["subset"] == subset]
            problems.append(
                f"{row['found']} of {row['annotated']} {subset} videos found under {videos_dir} "
                f"({row['missing']} missing, {row['unreadable']} unreadable; more than "
                f"{param}={max_missing_fraction:g} of them){sibling_hint(videos_dir, missing)}"
            )
        elif row["labelled"] and row["found"] and not row["foreground_segments"]:
            dropped = {k: counts[k] for k in _DROPPING if counts.get(k)}
            cause = (
                f"{counts['unknown_label']} action(s) have labels missing from the label map "
                "(the labels file, or the ActivityNet JSON's taxonomy when none is given): does "
                "it belong to these annotations?"
                if counts.get("unknown_label")
                else "every action was dropped"
                if dropped
                else "the annotations hold no action for these videos"
            )
            problems.append(
                f"{subset}: no foreground segment in {row['found']} video(s); {cause} "
                f"(dropped actions per issue: {dropped or 'none'}; see report.csv)"
            )
    if problems:
        raise AnnotationError("annotations unusable:\n  - " + "\n  - ".join(problems))
