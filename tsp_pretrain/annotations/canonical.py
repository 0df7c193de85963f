"""From parsed annotations to the canonical tables: probing, checking, clipping, background.

The rules, in order (each drop or change is one report row):

1. Videos: an id listed with conflicting subsets or file names is skipped (:func:`collapse_videos`,
   used by the row-based parsers); a video whose file is missing or cannot be probed is skipped
   with all its segments; a file whose duration differs from the annotation's by more than
   ``duration_tolerance`` is reported and the file's duration is used.
2. Segments (actions and excluded time alike): NaN/infinite times, zero-length segments
   (``end == start``), inverted ones (``end < start``) and segments entirely outside
   ``[0, duration]`` are dropped.
3. Actions: labels outside the label map and exact duplicates are dropped; the rest are clipped to
   ``[0, duration]``, and those shorter than ``clip_seconds`` are dropped. Overlaps are kept.
4. Background (labelled videos only): the complement in ``[0, duration]`` of the union of every
   segment that survived step 2 -- including actions dropped in step 3 (their time is still an
   action, just not a usable one) and excluded time (THUMOS14 Ambiguous). Gaps shorter than
   ``max(clip_seconds, min_background)`` are dropped. A labelled video without actions is one
   background segment.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from tsp_pretrain.atomic import write_csv, write_json
from tsp_pretrain.regions import BACKGROUND, BACKGROUND_LABEL_ID, FOREGROUND
from tsp_pretrain.video.manifest import Located
from tsp_pretrain.video.probe import VideoInfo, VideoProbeError, probe_video

from .schema import (
    RAW_VIDEO_COLUMNS,
    SEGMENT_COLUMNS,
    VIDEO_COLUMNS,
    CanonicalAnnotations,
    RawAnnotations,
    Report,
)
from .summary import describe_totals

log = logging.getLogger(__name__)

Probe = Callable[[Path], VideoInfo]
# (video_id, filename named by the annotation or None) -> where the file is (or why not);
# the default is tsp_pretrain.video.manifest.VideoIndex.locate.
Locate = Callable[[str, str | None], Located]
_CHUNK = 16
PROBED_COLUMNS = ["video_id", "filename", "duration", "fps", "num_frames", "problem", "message"]


def collapse_videos(rows: pd.DataFrame, report: Report) -> tuple[pd.DataFrame, set[str]]:
    """One video row per id from formats that repeat a video's metadata on every segment row.

    ``rows`` has :data:`~.schema.RAW_VIDEO_COLUMNS`. Ids whose rows disagree on subset or
    filename are skipped (which split or file is meant cannot be known; guessing could leak a test
    video into training); a disagreement on the annotated duration only is reported, since the
    file's duration is used anyway. Returns the videos (first row per id) and the skipped ids.
    """
    groups = rows.groupby("video_id", sort=False)
    distinct = groups.agg(
        subsets=("subset", "nunique"),
        files=("filename", "nunique"),
        durations=("annotated_duration", "nunique"),
    )
    conflicting = distinct[
        (distinct["subsets"] > 1) | (distinct["files"] > 1) | (distinct["durations"] > 1)
    ]
    skipped: set[str] = set()
    for video_id, sub in rows[rows["video_id"].isin(conflicting.index)].groupby("video_id"):
        fatal = conflicting.at[video_id, "subsets"] > 1 or conflicting.at[video_id, "files"] > 1
        values = "; ".join(
            f"{col} {sorted(sub[col].dropna().unique().tolist())}"
            for col in ("subset", "filename", "annotated_duration")
            if sub[col].nunique() > 1
        )
        where = ", ".join(sub["source"].head(4)) + (" ..." if len(sub) > 4 else "")
        if fatal:
            skipped.add(video_id)
            detail = f"conflicting {values} (rows {where}); give each id one subset and file"
        else:
            detail = f"conflicting {values} (rows {where}); the file's duration is used"
        report.add(
            video_id=video_id,
            issue="duplicate_video",
            action="skipped" if fatal else "kept",
            detail=detail,
            source=sub["source"].iloc[0],
        )
    videos = groups.first().reset_index()
    videos = videos[~videos["video_id"].isin(skipped)]
    return videos[RAW_VIDEO_COLUMNS].reset_index(drop=True), skipped


def probe_videos(
    videos: pd.DataFrame,
    videos_dir: str | Path,
    *,
    locate: Locate,
    probe: Probe = probe_video,
    workers: int = 4,
    progress: bool = True,
) -> pd.DataFrame:
    """Locate and probe each video's file, ``workers`` at a time (PyAV releases the GIL).

    Returns :data:`PROBED_COLUMNS`, one row per row of ``videos`` in the same order: ``filename``
    relative to ``videos_dir`` (it may hold subfolders), ``problem`` "" / "missing_video" /
    "unreadable_video" and the message. ``locate`` finds the file (normally through the videos
    manifest, so a dangling link is unreadable, not missing). Only :class:`VideoProbeError` counts
    as unreadable; anything else is a bug and propagates.
    """
    videos_dir = Path(videos_dir)

    def one(video_id: str, filename: str) -> tuple:
        found = locate(video_id, filename or None)
        if found.path is None:
            return (video_id, filename, np.nan, np.nan, -1, found.problem, found.message)
        try:
            info = probe(videos_dir / found.path)
        except VideoProbeError as err:
            return (video_id, found.path, np.nan, np.nan, -1, "unreadable_video", str(err))
        return (video_id, found.path, info.duration, info.fps, info.num_frames, "", "")

    def chunk(items: list[tuple[str, str]]) -> list[tuple]:
        return [one(video_id, filename) for video_id, filename in items]

    # Small chunks: a thread task per video costs more than a fake probe, and tiny for PyAV.
    items = list(zip(videos["video_id"], videos["filename"], strict=True))
    chunks = [items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK)]
    results: list[tuple] = []
    with (
        ThreadPoolExecutor(max_workers=max(1, workers)) as pool,
        tqdm(total=len(items), desc="probing videos", unit="video", disable=not progress) as bar,
    ):
        for done in pool.map(chunk, chunks):
            results.extend(done)
            bar.update(len(done))
    probed = pd.DataFrame(results, columns=PROBED_COLUMNS)
    return probed.astype(
        {
            "video_id": str,
            "filename": str,
            "duration": "float64",
            "fps": "float64",
            "num_frames": "int64",
        }
    )


@dataclass(frozen=True)
class AnnotationRules:
    """The numbers the rules above use, checked once when built (``ValueError``).

    ``clip_seconds`` is one clip's duration (``Params.clip.seconds``): shorter actions cannot hold
    a clip. ``min_background`` and ``duration_tolerance`` are the ``annotations`` params.
    """

    clip_seconds: float
    min_background: float
    duration_tolerance: float

    def __post_init__(self) -> None:
        if not self.clip_seconds > 0:
            raise ValueError(f"clip_seconds must be > 0, got {self.clip_seconds}")
        if not (self.min_background >= 0 and self.duration_tolerance >= 0):
            raise ValueError(
                "min_background and duration_tolerance must be >= 0, got "
                f"{self.min_background} and {self.duration_tolerance}"
            )

    @property
    def shortest_background(self) -> float:
        """Background gaps shorter than this are dropped: a gap must hold a clip, too."""
        return max(self.clip_seconds, self.min_background)


def canonicalise(
    raw: RawAnnotations, probed: pd.DataFrame, rules: AnnotationRules
) -> CanonicalAnnotations:
    """Apply the module's rules to parsed annotations and probe results (see module docstring)."""
    report = raw.report
    videos = raw.videos.merge(
        probed, on="video_id", how="left", suffixes=("_raw", ""), validate="one_to_one"
    )
    if videos["problem"].isna().any():
        raise ValueError(
            "probe results do not cover every parsed video; run probe_videos on raw.videos"
        )
    _report_skipped_videos(videos, raw.segments, report)
    videos = videos[videos["problem"] == ""].reset_index(drop=True)
    _report_duration_mismatch(videos, rules.duration_tolerance, report)

    duration = videos.set_index("video_id")["duration"]
    segments = raw.segments[raw.segments["video_id"].isin(duration.index)].copy()
    segments["duration"] = segments["video_id"].map(duration).astype("float64")
    occupied = _valid_times(segments, report)
    actions = _usable_actions(
        occupied[~occupied["excluded"]], raw.labels, rules.clip_seconds, report
    )

    labelled = videos[videos["labelled"]].set_index("video_id")["duration"]
    background = background_segments(occupied[["video_id", "t_start", "t_end"]], labelled)
    background = _drop_short_background(
        background, rules.shortest_background, videos.set_index("video_id")["source"], report
    )

    label_ids = {name: i for i, name in enumerate(raw.labels)}
    out_segments = pd.concat(
        [
            actions.assign(label_id=actions["label"].map(label_ids), region=FOREGROUND),
            background.assign(label="", label_id=BACKGROUND_LABEL_ID, region=BACKGROUND),
        ],
        ignore_index=True,
    )[SEGMENT_COLUMNS]
    out_segments = (
        out_segments.astype({"label_id": "int64"})
        .sort_values(["video_id", "t_start", "t_end", "label_id"], kind="stable")
        .reset_index(drop=True)
    )
    out_videos = videos[VIDEO_COLUMNS].sort_values("video_id", kind="stable")
    result = CanonicalAnnotations(
        out_videos.reset_index(drop=True), out_segments, list(raw.labels), report
    )
    log.info("annotations: %s", describe_totals(result.totals(), report.counts()))
    return result


