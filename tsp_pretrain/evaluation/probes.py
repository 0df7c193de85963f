"""Linear probes on clip features and the metrics computed from them.

A probe is standardisation followed by logistic regression, fit on training videos and scored on
validation videos. It measures what a linear read-out can get from frozen features, which is what a
localizer head built on top of them starts from. ``class_weight="balanced"`` keeps the majority
region (or class) from dominating the fit, so the decision threshold of 0.5 used for balanced
accuracy is meaningful.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    roc_auc_score,
    roc_curve,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from tsp_pretrain.evaluation.errors import EvaluationError

log = logging.getLogger(__name__)

#: Solver iterations of every probe's logistic regression (ample for standardised features).
MAX_ITER = 2000


def make_probe(seed: int, max_iter: int = MAX_ITER) -> Pipeline:
    """An unfitted StandardScaler + balanced LogisticRegression pipeline.

    With more than two classes lbfgs fits a multinomial model, which is what the action probe needs.
    """
    return Pipeline(
        [
            ("scale", StandardScaler()),
            (
                "logreg",
                LogisticRegression(class_weight="balanced", max_iter=max_iter, random_state=seed),
            ),
        ]
    )


def fit_foreground_probe(
    x_train: np.ndarray, is_foreground: np.ndarray, seed: int, max_iter: int = MAX_ITER
) -> Pipeline:
    """Fit the foreground-vs-background probe; an error if the training clips lack a region."""
    is_foreground = np.asarray(is_foreground, dtype=bool)
    num_fg = int(is_foreground.sum())
    if num_fg == 0 or num_fg == len(is_foreground):
        missing = "foreground" if num_fg == 0 else "background"
        raise EvaluationError(
            f"training clips: no {missing} clip among {len(is_foreground)}, so a foreground probe "
            "cannot be fit; check the segments table or the clip label threshold"
        )
    return make_probe(seed, max_iter).fit(x_train, is_foreground)


def foreground_metrics(is_foreground: np.ndarray, decision: np.ndarray) -> dict[str, float]:
    """Pooled ROC-AUC, average precision and balanced accuracy of the probe's decisions.

    ``decision`` is the probe's log-odds (``decision_function``); > 0 predicts foreground, as
    ``predict`` does. Ranking metrics use log-odds rather than probabilities because probabilities
    saturate to exactly 0 or 1 in float for clips far from the boundary, and the ties that makes
    would lower the AUC of a perfectly ordered score.
    """
    is_foreground = np.asarray(is_foreground, dtype=bool)
    if is_foreground.all() or not is_foreground.any():
        raise EvaluationError(
            "validation clips: all of one region, so foreground ROC-AUC is undefined; "
            "check the segments of the validation subset"
        )
    return {
        "fg_auc": float(roc_auc_score(is_foreground, decision)),
        "fg_ap": float(average_precision_score(is_foreground, decision)),
        "fg_balanced_acc": float(balanced_accuracy_score(is_foreground, decision > 0)),
    }


def per_video_auc(
    video_id: np.ndarray, is_foreground: np.ndarray, score: np.ndarray
) -> pd.DataFrame:
    """ROC-AUC within each video that has both regions: columns video_id, auc, num_clips,
    num_foreground, sorted by video_id.

    Within a video the encoder cannot lean on what distinguishes whole videos (scene, actor,
    colour), so this isolates the temporal sensitivity that TSP is meant to add.
    """
    frame = pd.DataFrame(
        {"video_id": np.asarray(video_id), "fg": np.asarray(is_foreground, bool), "score": score}
    )
    rows = []
    for vid, group in frame.groupby("video_id", sort=True):
        num_fg = int(group["fg"].sum())
        if 0 < num_fg < len(group):
            auc = float(roc_auc_score(group["fg"], group["score"]))
            rows.append((vid, auc, len(group), num_fg))
    table = pd.DataFrame(rows, columns=["video_id", "auc", "num_clips", "num_foreground"])
    if table.empty:
        raise EvaluationError(
            f"validation videos: none of {frame['video_id'].nunique()} has both foreground and "
            "background clips, so within-video AUC is undefined"
        )
    return table


def action_top1(
    x_train: np.ndarray,
    label_train: np.ndarray,
    x_valid: np.ndarray,
    label_valid: np.ndarray,
    seed: int,
    max_iter: int = MAX_ITER,
) -> float:
    """Top-1 accuracy of a multinomial probe fit on training foreground clips.

    Validation clips of a class never seen in training count as errors (and are logged).
    """
    classes = np.unique(label_train)
    if len(classes) < 2:
        raise EvaluationError(
            f"training foreground clips: {len(classes)} action class(es) ({classes.tolist()}), "
            "an action probe needs at least 2"
        )
    if len(label_valid) == 0:
        raise EvaluationError("validation clips: no foreground clip to score the action probe on")
    unseen = ~np.isin(label_valid, classes)
    if unseen.any():
        log.warning(
            "action probe: %d validation foreground clip(s) of classes absent from training "
            "count as errors: %s",
            int(unseen.sum()),
            sorted(set(np.asarray(label_valid)[unseen].tolist())),
        )
    probe = make_probe(seed, max_iter).fit(x_train, label_train)
    return float(accuracy_score(label_valid, probe.predict(x_valid)))


def roc_points(is_foreground: np.ndarray, score: np.ndarray, max_points: int = 200) -> pd.DataFrame:
    """The ROC curve as columns fpr, tpr, thinned to at most ``max_points`` rows.

    Rows are a subset of the curve's own corners, evenly spaced along it, always keeping the
    end points (0, 0) and (1, 1), so a plot of the file is the curve and not an interpolation.
    """
    if max_points < 2:
        raise EvaluationError(f"max_points must be at least 2, got {max_points}")
    fpr, tpr, _ = roc_curve(np.asarray(is_foreground, bool), score)
    if len(fpr) > max_points:
        keep = np.unique(np.linspace(0, len(fpr) - 1, max_points).round().astype(int))
        fpr, tpr = fpr[keep], tpr[keep]
    return pd.DataFrame({"fpr": fpr, "tpr": tpr})
