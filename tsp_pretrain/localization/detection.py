"""Detection mAP, computed as the official ActivityNet evaluation computes it.

The official ``eval_detection.py`` (Python 2) per class: predictions ranked by score; each, in
that order, is compared with the class's ground truth *in the same video*, visited in
descending tIoU; the first one at or above the threshold that no higher-ranked prediction has
taken becomes its true positive (and is locked at that threshold); otherwise the prediction is a
false positive. A prediction in a video without ground truth of its class is a false positive.
Precision and recall come from cumulative sums (recall over the class's ground-truth count) and
AP is the interpolated (VOC) area. mAP is the mean over the classes of the ground truth (a
class without predictions has AP 0); *average mAP* the mean of mAP over the tIoU thresholds.

Two points the official code leaves to chance are fixed here: predictions of equal score keep
their input order (a stable sort; the official ``argsort()[::-1]`` is unstable), and ground
truths of equal tIoU are tried lowest index first.

The matching of one prediction depends only on higher-ranked predictions *of its own video*, so
:func:`match_detections` runs once and :func:`average_precision` can then weight videos (a
bootstrap draws video ``v`` ``w_v`` times, which is exactly the same as evaluating a dataset
holding ``w_v`` copies of it) without matching again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tsp_pretrain.localization.segments import tiou_matrix


@dataclass(frozen=True)
class ClassMatches:
    """One class's predictions in rank order, each a true or false positive at every threshold.

    ``tp``: ``num_predictions x num_thresholds`` booleans; ``video``: each prediction's index in
    the evaluation's video list; ``gt_per_video``: the class's ground-truth count per video.
    """

    label: str
    tp: np.ndarray
    video: np.ndarray
    gt_per_video: np.ndarray


@dataclass(frozen=True)
class DetectionResult:
    """AP of every class (rows, in ``classes`` order) at every tIoU threshold (columns)."""

    classes: list[str]
    thresholds: np.ndarray
    ap: np.ndarray

    @property
    def map(self) -> np.ndarray:
        """mAP at each threshold: the mean AP over classes (NaN without any class)."""
        if len(self.ap) == 0:
            return np.full(len(self.thresholds), np.nan)
        return self.ap.mean(axis=0)

    @property
    def average_map(self) -> float:
        """The mean of :attr:`map` over the thresholds (ActivityNet's headline number)."""
        return float(self.map.mean())

    def map_at(self, threshold: float) -> float:
        """mAP at one of :attr:`thresholds`; an error names the thresholds evaluated."""
        hit = np.isclose(self.thresholds, threshold)
        if not hit.any():
            raise KeyError(f"tIoU {threshold} not evaluated (thresholds: {self.thresholds})")
        return float(self.map[hit][0])

    def per_class_table(self) -> pd.DataFrame:
        """One row per class: ``label`` then ``ap@<t>`` per threshold."""
        table = pd.DataFrame(self.ap, columns=[f"ap@{t:g}" for t in self.thresholds])
        table.insert(0, "label", self.classes)
        return table


def rank_order(scores: np.ndarray) -> np.ndarray:
    """Indices sorting ``scores`` from highest to lowest; equal scores keep their input order."""
    return np.argsort(-np.asarray(scores, dtype=float), kind="stable")


def match_video(pred: np.ndarray, gt: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """True positives of one video's predictions (``k x 2``, already in rank order) against its
    ground truth of the same class (``g x 2``): ``k x num_thresholds`` booleans."""
    tp = np.zeros((len(pred), len(thresholds)), dtype=bool)
    if len(gt) == 0 or len(pred) == 0:
        return tp
    iou = tiou_matrix(pred, gt)
    locked = np.zeros((len(thresholds), len(gt)), dtype=bool)
    rows = np.arange(len(thresholds))
    for i in range(len(pred)):
        # Each threshold's best free ground truth: the highest tIoU among those not yet taken
        # (argmax takes the lowest index on ties); a hit when it reaches the threshold.
        free = np.where(locked, -1.0, iou[i][None, :])
        best = free.argmax(axis=1)
        hit = free[rows, best] >= thresholds
        tp[i] = hit
        locked[rows[hit], best[hit]] = True
    return tp


def match_detections(
    ground_truth: pd.DataFrame,
    predictions: pd.DataFrame,
    thresholds: np.ndarray,
    videos: list[str],
) -> list[ClassMatches]:
    """Match every class's predictions to its ground truth (see the module docstring).

    ``ground_truth``: video_id, t_start, t_end, label. ``predictions``: the same plus score.
    ``videos``: every video either table mentions (the unit a bootstrap resamples). Classes are
    those of the ground truth, sorted; predictions of other labels cannot match anything and are
    left out (the caller reports them).
    """
    thresholds = np.asarray(thresholds, dtype=float)
    index = {v: i for i, v in enumerate(videos)}
    out = []
    for label in sorted(ground_truth["label"].unique()):
        gt = ground_truth[ground_truth["label"] == label]
        gt_per_video = np.bincount(gt["video_id"].map(index).to_numpy(), minlength=len(videos))
        gt_by_video = {
            v: g[["t_start", "t_end"]].to_numpy(float) for v, g in gt.groupby("video_id")
        }
        pred = predictions[predictions["label"] == label]
        pred = pred.iloc[rank_order(pred["score"].to_numpy())]
        video = pred["video_id"].map(index).to_numpy()
        tp = np.zeros((len(pred), len(thresholds)), dtype=bool)
        segments = pred[["t_start", "t_end"]].to_numpy(float)
        for vid, rows in pred.groupby("video_id", sort=False).indices.items():
            if vid in gt_by_video:  # rows are in rank order within the video
                tp[rows] = match_video(segments[rows], gt_by_video[vid], thresholds)
        out.append(ClassMatches(str(label), tp, video.astype(np.int64), gt_per_video))
    return out


def interpolated_ap(tp: np.ndarray, num_gt: float, weight: np.ndarray | None = None) -> np.ndarray:
    """Interpolated AP at every threshold from rank-ordered true positives (``k x T``).

    ``weight`` (one per prediction, default 1) counts a prediction that many times. The
    official ``interpolated_prec_rec``: recall padded with 0 and 1, precision with 0 and 0,
    precision made non-increasing from the right, area summed where recall changes.
    """
    tp = np.asarray(tp, dtype=bool)
    num_thresholds = tp.shape[1]
    if weight is not None:
        keep = weight > 0
        tp, weight = tp[keep], np.asarray(weight, dtype=float)[keep]
    if len(tp) == 0 or num_gt <= 0:
        return np.zeros(num_thresholds)
    w = np.ones(len(tp)) if weight is None else weight
    tp_sum = np.cumsum(tp * w[:, None], axis=0)
    fp_sum = np.cumsum(~tp * w[:, None], axis=0)
    recall = tp_sum / num_gt
    precision = tp_sum / (tp_sum + fp_sum)
    pad = np.ones((1, num_thresholds))
    mrec = np.vstack([0 * pad, recall, pad])
    mprec = np.vstack([0 * pad, precision, 0 * pad])
    mprec = np.maximum.accumulate(mprec[::-1], axis=0)[::-1]
    step = np.diff(mrec, axis=0)  # zero where recall does not change
    return (step * mprec[1:]).sum(axis=0)


#: Elements of one ``draws x predictions x thresholds`` block in :func:`map_draws`.
_BLOCK_ELEMENTS = 1 << 22


def interpolated_ap_draws(tp: np.ndarray, num_gt: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """:func:`interpolated_ap` for many weightings at once: ``weight`` is ``draws x k`` (a
    prediction of weight 0 is absent), ``num_gt`` one count per draw; returns ``draws x T``.

    Only the points where recall rises (true positives) add area, and the running maximum of
    precision from the right is reached at one of them (after a false positive, precision is
    below its value at the last true positive), so only the rows that are a true positive at
    some threshold are kept: the same AP, with the cumulative sums over far fewer rows. A row of
    weight 0 repeats the previous point of the curve, which changes neither the maximum nor the
    area, so it equals dropping the prediction.
    """
    tp = np.asarray(tp, dtype=bool)
    weight = np.asarray(weight, dtype=float)
    num_gt = np.asarray(num_gt, dtype=float)
    draws, num_thresholds = len(weight), tp.shape[1]
    rows = np.flatnonzero(tp.any(axis=1))
    if len(rows) == 0:
        return np.zeros((draws, num_thresholds))
    seen = np.cumsum(weight, axis=1)[:, rows]  # predictions ranked at or above each row
    counted = weight[:, None, rows] * tp[rows].T[None]  # draws x T x rows
    tp_sum = np.cumsum(counted, axis=2)
    precision = np.divide(tp_sum, seen[:, None, :], out=np.zeros_like(tp_sum), where=tp_sum > 0)
    precision = np.maximum.accumulate(precision[:, :, ::-1], axis=2)[:, :, ::-1]
    area = (counted * precision).sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(num_gt[:, None] > 0, area / num_gt[:, None], 0.0)


def map_draws(matches: list[ClassMatches], num_thresholds: int, weights: np.ndarray) -> np.ndarray:
    """mAP at every threshold for every row of ``weights`` (``draws x videos``): ``draws x T``.

    The vectorised :func:`average_precision` of a bootstrap: a class none of whose ground truth
    a draw holds is left out of that draw's mean (NaN when no class is left).
    """
    weights = np.asarray(weights, dtype=float)
    total = np.zeros((len(weights), num_thresholds))
    present = np.zeros(len(weights))
    for m in matches:
        num_gt = weights @ m.gt_per_video
        per_block = max(1, _BLOCK_ELEMENTS // max(1, len(m.tp) * (num_thresholds + 1)))
        for start in range(0, len(weights), per_block):
            rows = slice(start, start + per_block)
            total[rows] += interpolated_ap_draws(m.tp, num_gt[rows], weights[rows][:, m.video])
        present += num_gt > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / np.where(present > 0, present, np.nan)[:, None]


def average_precision(
    matches: list[ClassMatches], thresholds: np.ndarray, video_weight: np.ndarray | None = None
) -> DetectionResult:
    """AP per class and threshold from :func:`match_detections`, videos weighted if asked.

    With ``video_weight`` (one count per video, a bootstrap draw) a class none of whose
    ground truth was drawn is left out of the mean, as a class absent from the ground truth is.
    """
    classes, rows = [], []
    for m in matches:
        if video_weight is None:
            num_gt, weight = float(m.gt_per_video.sum()), None
        else:
            num_gt = float(m.gt_per_video @ video_weight)
            weight = video_weight[m.video]
        if num_gt > 0:
            classes.append(m.label)
            rows.append(interpolated_ap(m.tp, num_gt, weight))
    ap = np.vstack(rows) if rows else np.zeros((0, len(thresholds)))
    return DetectionResult(classes, np.asarray(thresholds, dtype=float), ap)


def detection_map(
    ground_truth: pd.DataFrame,
    predictions: pd.DataFrame,
    thresholds: np.ndarray,
    videos: list[str] | None = None,
) -> DetectionResult:
    """AP per class and threshold of ``predictions`` against ``ground_truth`` (one call)."""
    if videos is None:
        videos = sorted(set(ground_truth["video_id"]) | set(predictions["video_id"]))
    return average_precision(
        match_detections(ground_truth, predictions, thresholds, videos), thresholds
    )
