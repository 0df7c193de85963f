"""Proposal recall: AR@AN and the area under the AR-AN curve (ActivityNet proposal task).

Per video the proposals are ranked by score and the top AN kept; a ground-truth segment is
recalled at a tIoU threshold when one kept proposal reaches it. AR@AN is the recall averaged
over the thresholds (0.5:0.05:0.95); the AUC is the area under AR against AN = 1..100 divided
by 100 (the official evaluation prints it x100). Only videos with ground truth count.

The official ``eval_proposal.py`` keeps, per video, the same *fraction* of each video's
proposals so that the average number per video is AN; with at least 100 proposals in every
video (what submissions hold, and what the read-out writes) that is exactly the top AN per
video used here, and with fewer the official curve is rescaled while this one is not.

:func:`recall_counts` keeps, per video, how many ground truths each AN recalls at each
threshold, so a bootstrap over videos only re-sums them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tsp_pretrain.localization.detection import rank_order
from tsp_pretrain.localization.segments import tiou_matrix

#: The AN values reported in metrics.
REPORTED_AN: tuple[int, ...] = (1, 5, 10, 100)


@dataclass(frozen=True)
class RecallCounts:
    """Recalled ground truths per video (``V x T x max_an``) and ground truths per video."""

    recalled: np.ndarray
    num_gt: np.ndarray
    thresholds: np.ndarray

    def curve(self, video_weight: np.ndarray | None = None) -> np.ndarray:
        """AR at AN = 1 .. max_an (averaged over thresholds), videos weighted if asked."""
        w = np.ones(len(self.num_gt)) if video_weight is None else np.asarray(video_weight, float)
        total = float(self.num_gt @ w)
        if total == 0:  # no ground truth drawn: recall is undefined
            return np.full(self.recalled.shape[2], np.nan)
        recall = np.tensordot(w, self.recalled, axes=(0, 0)) / total  # T x max_an
        return recall.mean(axis=0)


@dataclass(frozen=True)
class ProposalResult:
    """The AR-AN curve (AN = 1 .. len(curve)) and its normalised area."""

    curve: np.ndarray

    def ar_at(self, an: int) -> float:
        """AR at ``an`` proposals per video."""
        return float(self.curve[an - 1])

    @property
    def auc(self) -> float:
        """Trapezoid area under AR against AN = 1 .. max_an, divided by max_an."""
        an = np.arange(1, len(self.curve) + 1)
        return float(np.trapezoid(self.curve, an) / an[-1])


def recall_counts(
    ground_truth: pd.DataFrame,
    proposals: pd.DataFrame,
    thresholds: np.ndarray,
    max_an: int = 100,
    videos: list[str] | None = None,
) -> RecallCounts:
    """Ground truths recalled by each video's top AN proposals at each threshold, for AN = 1 ..
    ``max_an``; rows follow ``videos`` (default: the sorted videos with ground truth; a video
    without ground truth has zero rows and counts nowhere). Labels are ignored."""
    thresholds = np.asarray(thresholds, dtype=float)
    by_video = dict(tuple(proposals.groupby("video_id", sort=False)))
    if videos is None:
        videos = sorted(ground_truth["video_id"].unique())
    index = {v: i for i, v in enumerate(videos)}
    recalled = np.zeros((len(videos), len(thresholds), max_an))
    num_gt = np.zeros(len(videos))
    for vid, gt in ground_truth.groupby("video_id", sort=True):
        i = index[vid]
        num_gt[i] = len(gt)
        props = by_video.get(vid)
        if props is None or props.empty:
            continue
        ranked = props.iloc[rank_order(props["score"].to_numpy())][:max_an]
        iou = tiou_matrix(ranked[["t_start", "t_end"]].to_numpy(float), gt[["t_start", "t_end"]])
        best = np.maximum.accumulate(iou, axis=0)  # row n-1: best tIoU of each gt in the top n
        best = np.vstack([best, np.repeat(best[-1:], max_an - len(best), axis=0)])
        recalled[i] = (best[None, :, :] >= thresholds[:, None, None]).sum(axis=2)
    return RecallCounts(recalled, num_gt, thresholds)


def average_recall(
    ground_truth: pd.DataFrame, proposals: pd.DataFrame, thresholds: np.ndarray, max_an: int = 100
) -> ProposalResult:
    """The AR-AN curve of ``proposals`` against ``ground_truth`` (one call)."""
    return ProposalResult(recall_counts(ground_truth, proposals, thresholds, max_an).curve())
