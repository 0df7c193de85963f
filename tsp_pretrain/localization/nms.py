"""Temporal non-maximum suppression: greedy (hard) NMS and Gaussian soft-NMS.

Candidates from several actionness thresholds overlap heavily (a segment found at 0.3 contains
the one found at 0.6); NMS keeps one of each cluster (hard) or lowers the score of each
overlapping candidate by ``exp(-tIoU^2 / sigma)`` (soft-NMS, Bodla et al. 2017, the choice of
BMN and ActionFormer on ActivityNet), which keeps alternatives with other boundaries for the
higher tIoU thresholds and for AR at large AN.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from tsp_pretrain.localization.detection import rank_order
from tsp_pretrain.localization.segments import tiou_matrix


def hard_nms(
    segments: np.ndarray, scores: np.ndarray, *, threshold: float, max_keep: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices kept (best first) and their scores: a candidate is dropped when its tIoU with a
    kept, higher-scored one exceeds ``threshold``."""
    order = rank_order(scores)
    iou = tiou_matrix(segments, segments)
    kept: list[int] = []
    for i in order:
        if len(kept) == max_keep:
            break
        if not kept or iou[i, kept].max() <= threshold:
            kept.append(int(i))
    idx = np.array(kept, dtype=np.int64)
    return idx, np.asarray(scores, dtype=float)[idx]


def soft_nms(
    segments: np.ndarray, scores: np.ndarray, *, sigma: float, max_keep: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices kept (in the order picked) and their decayed scores (non-increasing).

    Repeatedly pick the highest current score (the earliest candidate on ties) and multiply
    every remaining candidate's score by ``exp(-tIoU^2 / sigma)`` with it.
    """
    current = np.asarray(scores, dtype=float).copy()
    iou = tiou_matrix(segments, segments)
    remaining = np.ones(len(current), dtype=bool)
    kept, kept_scores = [], []
    while remaining.any() and len(kept) < max_keep:
        i = int(np.argmax(np.where(remaining, current, -np.inf)))
        kept.append(i)
        kept_scores.append(current[i])
        remaining[i] = False
        current[remaining] *= np.exp(-(iou[i, remaining] ** 2) / sigma)
    return np.array(kept, dtype=np.int64), np.array(kept_scores, dtype=float)


def suppress(
    segments: np.ndarray,
    scores: np.ndarray,
    *,
    method: Literal["soft", "hard"],
    threshold: float,
    sigma: float,
    max_keep: int,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`soft_nms` or :func:`hard_nms`, by name."""
    if method == "soft":
        return soft_nms(segments, scores, sigma=sigma, max_keep=max_keep)
    return hard_nms(segments, scores, threshold=threshold, max_keep=max_keep)
