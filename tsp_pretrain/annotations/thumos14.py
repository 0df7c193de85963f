"""THUMOS14 temporal annotations: one ``<ClassName>_val.txt`` / ``<ClassName>_test.txt`` per class.

The folder is searched recursively, so the parent of the released ``annotation`` folders works.
Rows are ``video_name start end`` (seconds); ``_val`` files give subset ``validation``, ``_test``
files ``testing``. Videos are those named in any file (THUMOS lists no others); durations come
from the probe only.

Ambiguous segments (``Ambiguous_*.txt``, removed from the official evaluation) are handled thus:
they are not a class (not in the label map), not foreground and not background -- their time is
kept out of both -- and each is reported (``ambiguous``). A class segment overlapping an ambiguous
one is still a labelled instance (annotators marked it, and the evaluation counts it), so it is
kept and reported (``overlaps_ambiguous``). CliffDiving instances are also labelled Diving: both
rows are kept, as overlapping actions are.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from .canonical import collapse_videos
from .schema import (
    AnnotationError,
    RawAnnotations,
    Report,
    choose_labels,
    raw_segments_frame,
    raw_videos_frame,
)

AMBIGUOUS = "Ambiguous"
_FILE_NAME = re.compile(r"^(?P<label>.+)_(?P<split>val|test)\.txt$")
_SUBSET = {"val": "validation", "test": "testing"}


def parse_thumos14(
    annotations: str | Path | Mapping[str, str | Path],
    *,
    labels: Sequence[str] | str | Path | None = None,
    subset: str | None = None,
) -> RawAnnotations:
    """Read every ``*_val.txt`` / ``*_test.txt`` under the folder ``annotations``."""
    if subset is not None or isinstance(annotations, Mapping):
        raise AnnotationError(
            "thumos14: pass one folder and no subset (the file names say _val or _test)"
        )
    folder = Path(annotations)
    if not folder.is_dir():
        raise AnnotationError(
            f"{folder}: not a folder; pass the folder holding "
            "<ClassName>_val.txt / <ClassName>_test.txt"
        )
    files = sorted(p for p in folder.rglob("*.txt") if _FILE_NAME.match(p.name))
    if not files:
        raise AnnotationError(
            f"{folder}: no <ClassName>_val.txt or <ClassName>_test.txt files "
            "found; point annotations at the THUMOS14 annotation folder"
        )
    rows = pd.DataFrame(
        [row for path in files for row in _read_file(path)],
        columns=["video_id", "t_start", "t_end", "label", "subset", "source"],
    )
    report = Report()
    videos, skipped = collapse_videos(
        raw_videos_frame(rows.assign(filename="", annotated_duration=math.nan, labelled=True)),
        report,
    )
    rows = rows[~rows["video_id"].isin(skipped)]
    segments = raw_segments_frame(rows.assign(excluded=rows["label"] == AMBIGUOUS))
    _report_ambiguous(segments, report)

    label_map = choose_labels(
        labels, set(segments["label"]) - {AMBIGUOUS}, "class file names", report
    )
    return RawAnnotations(videos=videos, segments=segments, labels=label_map, report=report)


def _read_file(path: Path) -> list[tuple[str, float, float, str, str, str]]:
    match = _FILE_NAME.match(path.name)
    assert match is not None  # files were selected by this pattern
    label, subset = match["label"], _SUBSET[match["split"]]
    rows = []
    with path.open(encoding="utf-8-sig") as f:  # a byte-order mark is not part of a video id
        for number, line in enumerate(f, start=1):
            fields = line.split()
            if not fields:
                continue
            where = f"{path}:{number}"
            if len(fields) != 3:
                raise AnnotationError(
                    f"{where}: expected 'video_name start end', got {line!r}; "
                    "fix or delete the line"
                )
            try:
                start, end = float(fields[1]), float(fields[2])
            except ValueError:
                raise AnnotationError(
                    f"{where}: start/end {fields[1]!r} {fields[2]!r} are not "
                    "numbers of seconds; fix the line"
                ) from None
            rows.append((fields[0], start, end, label, subset, where))
    return rows


def _report_ambiguous(segments: pd.DataFrame, report: Report) -> None:
    ambiguous = segments[segments["excluded"]]
    report.extend(
        ambiguous,
        issue="ambiguous",
        action="excluded",
        detail="ambiguous segment: neither a training label nor background",
    )
    actions = segments[~segments["excluded"]].reset_index(drop=True)
    pairs = actions.reset_index().merge(ambiguous, on="video_id", suffixes=("", "_amb"))
    overlap = (pairs["t_start"] < pairs["t_end_amb"]) & (pairs["t_start_amb"] < pairs["t_end"])
    hits = pairs[overlap].drop_duplicates("index")
    report.extend(
        hits,
        issue="overlaps_ambiguous",
        action="kept",
        detail=[
            f"overlaps the ambiguous segment [{s}, {e}] at {src}; kept as a label"
            for s, e, src in zip(
                hits["t_start_amb"], hits["t_end_amb"], hits["source_amb"], strict=True
            )
        ],
    )
