"""ActivityNet v1.3 JSON (``activity_net.v1-3.min.json``) and ActionFormer-style JSON.

The label map is the taxonomy's leaves, sorted by name (the order of the official TSP label
mapping), unless an explicit list is given; a file without a taxonomy (ActionFormer style), or
with ``"taxonomy": []`` as many tools write it, uses the labels it contains, with a warning. Test
videos without annotations are kept as *unlabelled*: they are listed in videos.csv (features are
extracted for them) but get no background segments.
Sources are JSON paths, e.g. ``activity_net.json:database/abc/annotations/2``.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

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


def parse_activitynet(
    annotations: str | Path | Mapping[str, str | Path],
    *,
    labels: Sequence[str] | str | Path | None = None,
    subset: str | None = None,
) -> RawAnnotations:
    """Read one ActivityNet-style JSON file.

    ``subset`` must stay None: the JSON names each video's subset. Raises
    :class:`AnnotationError` for invalid JSON or missing keys.
    """
    if subset is not None or isinstance(annotations, Mapping):
        raise AnnotationError(
            "activitynet: pass one JSON file and no subset (each video's subset is in the JSON)"
        )
    path = Path(annotations)
    report = Report()
    data = _load_json(path, report)
    database = data.get("database") if isinstance(data, dict) else None
    if not isinstance(database, dict):
        raise AnnotationError(
            f'{path}: no "database" object at the top level; an ActivityNet file looks like '
            '{"taxonomy": [...], "database": {"<id>": {"subset": ..., "annotations": [...]}}}'
        )
    videos, segs = _read_database(path, database)
    segments = raw_segments_frame(segs)
    found = _found_labels(path, data, segments["label"]) if labels is None else ([], "")
    return RawAnnotations(
        videos=raw_videos_frame(videos),
        segments=segments,
        labels=choose_labels(labels, *found, report),
        report=report,
    )


_Columns = dict[str, list[Any]]


def _read_database(path: Path, database: dict) -> tuple[_Columns, _Columns]:
    """The video rows and the segment rows of ``database``, as columns, in the file's order."""
    videos: _Columns = {
        k: []
        for k in ("video_id", "filename", "subset", "annotated_duration", "labelled", "source")
    }
    segs: _Columns = {
        k: [] for k in ("video_id", "t_start", "t_end", "label", "excluded", "source")
    }
    for video_id, entry in database.items():
        where = f"{path}:database/{video_id}"
        if not isinstance(entry, dict) or "subset" not in entry:
            raise AnnotationError(f'{where}: each video needs a "subset" key; add it')
        annotations_list = entry.get("annotations", [])
        if not isinstance(annotations_list, list):
            raise AnnotationError(f'{where}/annotations: expected a list of {{"segment", "label"}}')
        video_subset = normalise_subset(entry["subset"], where)
        videos["video_id"].append(video_id)
        videos["filename"].append("")
        videos["subset"].append(video_subset)
        videos["annotated_duration"].append(_number(entry.get("duration"), f"{where}/duration"))
        videos["labelled"].append(video_subset != "testing" or bool(annotations_list))
        videos["source"].append(where)
        _read_segments(video_id, annotations_list, where, segs)
    return videos, segs


def _read_segments(video_id: str, annotations_list: list, where: str, segs: _Columns) -> None:
    """Append one video's annotations to the segment columns ``segs``."""
    for k, ann in enumerate(annotations_list):
        at = f"{where}/annotations/{k}"
        if not isinstance(ann, dict) or "segment" not in ann or "label" not in ann:
            raise AnnotationError(f'{at}: an annotation needs "segment" and "label"; add them')
        segment = ann["segment"]
        if not isinstance(segment, list | tuple) or len(segment) != 2:
            raise AnnotationError(
                f"{at}/segment: expected [start, end] in seconds, got {segment!r}"
            )
        segs["video_id"].append(video_id)
        segs["t_start"].append(_number(segment[0], f"{at}/segment"))
        segs["t_end"].append(_number(segment[1], f"{at}/segment"))
        segs["label"].append(str(ann["label"]))
        segs["excluded"].append(False)
        segs["source"].append(at)


