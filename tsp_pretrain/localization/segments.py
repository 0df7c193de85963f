"""Temporal segments: the tIoU between them and the evaluation's tIoU threshold sets.

Both tables of the localization package (ground truth and predictions) hold segments as
``t_start, t_end`` columns in seconds; here they are ``n x 2`` arrays.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tsp_pretrain.evaluation.errors import EvaluationError

# The official evaluators use ``np.linspace`` values, not the rounded decimals they print: the
# ninth ActivityNet threshold is 0.8999999999999999, so a tIoU that equals that float (e.g.
# ground truth [1.3, 7.9] against [0.9, 7.6]) is a hit officially and would be a miss at 0.9.
# Reports may round them for people; comparisons use these floats.

#: The ActivityNet protocol: ``np.linspace(0.5, 0.95, 10)`` (average mAP is the mean over these
#: ten; the proposal evaluator uses the same values for AR).
ACTIVITYNET_TIOU: tuple[float, ...] = tuple(float(t) for t in np.linspace(0.5, 0.95, 10))
#: The THUMOS14 protocol: ``np.linspace(0.3, 0.7, 5)`` (0.39999999999999997 is the second).
THUMOS14_TIOU: tuple[float, ...] = tuple(float(t) for t in np.linspace(0.3, 0.7, 5))
TIOU_PROTOCOLS: dict[str, tuple[float, ...]] = {
    "activitynet": ACTIVITYNET_TIOU,
    "thumos14": THUMOS14_TIOU,
}


def tiou_thresholds(spec: str | Sequence[float]) -> np.ndarray:
    """The thresholds of a protocol name (``activitynet``, ``thumos14``) or an explicit list."""
    if isinstance(spec, str):
        try:
            return np.array(TIOU_PROTOCOLS[spec])
        except KeyError:
            raise EvaluationError(
                f"unknown tIoU protocol {spec!r}; use one of {sorted(TIOU_PROTOCOLS)} "
                "or a list of thresholds"
            ) from None
    values = np.asarray(list(spec), dtype=float)
    if values.ndim != 1 or len(values) == 0 or not ((values > 0) & (values <= 1)).all():
        raise EvaluationError(f"tIoU thresholds must be a non-empty list in (0, 1], got {spec!r}")
    return values


def tiou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """tIoU of every segment of ``a`` (n x 2) with every segment of ``b`` (m x 2): n x m.

    intersection / (length a + length b - intersection), as the ActivityNet evaluation's
    ``segment_iou``; a pair whose union is empty (two zero-length segments) has tIoU 0.
    """
    a = np.asarray(a, dtype=float).reshape(-1, 2)
    b = np.asarray(b, dtype=float).reshape(-1, 2)
    inter = np.clip(
        np.minimum(a[:, None, 1], b[None, :, 1]) - np.maximum(a[:, None, 0], b[None, :, 0]),
        0.0,
        None,
    )
    union = (a[:, 1] - a[:, 0])[:, None] + (b[:, 1] - b[:, 0])[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
