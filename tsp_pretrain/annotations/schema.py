"""The canonical annotation schema, the parsers' common output, errors and the issue report.

Every format parser returns a :class:`RawAnnotations` (times as written in the file, nothing
dropped except what it reports); :mod:`.canonical` turns it into :class:`CanonicalAnnotations`
(times clipped to the file's duration, bad rows dropped, background added). Both carry one
:class:`Report`, so every row that was changed, dropped or skipped anywhere ends up in one
``report.csv`` a user can act on.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from tsp_pretrain.atomic import write_csv, write_json
from tsp_pretrain.regions import BACKGROUND, FOREGROUND

VIDEO_COLUMNS = ["video_id", "filename", "subset", "duration", "fps", "num_frames"]
SEGMENT_COLUMNS = ["video_id", "t_start", "t_end", "label", "label_id", "region"]
REPORT_COLUMNS = ["video_id", "t_start", "t_end", "label", "issue", "action", "detail", "source"]
SUBSETS = ("training", "validation", "testing")

# Parser output: one row per annotated video / per annotated segment, as written in the source.
RAW_VIDEO_COLUMNS = ["video_id", "filename", "subset", "annotated_duration", "labelled", "source"]
RAW_SEGMENT_COLUMNS = ["video_id", "t_start", "t_end", "label", "excluded", "source"]

# Every issue a report row can carry, with what it means. Report.add rejects other names, so the
# counts in report.json always cover the same keys.
ISSUES: dict[str, str] = {
    "invalid_time": "start or end is missing, NaN or infinite; the segment is dropped",
    "zero_length": "end == start (a point, not a segment); the segment is dropped",
    "inverted": "end < start; the segment is dropped",
    "outside_video": "the segment lies entirely outside [0, duration]; it is dropped",
    "clipped": "the segment was clipped to [0, duration] of the file",
    "too_short": "an action segment shorter than one clip (after clipping); it is dropped",
    "short_background": "a background gap shorter than max(clip_seconds, min_background); dropped",
    "unknown_label": "the label is not in the label map; the segment is dropped",
    "duplicate_segment": "the same (video, start, end, label) appears again; the copy is dropped",
    "duplicate_video": "an id listed with conflicting subset/filename/duration",
    "missing_video": "no video file found for an annotated video; the video is skipped",
    "unreadable_video": "the video file cannot be probed (empty, corrupt); the video is skipped",
    "duration_mismatch": "annotation and file durations differ by more than duration_tolerance",
    "ambiguous": "an ambiguous segment (THUMOS14): neither a training label nor background",
    "overlaps_ambiguous": "an action segment overlapping an ambiguous one (THUMOS14); kept",
}
ACTIONS = ("dropped", "clipped", "skipped", "kept", "excluded", "merged")


class AnnotationError(ValueError):
    """Annotation input that cannot be parsed; the message names the file, the row and the fix."""


@dataclass
class Report:
    """Every row that was changed, dropped or skipped, plus the parameters that decided it.

    Rows are collected either one by one (:meth:`add`) or as whole frames from vectorised checks
    (:meth:`extend`); :meth:`to_frame` joins them in the order they were found.
    """

    parameters: dict[str, Any] = field(default_factory=dict)
    _frames: list[pd.DataFrame] = field(default_factory=list, repr=False)
    _rows: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def add(
        self,
        *,
        video_id: str,
        issue: str,
        action: str,
        detail: str,
        source: str,
        t_start: float = float("nan"),
        t_end: float = float("nan"),
        label: str = "",
    ) -> None:
        """Record one row."""
        _check_kind(issue, action)
        self._rows.append(
            dict(
                video_id=video_id,
                t_start=t_start,
                t_end=t_end,
                label=label,
                issue=issue,
                action=action,
                detail=detail,
                source=source,
            )
        )

    def extend(
        self, rows: pd.DataFrame, *, issue: str, action: str, detail: str | Sequence[str]
    ) -> None:
        """Record one row per row of ``rows`` (which has at least video_id and source)."""
        if rows.empty:
            return
        _check_kind(issue, action)
        self._flush_rows()
        frame = pd.DataFrame(
            {
                "video_id": rows["video_id"].to_numpy(),
                "t_start": rows["t_start"].to_numpy() if "t_start" in rows else float("nan"),
                "t_end": rows["t_end"].to_numpy() if "t_end" in rows else float("nan"),
                "label": rows["label"].to_numpy() if "label" in rows else "",
                "issue": issue,
                "action": action,
                "detail": detail if isinstance(detail, str) else list(detail),
                "source": rows["source"].to_numpy(),
            }
        )
        self._frames.append(frame)

    def _flush_rows(self) -> None:
        if self._rows:
            self._frames.append(pd.DataFrame(self._rows, columns=REPORT_COLUMNS))
            self._rows = []

    def to_frame(self) -> pd.DataFrame:
        """All rows, grouped by video (file-level rows first), in the order they were found."""
        self._flush_rows()
        frames = [f for f in self._frames if not f.empty]
        if not frames:
            return pd.DataFrame({c: pd.Series(dtype=_REPORT_DTYPES[c]) for c in REPORT_COLUMNS})
        out = pd.concat(frames, ignore_index=True)[REPORT_COLUMNS]
        return out.sort_values("video_id", kind="stable").reset_index(drop=True)

    def counts(self) -> dict[str, int]:
        """Rows per issue, every known issue present (0 when it did not occur)."""
        found = self.to_frame()["issue"].value_counts()
        return {issue: int(found.get(issue, 0)) for issue in ISSUES}

    def write(self, out_dir: str | Path, totals: dict[str, Any] | None = None) -> None:
        """Write ``report.csv`` (the rows) and ``report.json`` (counts, parameters, totals)."""
        out_dir = Path(out_dir)
        write_csv(out_dir / "report.csv", self.to_frame())
        summary = {"counts": self.counts(), "parameters": self.parameters, "totals": totals or {}}
        write_json(out_dir / "report.json", summary, sort_keys=False)


_REPORT_DTYPES = {c: "object" for c in REPORT_COLUMNS} | {"t_start": "float64", "t_end": "float64"}


def _check_kind(issue: str, action: str) -> None:
    if issue not in ISSUES:
        raise ValueError(f"unknown report issue {issue!r}; known: {', '.join(ISSUES)}")
    if action not in ACTIONS:
        raise ValueError(f"unknown report action {action!r}; known: {', '.join(ACTIONS)}")


@dataclass
class RawAnnotations:
    """What a parser read, before anything is checked against the video files.

    ``videos`` has :data:`RAW_VIDEO_COLUMNS`: ``filename`` is "" when the format does not name
    one, ``annotated_duration`` NaN when it has none, ``labelled`` False for videos without
    ground truth (ActivityNet test videos: they get no background). ``segments`` has
    :data:`RAW_SEGMENT_COLUMNS`; ``excluded`` rows (THUMOS14 Ambiguous) are time that is neither
    foreground nor background. ``source`` is ``file:line`` (text) or ``file:json/path`` (JSON).
    """

    videos: pd.DataFrame
    segments: pd.DataFrame
    labels: list[str]
    report: Report


@dataclass
class CanonicalAnnotations:
    """The canonical tables (see docs/architecture.md, "Canonical tables") and their report."""

    videos: pd.DataFrame
    segments: pd.DataFrame
    labels: list[str]
    report: Report
    # Per subset: annotated / found / missing / unreadable videos, foreground segments, labelled
    # (annotations.summary.subset_summary); and the videos without a usable file.
    summary: pd.DataFrame | None = None
    lost: pd.DataFrame | None = None

    def totals(self) -> dict[str, Any]:
        """Sizes worth seeing at a glance in report.json (with the per-subset summary)."""
        region = self.segments["region"].value_counts()
        subsets = (
            {}
            if self.summary is None
            else {
                str(k): {c: (bool(v) if c == "labelled" else int(v)) for c, v in row.items()}
                for k, row in self.summary.to_dict(orient="index").items()
            }
        )
        return {
            "subsets": subsets,
            "videos": len(self.videos),
            "videos_per_subset": {
                k: int(v) for k, v in self.videos["subset"].value_counts().sort_index().items()
            },
            "foreground_segments": int(region.get(FOREGROUND, 0)),
            "background_segments": int(region.get(BACKGROUND, 0)),
            "labels": len(self.labels),
        }


def normalise_subset(value: object, source: str) -> str:
    """Map the subset spellings in the wild (``Validation``, ``test``, ...) to :data:`SUBSETS`."""
    key = str(value).strip().lower()
    subset = _SUBSET_ALIASES.get(key)
    if subset is None:
        raise AnnotationError(
            f"{source}: unknown subset {value!r}; use one of {', '.join(SUBSETS)} "
            f"(also accepted: {', '.join(sorted(set(_SUBSET_ALIASES) - set(SUBSETS)))})"
        )
    return subset


_SUBSET_ALIASES = {
    "training": "training",
    "train": "training",
    "validation": "validation",
    "val": "validation",
    "valid": "validation",
    "testing": "testing",
    "test": "testing",
}


def choose_labels(
    labels: Sequence[str] | str | Path | None,
    found: Iterable[str],
    found_source: str,
    report: Report,
) -> list[str]:
    """The explicit label map when given, else the sorted ``found`` names (noted in the report)."""
    if labels is None:
        report.parameters["label_source"] = found_source
        return sorted(set(found))
    report.parameters["label_source"] = str(labels) if isinstance(labels, str | Path) else "list"
    return load_label_list(labels)


def load_label_list(labels: Sequence[str] | str | Path) -> list[str]:
    """An explicit label map: a list of class names, or a JSON file holding one (TSP style)."""
    if isinstance(labels, str | Path):
        path = Path(labels)
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except FileNotFoundError:
            raise AnnotationError(f"{path}: label file not found; fix the path") from None
        except (IsADirectoryError, NotADirectoryError):
            raise AnnotationError(
                f"{path}: not a file; the label map is a JSON file holding a list of class names"
            ) from None
        except json.JSONDecodeError as err:
            raise AnnotationError(
                f"{path}: line {err.lineno}: not valid JSON ({err.msg}); the label file must be a "
                'JSON list of class names, e.g. ["Long jump", "Zumba"]'
            ) from None
        where = str(path)
    else:
        data, where = labels, "labels argument"
    if not isinstance(data, list) or not all(isinstance(x, str) and x for x in data):
        raise AnnotationError(f"{where}: expected a list of non-empty class names (strings)")
    duplicates = sorted({x for x in data if data.count(x) > 1})
    if duplicates:
        raise AnnotationError(f"{where}: class names listed twice: {duplicates}; remove the copies")
    return list(data)


def raw_videos_frame(rows: list[dict[str, Any]] | dict[str, list[Any]]) -> pd.DataFrame:
    """A parser's video table with the :data:`RAW_VIDEO_COLUMNS` in order and stable dtypes."""
    frame = pd.DataFrame(rows, columns=RAW_VIDEO_COLUMNS)
    return frame.astype(
        {
            "video_id": str,
            "filename": str,
            "subset": str,
            "source": str,
            "annotated_duration": "float64",
            "labelled": "bool",
        }
    )


def raw_segments_frame(rows: list[dict[str, Any]] | dict[str, list[Any]]) -> pd.DataFrame:
    """A parser's segment table with the :data:`RAW_SEGMENT_COLUMNS` in order and stable dtypes."""
    frame = pd.DataFrame(rows, columns=RAW_SEGMENT_COLUMNS)
    return frame.astype(
        {
            "video_id": str,
            "label": str,
            "source": str,
            "t_start": "float64",
            "t_end": "float64",
            "excluded": "bool",
        }
    )