# A JSON object listing some key twice: the object json keeps, and every value of each such key.
_Duplicates = list[tuple[dict, _Columns]]


def _load_json(path: Path, report: Report) -> Any:
    """Load the file, reporting video ids the JSON lists twice (``json`` would keep the last)."""
    duplicates: _Duplicates = []

    def collect(pairs: list[tuple[str, Any]]) -> dict:
        obj = dict(pairs)
        if len(obj) < len(pairs):
            values: _Columns = {}
            for key, value in pairs:
                values.setdefault(key, []).append(value)
            duplicates.append((obj, {k: v for k, v in values.items() if len(v) > 1}))
        return obj

    data = _read_json(path, collect)
    database = data.get("database") if isinstance(data, dict) else None
    _resolve_duplicates(path, database, duplicates, report)
    return data


def _read_json(path: Path, object_pairs_hook: Any) -> Any:
    """The parsed file; a missing, unreadable or invalid file is an :class:`AnnotationError`."""
    try:
        with path.open(encoding="utf-8-sig") as f:  # tolerate a byte-order mark
            return json.load(f, object_pairs_hook=object_pairs_hook)
    except FileNotFoundError:
        raise AnnotationError(f"{path}: annotation file not found; fix the path") from None
    except (IsADirectoryError, NotADirectoryError):
        raise AnnotationError(
            f"{path}: not a file; expected the ActivityNet JSON file (activity_net.v1-3.min.json)"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        where = (
            f"line {err.lineno}, column {err.colno}"
            if isinstance(err, json.JSONDecodeError)
            else "encoding"
        )
        raise AnnotationError(
            f"{path}: {where}: not valid JSON ({err}); expected the ActivityNet v1.3 JSON "
            "(activity_net.v1-3.min.json)"
        ) from None


def _resolve_duplicates(
    path: Path, database: dict | None, duplicates: _Duplicates, report: Report
) -> None:
    """Video ids listed twice in ``database``: identical copies are merged, differing ones
    skipped (both reported); a key twice in any other object is an :class:`AnnotationError`."""
    for obj, dup in duplicates:
        if obj is not database:
            raise AnnotationError(
                f"{path}: keys {sorted(dup)} appear twice in one JSON object (JSON keeps only "
                "the last); remove the copies"
            )
        for video_id, values in dup.items():
            where = f"{path}:database/{video_id}"
            if all(v == values[0] for v in values):
                report.add(
                    video_id=video_id,
                    issue="duplicate_video",
                    action="merged",
                    detail=f"listed {len(values)} times with identical content; kept one",
                    source=where,
                )
            else:
                del database[video_id]
                report.add(
                    video_id=video_id,
                    issue="duplicate_video",
                    action="skipped",
                    detail=f"listed {len(values)} times with different content; keep "
                    "one entry per id",
                    source=where,
                )


def _number(value: Any, where: str) -> float:
    """A time or duration: None is unknown (NaN, reported later); text that is no number fails."""
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        raise AnnotationError(f"{where}: {value!r} is not a number of seconds; fix it") from None


def _found_labels(path: Path, data: dict, used: Any) -> tuple[list[str], str]:
    """The taxonomy's leaves, or (no taxonomy, e.g. ActionFormer style) the labels used."""
    taxonomy = data.get("taxonomy")
    if taxonomy is None or taxonomy == []:
        # Many tools write "taxonomy": [] for "none"; its leaves (none) would make every action
        # an unknown label, so an empty taxonomy is no taxonomy.
        what = "no taxonomy" if taxonomy is None else "an empty taxonomy"
        log.warning("%s: %s; using the labels that occur in the file", path, what)
        return sorted(set(used)), f"labels used in the file ({what})"
    try:
        parents = {node["parentId"] for node in taxonomy}
        leaves = {node["nodeName"] for node in taxonomy if node["nodeId"] not in parents}
    except (TypeError, KeyError) as err:
        raise AnnotationError(
            f"{path}: taxonomy: every node needs nodeId, nodeName and parentId (missing {err}); "
            "fix the taxonomy or pass an explicit label list"
        ) from None
    return sorted(leaves), "taxonomy leaves"
