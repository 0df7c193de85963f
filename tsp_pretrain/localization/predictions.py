"""Prediction files: the ActivityNet results JSON (read and written) and a CSV table (read).

Written files are the ActivityNet format every tool reads::

    {"version": "VERSION 1.3",
     "results": {"<video id>": [{"label": "Long jump", "score": 0.93, "segment": [3.2, 9.8]}]},
     "external_data": {"used": false, "details": "..."}}

(proposals: the same without ``label``). Read are, besides that: a bare ``{"<id>": [...]}``
mapping (ActionFormer's ``results_to_dict``), integer labels (ActionFormer) given a label list,
and a CSV with columns ``video-id, t-start, t-end, label, score`` (ActionFormer's result arrays;
``video_id, t_start, t_end`` also accepted). Everything becomes one table: video_id, t_start,
t_end, label, score.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tsp_pretrain.atomic import write_json
from tsp_pretrain.evaluation.errors import EvaluationError

COLUMNS = ("video_id", "t_start", "t_end", "label", "score")
_CSV_ALIASES = {"video-id": "video_id", "t-start": "t_start", "t-end": "t_end"}
SEGMENT_DECIMALS = 3
SCORE_DECIMALS = 6


def empty_predictions() -> pd.DataFrame:
    """A predictions table with no rows and the right columns."""
    return pd.DataFrame(
        {c: pd.Series(dtype=float if c in ("t_start", "t_end", "score") else str) for c in COLUMNS}
    )


def _label(value: Any, labels: Sequence[str] | None, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | np.integer):
        raise EvaluationError(f"{where}: label {value!r} is neither a class name nor a class id")
    if isinstance(value, str):
        return value
    if labels is None:
        raise EvaluationError(
            f"{where}: integer label {value}; pass the label list (--labels labels.json, a JSON "
            "list of class names in the localizer's class-id order) to name the classes"
        )
    if not 0 <= int(value) < len(labels):
        raise EvaluationError(f"{where}: label id {value} outside the {len(labels)} labels given")
    return labels[int(value)]


_RESULTS_FORMAT = (
    '{"version": "VERSION 1.3", "results": {"<video id>": [{"segment": [s, e], "score": .., '
    '"label": ..}]}}'
)
#: Top-level keys of an ActivityNet results file other than ``results``.
_RESULTS_SIBLINGS = {"version", "external_data"}


def _results(path: Path, data: Any) -> dict:
    """The ``results`` mapping of an ActivityNet results file, or a bare ``{id: [...]}``."""
    if not isinstance(data, dict):
        raise EvaluationError(
            f"{path}: expected {_RESULTS_FORMAT} (the ActivityNet results format) or the bare "
            f"mapping {{'<video id>': [...]}}, got a JSON {type(data).__name__}"
        )
    if "results" in data:
        if not isinstance(data["results"], dict):
            raise EvaluationError(
                f"{path}: results must map video ids to lists of predictions, got a JSON "
                f"{type(data['results']).__name__}; expected {_RESULTS_FORMAT}"
            )
        return data["results"]
    siblings = sorted(_RESULTS_SIBLINGS & set(data))
    if siblings:  # an ActivityNet results file without its predictions, not a bare mapping
        raise EvaluationError(
            f'{path}: the "results" key is missing (top-level keys: {sorted(data)[:6]}); an '
            f"ActivityNet results file is {_RESULTS_FORMAT}"
        )
    return data


def _rows_from_json(
    path: Path, data: Any, labels: Sequence[str] | None
) -> tuple[list[tuple], list[str]]:
    rows, places = [], []
    for vid, entries in _results(path, data).items():
        if not isinstance(entries, list):
            raise EvaluationError(
                f"{path}:results/{vid}: expected a list of predictions, got {entries!r:.60}"
            )
        for k, entry in enumerate(entries):
            where = f"results/{vid}/{k}"
            try:
                start, end = (float(t) for t in entry["segment"])
                score = float(entry["score"])
            except (KeyError, TypeError, ValueError):
                raise EvaluationError(
                    f'{path}:{where}: a prediction needs "segment": [start, end] and a numeric '
                    f'"score", got {entry!r}'
                ) from None
            label = _label(entry["label"], labels, f"{path}:{where}") if "label" in entry else ""
            rows.append((str(vid), start, end, label, score))
            places.append(where)
    return rows, places


def read_predictions(path: str | Path, labels: Sequence[str] | None = None) -> pd.DataFrame:
    """Predictions (or proposals, label "") of a JSON or CSV file as one table.

    ``labels`` names integer class ids. Errors name the file, the entry and the fix.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: prediction file not found")
    if path.suffix.lower() == ".csv":
        table = pd.read_csv(path, dtype={"video-id": str, "video_id": str})
        table = table.rename(columns=_CSV_ALIASES)
        missing = [c for c in COLUMNS if c not in table.columns and c != "label"]
        if missing:
            raise EvaluationError(
                f"{path}: missing column(s) {missing}; expected video-id, t-start, t-end, "
                f"label, score (has {list(table.columns)})"
            )
        if "label" not in table.columns:
            table["label"] = ""
        table["label"] = [
            _label(v.item() if isinstance(v, np.generic) else v, labels, f"{path}:row {i + 2}")
            if not (isinstance(v, float) and np.isnan(v))
            else ""
            for i, v in enumerate(table["label"])
        ]
        rows = table[list(COLUMNS)].astype({"video_id": str}).itertuples(index=False)
        rows = [tuple(r) for r in rows]
        return _checked(rows, [f"row {i + 2}" for i in range(len(rows))], path)
    return parse_predictions(path.read_text(), path, labels)


