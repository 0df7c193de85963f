"""Scoring prediction files against a ground truth: metrics, and bootstrap intervals over videos.

:func:`prepare_predictions` applies the rules about what is scored (blocked videos, labels the
ground truth does not know, videos outside the evaluated subset) and says what it did;
:func:`score` computes detection mAP and proposal AR once; :func:`bootstrap` redraws the
videos with replacement and recomputes the same numbers (the matching is done once, see
:mod:`.detection`), for one prediction set or, paired on the same draws, for two.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tsp_pretrain.evaluation.bootstrap import Interval, percentile_interval, video_draws
from tsp_pretrain.evaluation.errors import EvaluationError
from tsp_pretrain.evaluation.evaluate import round_floats
from tsp_pretrain.localization.detection import (
    ClassMatches,
    DetectionResult,
    average_precision,
    match_detections,
)
from tsp_pretrain.localization.ground_truth import GroundTruth
from tsp_pretrain.localization.proposals import (
    REPORTED_AN,
    ProposalResult,
    RecallCounts,
    recall_counts,
)
from tsp_pretrain.localization.segments import ACTIVITYNET_TIOU

log = logging.getLogger(__name__)

#: mAP thresholds reported in metrics beside the average (all of them when none is evaluated).
HEADLINE_TIOU = (0.5, 0.75, 0.95)


@dataclass(frozen=True)
class Prepared:
    """Predictions as they will be scored, and one line per rule that changed them."""

    table: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def prepare_predictions(
    predictions: pd.DataFrame,
    ground_truth: GroundTruth,
    *,
    blocked: Sequence[str] = (),
    ignore_outside: bool = False,
    detections: bool = True,
) -> Prepared:
    """Apply the scoring rules to ``predictions``; every change is described in ``notes``.

    * Blocked videos are removed.
    * Predictions in videos outside the evaluated subset are false positives, as in the official
      evaluation (a file covering validation and test is penalised); ``ignore_outside`` drops
      them instead.
    * Detections whose label the ground truth lacks can match nothing and enter no class's AP
      (the official code fails on them, OpenTAD sets them aside); they are dropped and counted.
    """
    notes: list[str] = []
    table = predictions
    blocked = set(blocked)
    hit = table["video_id"].isin(blocked)
    if hit.any():
        notes.append(
            f"{int(hit.sum())} prediction(s) in {table.loc[hit, 'video_id'].nunique()} blocked "
            "video(s) removed"
        )
        table = table[~hit]
    outside = ~table["video_id"].isin(set(ground_truth.videos))
    if outside.any():
        n, v = int(outside.sum()), table.loc[outside, "video_id"].nunique()
        example = sorted(table.loc[outside, "video_id"].unique())[:3]
        if ignore_outside:
            notes.append(
                f"{n} prediction(s) in {v} video(s) outside the subset ignored ({example})"
            )
            table = table[~outside]
        else:
            notes.append(
                f"{n} prediction(s) in {v} video(s) outside the evaluated subset count as false "
                f"positives, as in the official evaluation ({example}; --ignore-outside drops them)"
            )
        if not table["video_id"].isin(set(ground_truth.videos)).any() and len(predictions):
            notes.append(
                "no prediction is in an evaluated video: do the ids match? (ActivityNet ids are "
                "bare, without the v_ of the file names)"
            )
    if detections:
        known = set(ground_truth.segments["label"])
        unknown = ~table["label"].isin(known)
        if unknown.any():
            names = sorted(table.loc[unknown, "label"].unique())
            notes.append(
                f"{int(unknown.sum())} detection(s) of {len(names)} label(s) absent from the "
                f"ground truth set aside (e.g. {names[:3]})"
            )
            table = table[~unknown]
    return Prepared(table.reset_index(drop=True), notes)


def prepare_both(
    detections: pd.DataFrame | None,
    proposals: pd.DataFrame | None,
    ground_truth: GroundTruth,
    *,
    blocked: Sequence[str] = (),
    ignore_outside: bool = False,
) -> tuple[pd.DataFrame | None, pd.DataFrame | None, list[str]]:
    """:func:`prepare_predictions` on detections and on proposals (either may be None), with
    their notes merged: a rule that changed both (a blocked video, say) is said once."""
    notes: list[str] = []
    prepared = []
    for table, is_detections in ((detections, True), (proposals, False)):
        if table is None:
            prepared.append(None)
            continue
        done = prepare_predictions(
            table,
            ground_truth,
            blocked=blocked,
            ignore_outside=ignore_outside,
            detections=is_detections,
        )
        prepared.append(done.table)
        notes += [n for n in done.notes if n not in notes]
    return prepared[0], prepared[1], notes


@dataclass(frozen=True)
class Scores:
    """Detection (optional) and proposal results of one prediction set."""

    detection: DetectionResult | None
    proposals: ProposalResult | None

    def metrics(self) -> dict[str, float]:
        """Flat metrics: average_map, map_<tIoU x 100> (headline thresholds), ar_<AN>, ar_auc."""
        out: dict[str, float] = {}
        if self.detection is not None:
            d = self.detection
            out["average_map"] = d.average_map
            headline = [t for t in HEADLINE_TIOU if np.isclose(d.thresholds, t).any()]
            for t in headline or list(d.thresholds):
                out[f"map_{round(t * 100)}"] = d.map_at(t)
        if self.proposals is not None:
            for an in REPORTED_AN:
                out[f"ar_{an}"] = self.proposals.ar_at(an)
            out["ar_auc"] = self.proposals.auc
        return out


@dataclass(frozen=True)
class Matched:
    """What the bootstrap re-weights: detection matches and proposal recall counts, with the
    list of videos both index (the resampled units)."""

    videos: list[str]
    thresholds: np.ndarray
    matches: list[ClassMatches] | None
    recall: RecallCounts | None

    def covers_every_class(self, video_weight: np.ndarray) -> bool:
        """Whether a draw holds ground truth of every class (of any video, for proposals)."""
        if self.matches is not None:
            return all(float(m.gt_per_video @ video_weight) > 0 for m in self.matches)
        return self.recall is None or float(self.recall.num_gt @ video_weight) > 0

    def scores(self, video_weight: np.ndarray | None = None) -> Scores:
        detection = (
            None
            if self.matches is None
            else average_precision(self.matches, self.thresholds, video_weight)
        )
        proposals = None if self.recall is None else ProposalResult(self.recall.curve(video_weight))
        return Scores(detection, proposals)


def match(
    ground_truth: GroundTruth,
    detections: pd.DataFrame | None,
    proposals: pd.DataFrame | None,
    *,
    thresholds: np.ndarray,
    proposal_thresholds: np.ndarray | None = None,
    max_an: int = 100,
    videos: list[str] | None = None,
) -> Matched:
    """Match prepared detections and proposals once (``videos``: the resampling units, by
    default the subset's videos plus any other video a prediction names; proposal recall uses
    ``proposal_thresholds``, by default ActivityNet's 0.5:0.05:0.95)."""
    if proposal_thresholds is None:
        proposal_thresholds = np.array(ACTIVITYNET_TIOU)
    if videos is None:
        named = set()
        for table in (detections, proposals):
            if table is not None:
                named |= set(table["video_id"])
        videos = sorted(set(ground_truth.videos) | named)
    gt = ground_truth.segments
    matches = None if detections is None else match_detections(gt, detections, thresholds, videos)
    recall = (
        None
        if proposals is None
        else recall_counts(gt, proposals, proposal_thresholds, max_an, videos)
    )
    return Matched(videos, np.asarray(thresholds, float), matches, recall)


def bootstrap(
    matched: Sequence[Matched], *, n_bootstrap: int, seed: int, confidence: float = 0.95
) -> list[dict[str, Interval]]:
    """Percentile intervals of every metric of each prediction set, on the same video draws.

    With two sets, a third entry holds the intervals of the paired difference first - second.
    All sets must index the same videos (an error otherwise). A draw that misses every ground
    truth of some class is discarded, for every set alike: mAP would then average fewer
    classes, and leaving out a rare, badly detected class would bias the draws upwards. A class
    whose ground truth lies in a single video is missed by (1 - 1/n)^n, about 1/e, of the
    draws; a class spread over v videos by about e^-v. The number of draws kept is logged.
    """
    videos = matched[0].videos
    if any(m.videos != videos for m in matched):
        raise ValueError("bootstrap: the prediction sets index different videos")
    observed = [m.scores().metrics() for m in matched]
    keys = [list(o) for o in observed]
    draws = video_draws(len(videos), n_bootstrap, seed)
    draws = draws[[all(m.covers_every_class(w) for m in matched) for w in draws]]
    if len(draws) == 0:
        raise EvaluationError(
            f"bootstrap: no draw of the {len(videos)} videos holds ground truth of every class"
        )
    log.info("bootstrap: %d of %d draws hold every class and are kept", len(draws), n_bootstrap)
    samples = [
        np.array([[s.metrics()[k] for k in ks] for s in (m.scores(w) for w in draws)])
        for m, ks in zip(matched, keys, strict=True)
    ]
    out = [
        {k: percentile_interval(obs[k], s[:, j], len(videos), confidence) for j, k in enumerate(ks)}
        for obs, s, ks in zip(observed, samples, keys, strict=True)
    ]
    if len(matched) == 2:
        shared = [k for k in keys[0] if k in keys[1]]
        out.append(
            {
                k: percentile_interval(
                    observed[0][k] - observed[1][k],
                    samples[0][:, keys[0].index(k)] - samples[1][:, keys[1].index(k)],
                    len(videos),
                    confidence,
                )
                for k in shared
            }
        )
    return out


def comparison_report(
    matched: dict[str, Matched], *, n_bootstrap: int, seed: int, confidence: float = 0.95
) -> dict:
    """The ``metrics/localization.json`` dict for two encoders ``{a: .., b: ..}``.

    Per encoder: every metric of :meth:`Scores.metrics`, with bootstrap intervals over the
    videos for average mAP and the AR AUC; ``<a>_minus_<b>``: their paired differences, on the
    same draws. Floats are rounded to 4 decimals.
    """
    (name_a, a), (name_b, b) = matched.items()
    ia, ib, diff = bootstrap([a, b], n_bootstrap=n_bootstrap, seed=seed, confidence=confidence)
    report: dict = {}
    for name, m, intervals in ((name_a, a, ia), (name_b, b, ib)):
        entry: dict = {}
        for key, value in m.scores().metrics().items():
            entry[key] = value
            if key in ("average_map", "ar_auc"):
                entry[f"{key}_ci_low"] = intervals[key].low
                entry[f"{key}_ci_high"] = intervals[key].high
        report[name] = entry
    report[f"{name_a}_minus_{name_b}"] = {
        **{
            k: v
            for key in ("average_map", "ar_auc")
            if key in diff
            for k, v in (
                (key, diff[key].mean),
                (f"{key}_ci_low", diff[key].low),
                (f"{key}_ci_high", diff[key].high),
            )
        },
        "num_videos": len(a.videos),
    }
    report["tiou_thresholds"] = [float(t) for t in a.thresholds]
    if a.recall is not None:
        report["proposal_tiou_thresholds"] = [float(t) for t in a.recall.thresholds]
    gt_count = 0 if a.matches is None else int(sum(m.gt_per_video.sum() for m in a.matches))
    report["counts"] = {
        "num_videos": len(a.videos),
        "num_ground_truth": gt_count,
        "num_classes": 0 if a.matches is None else len(a.matches),
    }
    report["n_bootstrap"] = n_bootstrap
    report["seed"] = seed
    return round_floats(report)
