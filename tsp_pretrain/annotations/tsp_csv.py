"""The official TSP ground-truth tables (one CSV per split).

Columns read: ``video-name, t-start, t-end, action-label, temporal-region-label`` (required) and
``video-duration, filename`` (optional; ``fps`` and ``video-frames`` are ignored because the
video file is probed). Only ``Action`` rows are read as segments: the released ``No action`` rows
are ignored and the background is recomputed by our complement rule (their videos still count,
so a video with only background rows gets one full background segment). The CSV does not say
which split it is: pass ``{subset: csv_path}`` or one CSV with ``subset=``. The label map is an
explicit list (e.g. the released ``*_action_label_mapping.json``) or else the sorted labels used.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from .canonical import collapse_videos
from .schema import (
    AnnotationError,
    RawAnnotations,
    Report,
    choose_labels,
    normalise_subset,
    raw_segments_frame,
    raw_videos_frame,
)

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ["video-name", "t-start", "t-end", "action-label", "temporal-region-label"]
OPTIONAL_COLUMNS = ["video-duration", "filename"]
ACTION, NO_ACTION = "Action", "No action"


def parse_tsp_csv(
    annotations: str | Path | Mapping[str, str | Path],
    *,
    labels: Sequence[str] | str | Path | None = None,
    subset: str | None = None,
) -> RawAnnotations:
    """Read TSP ground-truth CSVs: ``{subset: path}``, or one path together with ``subset``."""
    if isinstance(annotations, Mapping):
        if subset is not None:
            raise AnnotationError(
                "tsp_csv: give either {subset: csv} or one csv with subset=, not both"
            )
        tables = [
            (normalise_subset(s, f"tsp_csv annotations key {s!r}"), Path(p))
            for s, p in annotations.items()
        ]
    else:
        if subset is None:
            raise AnnotationError(
                f"{annotations}: a TSP CSV does not say which split it holds; pass subset= "
                "(e.g. 'training') or a mapping {subset: csv_path}"
            )
        tables = [(normalise_subset(subset, "tsp_csv subset argument"), Path(annotations))]
    if not tables:
        raise AnnotationError("tsp_csv: the annotations mapping is empty; give {subset: csv_path}")

    rows = pd.concat([_read_table(path, name) for name, path in tables], ignore_index=True)
    report = Report()
    videos, skipped = collapse_videos(raw_videos_frame(rows), report)
    is_action = rows["region"] == ACTION
    n_background = int((~is_action).sum())
    if n_background:
        log.info("tsp_csv: ignored %d 'No action' rows; the background is recomputed", n_background)
    report.parameters["ignored_no_action_rows"] = n_background
    actions = rows[is_action & ~rows["video_id"].isin(skipped)]
    segments = raw_segments_frame(actions.assign(excluded=False))

    label_map = choose_labels(
        labels, set(rows.loc[is_action, "label"]) - {""}, "labels used in the CSVs", report
    )
    return RawAnnotations(videos=videos, segments=segments, labels=label_map, report=report)


def _read_table(path: Path, subset: str) -> pd.DataFrame:
    """One CSV as raw rows (video metadata and segment columns together), checked for syntax."""
    table = _read_csv(path)
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise AnnotationError(
            f"{path}: line 1: missing column(s) {missing}; the TSP ground-truth header is "
            "video-name,t-start,t-end,action-label,video-duration,filename,fps,video-frames,"
            "temporal-region-label"
        )
    sources = str(path) + ":" + table["line"].astype(str)

    if (table["video-name"] == "").any():
        line = table.loc[table["video-name"] == "", "line"].iloc[0]
        raise AnnotationError(f"{path}:{line}: empty video-name; fill it in or delete the row")
    bad_region = ~table["temporal-region-label"].isin([ACTION, NO_ACTION])
    if bad_region.any():
        row = table[bad_region].iloc[0]
        raise AnnotationError(
            f"{path}:{row['line']}: temporal-region-label {row['temporal-region-label']!r}; "
            f"use {ACTION!r} or {NO_ACTION!r}"
        )
    return pd.DataFrame(
        {
            "video_id": table["video-name"],
            "filename": table.get("filename", ""),
            "subset": subset,
            "annotated_duration": (
                _seconds(table, "video-duration", path)
                if "video-duration" in table
                else float("nan")
            ),
            "labelled": True,
            "source": sources,
            "t_start": _seconds(table, "t-start", path),
            "t_end": _seconds(table, "t-end", path),
            "label": table["action-label"],
            "region": table["temporal-region-label"],
        }
    )


def _read_csv(path: Path) -> pd.DataFrame:
    """All cells as stripped text plus each row's line number (the csv module counts lines)."""
    try:
        # utf-8-sig: a spreadsheet's byte-order mark would otherwise glue itself to the first
        # column name ("\ufeffvideo-name") and that column would be "missing".
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, skipinitialspace=True)
            header = [name.strip() for name in next(reader, [])]
            if not header:
                raise AnnotationError(
                    f"{path}: empty file; expected the header line "
                    f"{','.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)}"
                )
            rows, lines = [], []
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    raise AnnotationError(
                        f"{path}:{reader.line_num}: {len(row)} fields but the header has "
                        f"{len(header)}; fix the line (a comma inside a label needs quotes)"
                    )
                rows.append([cell.strip() for cell in row])
                lines.append(reader.line_num)
    except FileNotFoundError:
        raise AnnotationError(f"{path}: annotation file not found; fix the path") from None
    except (IsADirectoryError, NotADirectoryError):
        raise AnnotationError(
            f"{path}: not a file (a folder, or inside a file); expected a TSP ground-truth CSV"
        ) from None
    except (csv.Error, UnicodeDecodeError) as err:
        raise AnnotationError(f"{path}: not a readable CSV ({err}); save it as UTF-8 CSV") from None
    table = pd.DataFrame(rows, columns=header, dtype=str)
    table["line"] = lines
    return table


def _seconds(table: pd.DataFrame, column: str, path: Path) -> pd.Series:
    """A numeric column; empty cells become NaN (reported later), other text fails here."""
    text = table[column]
    values = pd.to_numeric(text.where(text != ""), errors="coerce")
    bad = values.isna() & (text != "") & (text.str.lower() != "nan")
    if bad.any():
        row = table[bad].iloc[0]
        raise AnnotationError(
            f"{path}:{row['line']}: {column} {row[column]!r} is not a number of seconds "
            f"({int(bad.sum())} such row(s)); fix the value"
        )
    return values.astype("float64")