def parse_predictions(
    text: str, source: str | Path, labels: Sequence[str] | None = None
) -> pd.DataFrame:
    """:func:`read_predictions` for the text of a JSON file (e.g. read from a git revision);
    ``source`` names it in errors."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise EvaluationError(f"{source}: not valid JSON ({err})") from None
    return _checked(*_rows_from_json(Path(source), data, labels), source)


def _checked(rows: list[tuple], places: list[str], source: str | Path) -> pd.DataFrame:
    """The table of ``rows``; what cannot be a segment or a score is an error naming the entry.

    NaN or infinite values and reversed segments (end before start) are rejected: the official
    evaluation would score them as misses without a word (a file of reversed segments gets mAP
    0). A start before 0 s is kept, as the official evaluation keeps it, and noted by
    :func:`tsp_pretrain.localization.scoring.prepare_predictions`.
    """
    table = pd.DataFrame(rows, columns=list(COLUMNS)) if rows else empty_predictions()
    values = table[["t_start", "t_end", "score"]].to_numpy(float)
    problems = (
        (
            ~np.isfinite(values).all(axis=1),
            "NaN or infinite time or score",
            "give finite numbers (seconds, and a score)",
        ),
        (
            values[:, 1] < values[:, 0],
            "a segment that ends before it starts",
            "write segments as [start, end] with start <= end (swapped columns?)",
        ),
    )
    for bad, what, fix in problems:
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise EvaluationError(
                f"{source}:{places[first]}: {what} ({_segment_text(rows[first])}); {fix}"
                + (f" ({int(bad.sum())} such predictions in the file)" if bad.sum() > 1 else "")
            )
    return table


def _segment_text(row: tuple) -> str:
    video, start, end, _label, score = row
    return f"video {video}, segment [{start}, {end}], score {score}"


def predictions_document(table: pd.DataFrame, *, proposals: bool, details: str) -> dict:
    """The ActivityNet results JSON of ``table``: per video, predictions by descending score."""
    results: dict[str, list[dict]] = {}
    ordered = table.sort_values(["video_id", "score"], ascending=[True, False], kind="stable")
    for row in ordered.itertuples(index=False):
        entry: dict[str, Any] = {}
        if not proposals:
            entry["label"] = str(row.label)
        entry["score"] = round(float(row.score), SCORE_DECIMALS)
        entry["segment"] = [
            round(float(row.t_start), SEGMENT_DECIMALS),
            round(float(row.t_end), SEGMENT_DECIMALS),
        ]
        results.setdefault(str(row.video_id), []).append(entry)
    return {
        "version": "VERSION 1.3",
        "results": results,
        "external_data": {"used": False, "details": details},
    }


def write_predictions(
    path: str | Path, table: pd.DataFrame, *, proposals: bool, details: str, videos: Sequence[str]
) -> None:
    """Write ``table`` as an ActivityNet results JSON; every video of ``videos`` gets a key
    (an empty list when it has no prediction), so readers see it was processed."""
    document = predictions_document(table, proposals=proposals, details=details)
    document["results"] = {v: document["results"].get(v, []) for v in sorted(videos)}
    write_json(path, document, indent=None, sort_keys=False)