def _report_skipped_videos(videos: pd.DataFrame, segments: pd.DataFrame, report: Report) -> None:
    bad = videos[videos["problem"] != ""]
    if bad.empty:
        return
    actions = segments.loc[~segments["excluded"], "video_id"].value_counts()
    n_segments = bad["video_id"].map(actions).fillna(0).astype(int)
    for problem in ("missing_video", "unreadable_video"):
        rows = bad[bad["problem"] == problem]
        details = [
            f"{message} (or remove it from the annotations); {n} action segment(s) dropped with it"
            for message, n in zip(rows["message"], n_segments[rows.index], strict=True)
        ]
        report.extend(rows, issue=problem, action="skipped", detail=details)


def _report_duration_mismatch(videos: pd.DataFrame, tolerance: float, report: Report) -> None:
    diff = (videos["annotated_duration"] - videos["duration"]).abs()
    rows = videos[diff > tolerance]
    details = [
        f"annotation says {a:.3f} s, file says {f:.3f} s (tolerance {tolerance} s); "
        "the file's duration is used"
        for a, f in zip(rows["annotated_duration"], rows["duration"], strict=True)
    ]
    report.extend(rows, issue="duration_mismatch", action="kept", detail=details)


def _valid_times(segments: pd.DataFrame, report: Report) -> pd.DataFrame:
    """Drop segments whose times cannot be used at all; clip the rest to [0, duration].

    The returned frame keeps the original times in ``raw_start``/``raw_end`` for reporting.
    """
    start, end, dur = segments["t_start"], segments["t_end"], segments["duration"]
    invalid = ~(np.isfinite(start) & np.isfinite(end))
    report.extend(
        segments[invalid],
        issue="invalid_time",
        action="dropped",
        detail="start or end is missing or not finite; fix or remove the row",
    )
    zero = ~invalid & (end == start)
    report.extend(
        segments[zero],
        issue="zero_length",
        action="dropped",
        detail="start == end: a point in time, not a segment; give its real end or remove it",
    )
    inverted = ~invalid & (end < start)
    report.extend(
        segments[inverted],
        issue="inverted",
        action="dropped",
        detail="end < start; swap or fix the times",
    )
    outside = ~invalid & ~zero & ~inverted & ((end <= 0) | (start >= dur))
    rows = segments[outside]
    report.extend(
        rows,
        issue="outside_video",
        action="dropped",
        detail=[f"segment lies outside the file's [0, {d:.3f}] s" for d in rows["duration"]],
    )
    kept = segments[~(invalid | zero | inverted | outside)]
    return kept.assign(
        raw_start=kept["t_start"],
        raw_end=kept["t_end"],
        t_start=kept["t_start"].clip(lower=0.0),
        t_end=np.minimum(kept["t_end"], kept["duration"]),
    )


