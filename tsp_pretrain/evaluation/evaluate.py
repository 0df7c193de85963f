"""Evaluating one encoder's clip features, and comparing two encoders on the same clips.

:func:`evaluate_encoder` labels the clips (:mod:`.clip_labels`), fits the probes on the training
subset and scores them on the validation subset (:mod:`.probes`), with a bootstrap interval over
validation videos (:mod:`.bootstrap`). :func:`compare_encoders` turns two such evaluations into the
JSON-ready dict written to ``metrics/separability.json``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tsp_pretrain.evaluation.bootstrap import bootstrap_mean, paired_bootstrap_tables
from tsp_pretrain.evaluation.clip_labels import clip_rule
from tsp_pretrain.evaluation.errors import EvaluationError
from tsp_pretrain.evaluation.inputs import ProbeData, split_features
from tsp_pretrain.evaluation.probes import (
    action_top1,
    fit_foreground_probe,
    foreground_metrics,
    per_video_auc,
    roc_points,
)
from tsp_pretrain.evaluation.spec import EvaluationSpec
from tsp_pretrain.evaluation.verdict import Difference

log = logging.getLogger(__name__)

DECIMALS = 4
SCORE_COLUMNS = ("video_id", "clip_index", "t_start", "t_end", "fg_fraction", "region", "label_id")


@dataclass(frozen=True)
class EncoderEvaluation:
    """Everything measured for one encoder.

    ``metrics``: flat floats (unrounded; :func:`compare_encoders` rounds). ``counts``: clip and
    video counts of the evaluation data. ``per_video_auc``: video_id, auc, num_clips,
    num_foreground for the validation videos with both regions (save it: it is what a paired
    bootstrap across experiments needs). ``scores``: one row per validation clip with its labels,
    ``fg_logit`` (the probe's log-odds, which the metrics rank) and ``fg_score`` (its foreground
    probability, for figures). ``roc``: fpr, tpr of the pooled ROC curve.
    """

    metrics: dict[str, float]
    counts: dict[str, int]
    clip_rule: str
    per_video_auc: pd.DataFrame
    scores: pd.DataFrame
    roc: pd.DataFrame


def evaluate_encoder(
    features: Mapping[str, np.ndarray],
    clips: pd.DataFrame,
    segments: pd.DataFrame,
    videos: pd.DataFrame,
    spec: EvaluationSpec,
    *,
    max_roc_points: int = 200,
    features_source: str = "features",
) -> EncoderEvaluation:
    """Probe one encoder's features: foreground/background and action probes, per-video AUC.

    ``features`` maps every video of the two subsets to its ``T x F`` array (row = clip_index).
    ``spec`` says which videos train and which are scored, the clip rule, the seed and the
    bootstrap draws. ``features_source`` (e.g. the features folder) is named in error messages.
    """
    data = split_features(features, clips, segments, videos, spec, features_source)
    probe = fit_foreground_probe(data.x_train, data.fg_train, spec.seed, spec.max_iter)
    # classes_ is [False, True], so positive log-odds mean foreground.
    decision = probe.decision_function(data.x_valid)
    metrics = foreground_metrics(data.fg_valid, decision)

    per_video = per_video_auc(data.valid_clips["video_id"].to_numpy(), data.fg_valid, decision)
    interval = bootstrap_mean(
        per_video["auc"].to_numpy(), n_bootstrap=spec.n_bootstrap, seed=spec.seed
    )
    metrics |= {
        "within_video_auc": interval.mean,
        "within_video_auc_ci_low": interval.low,
        "within_video_auc_ci_high": interval.high,
        "num_valid_videos_within": interval.num_videos,
    }
    metrics["action_top1"] = _action_top1(data, spec)
    log.debug("%s: %s", features_source, {k: round(v, DECIMALS) for k, v in metrics.items()})
    scores = data.valid_clips[list(SCORE_COLUMNS)].assign(
        fg_logit=decision, fg_score=probe.predict_proba(data.x_valid)[:, 1]
    )
    return EncoderEvaluation(
        metrics=metrics,
        counts=_counts(data),
        clip_rule=clip_rule(spec.fg_threshold),
        per_video_auc=per_video,
        scores=scores,
        roc=roc_points(data.fg_valid, decision, max_roc_points),
    )


def _action_top1(data: ProbeData, spec: EvaluationSpec) -> float:
    """Top-1 accuracy of the action probe, fit and scored on foreground clips only."""
    fg_train, fg_valid = data.fg_train, data.fg_valid
    return action_top1(
        data.x_train[fg_train],
        data.train_clips.loc[fg_train, "label_id"].to_numpy(),
        data.x_valid[fg_valid],
        data.valid_clips.loc[fg_valid, "label_id"].to_numpy(),
        spec.seed,
        spec.max_iter,
    )


def _counts(data: ProbeData) -> dict[str, int]:
    """Clip and video counts of the evaluation data (``EncoderEvaluation.counts``)."""
    fg_train = data.fg_train
    return {
        "num_train_videos": len(data.train_ids),
        "num_valid_videos": len(data.valid_ids),
        "num_train_clips": len(data.train_clips),
        "num_train_fg_clips": int(fg_train.sum()),
        "num_valid_clips": len(data.valid_clips),
        "num_valid_fg_clips": int(data.fg_valid.sum()),
        "num_action_classes": int(data.train_clips.loc[fg_train, "label_id"].nunique()),
        "feature_dim": int(data.x_train.shape[1]),
    }


def round_floats(value: Any, decimals: int = DECIMALS) -> Any:
    """``value`` with every float (in nested dicts/lists) rounded, numpy scalars made plain."""
    if isinstance(value, dict):
        return {k: round_floats(v, decimals) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [round_floats(v, decimals) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return round(float(value), decimals)
    return value


def _check_same_clips(a: EncoderEvaluation, b: EncoderEvaluation, names: tuple[str, str]) -> None:
    same = (
        a.clip_rule == b.clip_rule
        and {k: v for k, v in a.counts.items() if k != "feature_dim"}
        == {k: v for k, v in b.counts.items() if k != "feature_dim"}
        and a.scores[["video_id", "clip_index", "region"]].equals(
            b.scores[["video_id", "clip_index", "region"]]
        )
    )
    if not same:
        raise EvaluationError(
            f"encoders {names[0]!r} and {names[1]!r} were evaluated on different clips or clip "
            "rules; extract both with the same clips table and evaluate with the same threshold"
        )


def compare_encoders(
    a: EncoderEvaluation,
    b: EncoderEvaluation,
    *,
    name_a: str = "trained",
    name_b: str = "initial",
    n_bootstrap: int,
    seed: int,
) -> dict[str, Any]:
    """The ``separability.json`` dict: both encoders' metrics and the paired difference A - B.

    The difference is a paired bootstrap over the validation videos of within-video AUC. Per-encoder
    keys are flat so that ``dvc metrics diff`` shows e.g. ``trained.within_video_auc``. Floats are
    rounded to 4 decimals.
    """
    if name_a == name_b:
        raise EvaluationError(f"the two encoders need different names, both are {name_a!r}")
    _check_same_clips(a, b, (name_a, name_b))
    diff = paired_bootstrap_tables(
        a.per_video_auc, b.per_video_auc, n_bootstrap=n_bootstrap, seed=seed
    )
    report = {
        name_a: dict(a.metrics),
        name_b: dict(b.metrics),
        f"{name_a}_minus_{name_b}": {
            "within_video_auc": diff.mean,
            "ci_low": diff.low,
            "ci_high": diff.high,
            "num_videos": diff.num_videos,
        },
        "clip_rule": a.clip_rule,
        "counts": {k: v for k, v in a.counts.items() if k != "feature_dim"},
        "n_bootstrap": n_bootstrap,
        "seed": seed,
    }
    return round_floats(report)


def separability_differences(report: Mapping[str, Any]) -> list[Difference]:
    """Trained - initial within-video AUC of a ``separability.json`` dict (as
    :func:`compare_encoders` writes it with the default names), for
    :mod:`~tsp_pretrain.evaluation.verdict`."""
    diff = report["trained_minus_initial"]
    return [
        Difference(
            "within-video AUC",
            report["trained"]["within_video_auc"],
            report["initial"]["within_video_auc"],
            diff["within_video_auc"],
            diff["ci_low"],
            diff["ci_high"],
            int(diff["num_videos"]),
        )
    ]
