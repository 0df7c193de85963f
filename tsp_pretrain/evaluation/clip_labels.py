"""Ground-truth labels of extracted clips, from the canonical segment table.

The rule (stated once here, and reported verbatim in ``metrics/separability.json`` via
:func:`clip_rule`):

* ``fg_fraction`` is the share of the clip's span ``[t_start, t_end]`` covered by the *union* of the
  video's foreground segments. Overlapping segments are merged first, so time covered twice counts
  once. The denominator is the whole clip span: any part of a clip outside the video (a padded last
  window) has no segment and counts as background.
* ``region`` is ``foreground`` when ``fg_fraction >= threshold`` (default 0.5), else ``background``.
  The comparison allows 1e-9 of float rounding so that a clip exactly half covered counts as
  foreground whatever its time values.
* The action label of a foreground clip is the class with the largest overlap (each class's own
  segments merged first); ties go to the lowest ``label_id``. Background clips get ``label_id`` -1.

There is deliberately no "ambiguous" band around the threshold: dropping mixed clips would make the
probe's task easier by an amount that depends on the margin chosen, and every clip extracted from a
video is used by a localizer, so all of them are scored.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tsp_pretrain.evaluation.errors import EvaluationError
from tsp_pretrain.regions import BACKGROUND, FOREGROUND

CLIP_COLUMNS = ("video_id", "clip_index", "t_start", "t_end")
SEGMENT_COLUMNS = ("video_id", "t_start", "t_end", "label", "label_id", "region")
REGIONS = (FOREGROUND, BACKGROUND)
FRACTION_TOLERANCE = 1e-9


def require_columns(table: pd.DataFrame, columns: tuple[str, ...], name: str) -> None:
    """Raise :class:`EvaluationError` naming the table and the columns it lacks."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise EvaluationError(
            f"{name} table lacks column(s) {missing} (has {list(table.columns)}); "
            f"expected at least {list(columns)}"
        )


def clip_rule(threshold: float = 0.5) -> str:
    """One-sentence statement of the labelling rule, for reports."""
    return (
        "fg_fraction = share of the clip span [t_start, t_end] covered by the union of the video's "
        f"foreground segments; foreground if fg_fraction >= {threshold:g}, else background; "
        "action label = class with the largest overlap (ties: lowest label_id)"
    )


def merge_intervals(intervals: np.ndarray) -> np.ndarray:
    """Union of ``[start, end]`` rows as sorted, disjoint rows (empty intervals dropped)."""
    intervals = np.asarray(intervals, dtype=float).reshape(-1, 2)
    intervals = intervals[intervals[:, 1] > intervals[:, 0]]
    if len(intervals) == 0:
        return intervals
    intervals = intervals[np.argsort(intervals[:, 0], kind="stable")]
    merged = [intervals[0].copy()]
    for start, end in intervals[1:]:
        if start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append(np.array([start, end]))
    return np.vstack(merged)


def covered_time(starts: np.ndarray, ends: np.ndarray, intervals: np.ndarray) -> np.ndarray:
    """Seconds of each ``[starts[i], ends[i]]`` covered by disjoint ``intervals`` (n x 2)."""
    if len(intervals) == 0:
        return np.zeros(len(starts))
    lo = np.maximum(starts[:, None], intervals[None, :, 0])
    hi = np.minimum(ends[:, None], intervals[None, :, 1])
    return np.clip(hi - lo, 0.0, None).sum(axis=1)


def _check_inputs(clips: pd.DataFrame, segments: pd.DataFrame, threshold: float) -> None:
    require_columns(clips, CLIP_COLUMNS, "clips")
    require_columns(segments, SEGMENT_COLUMNS, "segments")
    if not 0.0 < threshold <= 1.0:
        raise EvaluationError(f"clip label threshold must be in (0, 1], got {threshold}")
    bad = clips[~(clips["t_end"] > clips["t_start"])]
    if len(bad):
        row = bad.iloc[0]
        raise EvaluationError(
            f"clips table: {len(bad)} clip(s) with t_end <= t_start, e.g. video {row.video_id!r} "
            f"clip {row.clip_index} [{row.t_start}, {row.t_end}]; re-run the feature extraction"
        )
    unknown = sorted(set(segments["region"].dropna()) - set(REGIONS))
    if unknown or segments["region"].isna().any():
        raise EvaluationError(
            f"segments table: region must be one of {list(REGIONS)}, found {unknown or ['(empty)']}"
        )
    fg = segments[segments["region"] == FOREGROUND]
    if (fg["label_id"] < 0).any():
        vid = fg.loc[fg["label_id"] < 0, "video_id"].iloc[0]
        raise EvaluationError(
            f"segments table: foreground segment without a class (label_id < 0) in video {vid!r}"
        )


def label_clips(
    clips: pd.DataFrame, segments: pd.DataFrame, threshold: float = 0.5
) -> pd.DataFrame:
    """Copy of ``clips`` with ``fg_fraction``, ``region``, ``label_id`` and ``label`` added.

    See the module docstring for the rule. Videos without foreground segments (or absent from
    ``segments``) get background clips only. Row order and index of ``clips`` are kept.
    """
    _check_inputs(clips, segments, threshold)
    fg = segments[segments["region"] == FOREGROUND]
    names = fg.drop_duplicates("label_id").set_index("label_id")["label"].fillna("").astype(str)
    fraction = np.zeros(len(clips))
    label_id = np.full(len(clips), -1, dtype=np.int64)
    starts_all = clips["t_start"].to_numpy(dtype=float)
    ends_all = clips["t_end"].to_numpy(dtype=float)
    fg_by_video = dict(tuple(fg.groupby("video_id", sort=False)))
    for vid, rows in clips.groupby("video_id", sort=False).indices.items():
        vseg = fg_by_video.get(vid)
        if vseg is None:
            continue
        starts, ends = starts_all[rows], ends_all[rows]
        spans = vseg[["t_start", "t_end"]].to_numpy(dtype=float)
        frac = covered_time(starts, ends, merge_intervals(spans)) / (ends - starts)
        fraction[rows] = np.clip(frac, 0.0, 1.0)
        class_ids = np.sort(vseg["label_id"].unique())
        per_class = np.column_stack(
            [
                covered_time(starts, ends, merge_intervals(spans[vseg["label_id"].to_numpy() == c]))
                for c in class_ids
            ]
        )
        best = class_ids[np.argmax(per_class, axis=1)]  # argmax takes the first (lowest) on ties
        is_fg = fraction[rows] >= threshold - FRACTION_TOLERANCE
        label_id[rows] = np.where(is_fg, best, -1)
    out = clips.copy()
    out["fg_fraction"] = fraction
    out["region"] = np.where(fraction >= threshold - FRACTION_TOLERANCE, FOREGROUND, BACKGROUND)
    out["label_id"] = label_id
    out["label"] = [names.get(i, "") if i >= 0 else "" for i in label_id]
    return out