def _usable_actions(
    actions: pd.DataFrame, labels: list[str], clip_seconds: float, report: Report
) -> pd.DataFrame:
    """Drop unknown labels and duplicates, report clipping, drop actions shorter than a clip."""

    def reported(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(t_start=frame["raw_start"], t_end=frame["raw_end"])

    unknown = ~actions["label"].isin(set(labels))
    report.extend(
        reported(actions[unknown]),
        issue="unknown_label",
        action="dropped",
        detail="label not in the label map; fix its spelling or add it to the map",
    )
    actions = actions[~unknown]
    duplicate = actions.duplicated(["video_id", "raw_start", "raw_end", "label"])
    report.extend(
        reported(actions[duplicate]),
        issue="duplicate_segment",
        action="dropped",
        detail="the same segment is listed earlier; remove the copy",
    )
    actions = actions[~duplicate]
    clipped = (actions["raw_start"] < 0) | (actions["raw_end"] > actions["duration"])
    rows = actions[clipped]
    report.extend(
        reported(rows),
        issue="clipped",
        action="clipped",
        detail=[
            f"clipped to [{s:.3f}, {e:.3f}] (file duration {d:.3f} s)"
            for s, e, d in zip(rows["t_start"], rows["t_end"], rows["duration"], strict=True)
        ],
    )
    length = actions["t_end"] - actions["t_start"]
    short = length < clip_seconds
    rows = actions[short]
    report.extend(
        reported(rows),
        issue="too_short",
        action="dropped",
        detail=[f"{n:.3f} s < one clip ({clip_seconds:.3f} s)" for n in length[short]],
    )
    return actions[~short]


def background_segments(intervals: pd.DataFrame, durations: pd.Series) -> pd.DataFrame:
    """The complement of the union of ``intervals`` within ``[0, duration]`` of each video.

    ``intervals`` has video_id, t_start, t_end (already inside [0, duration], any order, may
    overlap); ``durations`` is indexed by video_id and decides which videos get a background (a
    video without intervals gets ``[0, duration]``). Intervals of other videos are ignored.
    Returns video_id, t_start, t_end, sorted; touching intervals leave no gap.
    """
    iv = intervals[intervals["video_id"].isin(durations.index)]
    iv = iv.sort_values(["video_id", "t_start"], kind="stable").reset_index(drop=True)
    vid = iv["video_id"]
    covered_to = iv.groupby(vid, sort=False)["t_end"].cummax()
    previous = covered_to.groupby(vid, sort=False).shift(1).fillna(0.0)
    gap = iv["t_start"] > previous
    inner = pd.DataFrame(
        {"video_id": vid[gap], "t_start": previous[gap], "t_end": iv["t_start"][gap]}
    )
    last = covered_to.groupby(vid, sort=False).last().reindex(durations.index).fillna(0.0)
    tail_mask = last < durations
    tail = pd.DataFrame(
        {
            "video_id": durations.index[tail_mask],
            "t_start": last[tail_mask].to_numpy(),
            "t_end": durations[tail_mask].to_numpy(),
        }
    )
    out = pd.concat([inner, tail], ignore_index=True).astype(
        {"video_id": "object", "t_start": "float64", "t_end": "float64"}
    )
    return out.sort_values(["video_id", "t_start"], kind="stable").reset_index(drop=True)


def _drop_short_background(
    background: pd.DataFrame, min_length: float, sources: pd.Series, report: Report
) -> pd.DataFrame:
    length = background["t_end"] - background["t_start"]
    short = length < min_length
    rows = background[short].assign(source=background.loc[short, "video_id"].map(sources))
    report.extend(
        rows,
        issue="short_background",
        action="dropped",
        detail=[
            f"background gap of {n:.3f} s < {min_length:.3f} s "
            "(max of clip_seconds and min_background)"
            for n in length[short]
        ],
    )
    return background[~short]


def write_annotations(result: CanonicalAnnotations, out_dir: str | Path) -> None:
    """Write videos.csv, segments.csv, labels.json, report.csv and report.json into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(out_dir / "videos.csv", result.videos)
    write_csv(out_dir / "segments.csv", result.segments)
    write_json(out_dir / "labels.json", result.labels, indent=1)
    result.report.write(out_dir, totals=result.totals())
