"""Proposal recall: AR@AN and the area under the AR-AN curve (ActivityNet proposal task).

A ground-truth segment is recalled at a tIoU threshold when one of the proposals used in its
video reaches it; AR is the recall over all ground truths, averaged over the thresholds
(0.5:0.05:0.95). Two ways of choosing the proposals used at AN:

* ``official`` (the default): what ActivityNet's ``eval_proposal.py``
  (``average_recall_vs_avg_nr_proposals``) computes. AN is an *average* number of proposals per
  video, not a per-video cut. With V the videos that have ground truth and P *every* proposal
  of the file (videos outside the ground truth included), each video keeps its top
  ``min(int(n_v * 100 V / P), n_v)`` proposals (K kept in all); at curve point k = 1 .. 100 the
  video uses its top ``min(int(m_v * k / 100 * 100 V / K), m_v)`` kept ones (m_v: what it
  kept), so a video with more proposals uses more of them, and the x axis, k / 100 * 100 V / K
  * K / V, is AN = k. The float truncation is the official one: with 100 proposals in every
  video, ``int(100 * 0.29) = 28`` proposals are used at AN 29. With unequal counts this differs
  from a per-video cut by up to tens of points at small AN.
* ``per_video``: every video's top AN proposals by score (what is often assumed; it equals
  ``official`` neither with unequal counts nor, because of the truncation, at every AN).

The AUC is the trapezoid area under AR against AN divided by the largest AN (the official
script prints it x100). Only videos with ground truth are recalled; a video of the ground truth
without proposals recalls nothing. Ties in score keep the file's order (a stable sort; the
official ``argsort()[::-1]`` leaves them to chance).

:func:`recall_counts` ranks each video's proposals once and keeps, per video and per number of
its top proposals, how many ground truths they recall (summed over thresholds); a bootstrap over
videos then only recomputes the budgets and re-sums (a video drawn k times counts k times, in
V, P and K as in the recall).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tsp_pretrain.evaluation.errors import EvaluationError
from tsp_pretrain.localization.detection import rank_order
from tsp_pretrain.localization.segments import tiou_matrix

#: The AN values reported in metrics.
REPORTED_AN: tuple[int, ...] = (1, 5, 10, 100)
#: How the proposals used at AN are chosen (see the module docstring).
AR_SCHEMES: tuple[str, ...] = ("official", "per_video")
#: Points of the official AR-AN curve (``np.arange(1, 101) / 100.0`` of the largest AN).
_OFFICIAL_POINTS = 100


@dataclass(frozen=True)
class ProposalResult:
    """The AR-AN curve: average recall ``curve`` at ``an`` proposals per video (ascending)."""

    curve: np.ndarray
    an: np.ndarray

    def ar_at(self, an: float) -> float:
        """AR at ``an`` proposals per video (a point of the curve; an error names them)."""
        hit = np.flatnonzero(np.isclose(self.an, an, rtol=0, atol=1e-9))
        if len(hit) == 0:
            raise KeyError(f"AN {an} is not a point of the AR-AN curve ({self.an[0]:g} .. )")
        return float(self.curve[hit[0]])

    @property
    def auc(self) -> float:
        """Trapezoid area under AR against AN, divided by the largest AN (official, / 100)."""
        return float(np.trapezoid(self.curve, self.an) / self.an[-1])


@dataclass(frozen=True)
class RecallCounts:
    """What AR needs from every video (the resampling units), ranked and matched once.

    ``hits[offset[v] + j]``: ground truths of video ``v`` recalled by its top ``j`` proposals,
    summed over the thresholds (``j = 0 .. num_proposals[v]``); ``num_gt``: ground truths per
    video (videos without are not recalled but their proposals count in the official budget).
    """

    hits: np.ndarray
    offset: np.ndarray
    num_proposals: np.ndarray
    num_gt: np.ndarray
    thresholds: np.ndarray
    max_an: int = 100
    scheme: str = "official"

    def curve(self, video_weight: np.ndarray | None = None) -> ProposalResult:
        """The AR-AN curve, each video counted ``video_weight`` times (default once)."""
        w = np.ones(len(self.num_gt)) if video_weight is None else np.asarray(video_weight, float)
        return self.curves(w[None, :])[0]

    def curves(self, weights: np.ndarray) -> list[ProposalResult]:
        """:meth:`curve` for every row of ``weights`` (draws x videos)."""
        weights = np.asarray(weights, dtype=float)
        if self.scheme == "official":
            return [self._official(w) for w in weights]
        an = np.arange(1, self.max_an + 1, dtype=float)
        used = np.minimum(np.arange(1, self.max_an + 1)[None, :], self.num_proposals[:, None])
        recalled = self.hits[self.offset[:, None] + used]  # videos x AN
        total = weights @ self.num_gt * len(self.thresholds)
        with np.errstate(invalid="ignore", divide="ignore"):
            curves = (weights @ recalled) / np.where(total > 0, total, np.nan)[:, None]
        return [ProposalResult(c, an) for c in curves]

    def _official(self, w: np.ndarray) -> ProposalResult:
        k = np.arange(1, _OFFICIAL_POINTS + 1) / 100.0
        gt_videos = self.num_gt > 0
        num_videos = float(w[gt_videos].sum())  # V: drawn videos with ground truth
        total_proposals = float(w @ self.num_proposals)  # P: every proposal, any video
        if num_videos == 0:  # no ground truth drawn: recall is undefined
            return ProposalResult(np.full(len(k), np.nan), k * self.max_an)
        if total_proposals == 0:  # the official code divides by zero here
            return ProposalResult(np.zeros(len(k)), k * self.max_an)
        ratio = self.max_an * num_videos / total_proposals
        # int() of a non-negative float is its floor, as the official int(n * ratio)
        kept = np.minimum(np.floor(self.num_proposals * ratio), self.num_proposals)
        kept = np.where(gt_videos, kept, 0).astype(np.int64)
        total_kept = float(w @ kept)  # K
        if total_kept == 0:  # no video of the ground truth keeps a proposal
            return ProposalResult(np.zeros(len(k)), k * self.max_an)
        fraction = k * (self.max_an * num_videos / total_kept)
        live = np.flatnonzero((w > 0) & gt_videos)
        m = kept[live]
        used = np.minimum(np.floor(m[:, None] * fraction[None, :]).astype(np.int64), m[:, None])
        recalled = w[live] @ self.hits[self.offset[live, None] + used]
        curve = recalled / (float(w @ self.num_gt) * len(self.thresholds))
        return ProposalResult(curve, fraction * (total_kept / num_videos))


def recall_counts(
    ground_truth: pd.DataFrame,
    proposals: pd.DataFrame,
    thresholds: np.ndarray,
    max_an: int = 100,
    videos: list[str] | None = None,
    scheme: str = "official",
) -> RecallCounts:
    """Rank and match every video's proposals once (labels ignored); see the module docstring.

    ``videos``: the resampling units, by default every video with ground truth or proposals.
    Proposals of a video not listed are an error (they would change the official budget
    without being resampled).
    """
    if scheme not in AR_SCHEMES:
        raise EvaluationError(f"unknown AR scheme {scheme!r}; use one of {list(AR_SCHEMES)}")
    thresholds = np.asarray(thresholds, dtype=float)
    if videos is None:
        videos = sorted(set(ground_truth["video_id"]) | set(proposals["video_id"]))
    index = {v: i for i, v in enumerate(videos)}
    unlisted = sorted(set(proposals["video_id"]) - set(index))
    if unlisted:
        raise ValueError(f"proposals in videos outside the resampled list: {unlisted[:3]}")
    num_proposals = np.zeros(len(videos), dtype=np.int64)
    counts = proposals["video_id"].map(index).value_counts()
    num_proposals[counts.index.to_numpy(dtype=np.int64)] = counts.to_numpy()
    num_gt = np.zeros(len(videos))
    offset = np.concatenate([[0], np.cumsum(num_proposals + 1)[:-1]]).astype(np.int64)
    hits = np.zeros(int((num_proposals + 1).sum()))
    by_video = dict(tuple(proposals.groupby("video_id", sort=False)))
    for vid, gt in ground_truth.groupby("video_id", sort=True):
        i = index[vid]
        num_gt[i] = len(gt)
        props = by_video.get(vid)
        if props is None or props.empty:
            continue
        ranked = props.iloc[rank_order(props["score"].to_numpy())]
        iou = tiou_matrix(ranked[["t_start", "t_end"]].to_numpy(float), gt[["t_start", "t_end"]])
        best = np.maximum.accumulate(iou, axis=0)  # row j-1: best tIoU of each gt in the top j
        recalled = (best[:, :, None] >= thresholds[None, None, :]).sum(axis=(1, 2))
        hits[offset[i] + 1 : offset[i] + 1 + len(ranked)] = recalled
    return RecallCounts(hits, offset, num_proposals, num_gt, thresholds, max_an, scheme)


def average_recall(
    ground_truth: pd.DataFrame,
    proposals: pd.DataFrame,
    thresholds: np.ndarray,
    max_an: int = 100,
    scheme: str = "official",
) -> ProposalResult:
    """The AR-AN curve of ``proposals`` against ``ground_truth`` (one call)."""
    return recall_counts(ground_truth, proposals, thresholds, max_an, scheme=scheme).curve()
