"""Scoring prediction files against a ground truth: metrics, and bootstrap intervals over videos.

:func:`prepare_predictions` applies the rules about what is scored (blocked videos, labels the
ground truth does not know, videos outside the evaluated subset, segments that start before
0 s) and says what it did; :func:`match` matches detections and proposals once and
:meth:`Matched.scores` computes detection mAP and proposal AR; :func:`bootstrap` redraws the
videos with replacement and recomputes the same numbers (the matching is done once and
weighted, see :mod:`.detection`), for one prediction set or, paired on the same draws, for two,
with intervals centred on the observed values (why: docs/localization.md, "Intervals").
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tsp_pretrain.evaluation.bootstrap import Interval, centred_interval, video_draws
from tsp_pretrain.evaluation.errors import EvaluationError
from tsp_pretrain.evaluation.evaluate import round_floats
from tsp_pretrain.evaluation.verdict import Difference
from tsp_pretrain.localization.detection import (
    ClassMatches,
    DetectionResult,
    average_precision,
    map_draws,
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
#: The metrics with intervals and a paired difference in the report, and their names.
COMPARED = {"average_map": "average mAP", "ar_auc": "AR AUC"}


@dataclass(frozen=True)
class Prepared:
    """Predictions as they will be scored, and one line per rule that changed them."""

    table: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    #: The note on predictions outside the subset (also in ``notes``), and its parts.
    outside_note: str | None = None
    outside: tuple[int, int, list[str]] | None = None


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
    * A segment that starts before 0 s is scored as given, as the official evaluation does
      (its tIoU counts the part before 0), and noted: a localizer that regresses boundaries
      past the video's start usually means to clip them.
    * Predictions in videos outside the evaluated subset are false positives (``detections``),
      and proposals there count in the official AR budget (``detections=False``; AN is spent
      in proportion to each video's share of all proposals), as in the official evaluation (a
      file covering validation and test is penalised); ``ignore_outside`` drops them instead.
    * Detections whose label the ground truth lacks can match nothing and enter no class's AP
      (the official code fails on them, OpenTAD sets them aside); they are dropped and counted.

    Segments that cannot be one (reversed, NaN) never get here: the readers reject them.
    """
    notes: list[str] = []
    table = _drop_blocked(predictions, set(blocked), notes)
    _note_early_starts(table, notes)
    outside = ~table["video_id"].isin(set(ground_truth.videos))
    outside_parts, outside_note = None, None
    if outside.any():
        n, v, example = _outside_parts(table, outside)
        if ignore_outside:
            notes.append(
                f"{n} prediction(s) in {v} video(s) outside the subset ignored ({example})"
            )
            table = table[~outside]
        else:
            outside_parts = (n, v, example)
            outside_note = _outside_note(
                *outside_parts, detections=detections, proposals=not detections
            )
            notes.append(outside_note)
        if not table["video_id"].isin(set(ground_truth.videos)).any() and len(predictions):
            notes.append(
                "no prediction is in an evaluated video: do the ids match? (ActivityNet ids are "
                "bare, without the v_ of the file names)"
            )
    if detections:
        table = _drop_unknown_labels(table, ground_truth, notes)
    return Prepared(table.reset_index(drop=True), notes, outside_note, outside_parts)


def _drop_blocked(table: pd.DataFrame, blocked: set[str], notes: list[str]) -> pd.DataFrame:
    """``table`` without the blocked videos' predictions (noted)."""
    hit = table["video_id"].isin(blocked)
    if not hit.any():
        return table
    notes.append(
        f"{int(hit.sum())} prediction(s) in {table.loc[hit, 'video_id'].nunique()} blocked "
        "video(s) removed"
    )
    return table[~hit]


def _note_early_starts(table: pd.DataFrame, notes: list[str]) -> None:
    """Note segments that start before 0 s (scored as given)."""
    early = table["t_start"] < 0
    if early.any():
        row = table[early].iloc[0]
        notes.append(
            f"{int(early.sum())} prediction(s) start before 0 s (e.g. video {row.video_id}, "
            f"[{row.t_start:g}, {row.t_end:g}]): scored as given, as the official evaluation "
            "does; clip them to the video if that is not meant"
        )


def _outside_parts(table: pd.DataFrame, outside: pd.Series) -> tuple[int, int, list[str]]:
    """Predictions in videos outside the subset: their number, their videos' number, and up to
    three of those videos (sorted), for the notes."""
    rows = table.loc[outside, "video_id"]
    return int(outside.sum()), rows.nunique(), sorted(rows.unique())[:3]


def _drop_unknown_labels(
    table: pd.DataFrame, ground_truth: GroundTruth, notes: list[str]
) -> pd.DataFrame:
    """Detections without a ground-truth label set aside (noted): they can match nothing."""
    known = set(ground_truth.segments["label"])
    unknown = ~table["label"].isin(known)
    if not unknown.any():
        return table
    names = sorted(table.loc[unknown, "label"].unique())
    notes.append(
        f"{int(unknown.sum())} detection(s) of {len(names)} label(s) absent from the "
        f"ground truth set aside (e.g. {names[:3]})"
    )
    return table[~unknown]


def _outside_note(n: int, v: int, example: list, *, detections: bool, proposals: bool) -> str:
    """The note for predictions in videos outside the subset, saying what they change: false
    positives in mAP, and (official AR) proposals in the budget that sets AN per video."""
    effects = []
    if detections:
        effects.append("are false positives in mAP")
    if proposals:
        effects.append(
            "count in the proposal budget of AR@AN (a video's share of AN is its share of all "
            "the file's proposals)"
        )
    return (
        f"{n} prediction(s) in {v} video(s) outside the evaluated subset "
        f"{' and '.join(effects)}, as in the official evaluation ({example}; --ignore-outside "
        "drops them)"
    )


def prepare_both(
    detections: pd.DataFrame | None,
    proposals: pd.DataFrame | None,
    ground_truth: GroundTruth,
    *,
    blocked: Sequence[str] = (),
    ignore_outside: bool = False,
) -> tuple[pd.DataFrame | None, pd.DataFrame | None, list[str]]:
    """:func:`prepare_predictions` on detections and on proposals (either may be None), with
    the ground truth's notes first and the notes merged: a rule that changed both (a blocked
    video, say) is said once, and when the proposals are the detections themselves, predictions
    outside the subset get one note saying what they do in each metric."""
    notes: list[str] = list(ground_truth.notes)
    done: list[Prepared | None] = []
    for table, is_detections in ((detections, True), (proposals, False)):
        done.append(
            None
            if table is None
            else prepare_predictions(
                table,
                ground_truth,
                blocked=blocked,
                ignore_outside=ignore_outside,
                detections=is_detections,
            )
        )
    both = done[0] is not None and done[1] is not None and proposals is detections
    combined = None
    if both and done[0].outside is not None:
        combined = _outside_note(*done[0].outside, detections=True, proposals=True)
    for prepared in done:
        if prepared is None:
            continue
        for note in prepared.notes:
            note = combined if combined and note == prepared.outside_note else note
            if note not in notes:
                notes.append(note)
    tables = [None if p is None else p.table for p in done]
    return tables[0], tables[1], notes


def _detection_metrics(map_by_tiou: np.ndarray, thresholds: np.ndarray) -> dict[str, np.ndarray]:
    """average_map and map_<tIoU x 100> (headline thresholds) from mAP per threshold (``... x
    T``; one row per draw)."""
    out = {"average_map": map_by_tiou.mean(axis=-1)}
    headline = [t for t in HEADLINE_TIOU if np.isclose(thresholds, t).any()]
    for t in headline or list(thresholds):
        column = int(np.flatnonzero(np.isclose(thresholds, t))[0])
        out[f"map_{round(t * 100)}"] = map_by_tiou[..., column]
    return out


def _proposal_metrics(curves: Sequence[ProposalResult]) -> dict[str, np.ndarray]:
    """ar_<AN> (the reported AN) and ar_auc of each curve."""
    out = {f"ar_{an}": np.array([c.ar_at(an) for c in curves]) for an in REPORTED_AN}
    out["ar_auc"] = np.array([c.auc for c in curves])
    return out


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
            out.update({k: float(v) for k, v in _detection_metrics(d.map, d.thresholds).items()})
        if self.proposals is not None:
            out.update({k: float(v[0]) for k, v in _proposal_metrics([self.proposals]).items()})
        return out


@dataclass(frozen=True)
class Matched:
    """What the bootstrap re-weights: detection matches and proposal recall counts, with the
    list of videos both index (the resampled units)."""

    videos: list[str]
    thresholds: np.ndarray
    matches: list[ClassMatches] | None
    recall: RecallCounts | None

    def covers_every_class(self, video_weight: np.ndarray) -> np.ndarray | bool:
        """Whether a draw (or each row of a ``draws x videos`` array) holds ground truth of
        every class (of any video, for proposals)."""
        w = np.asarray(video_weight, dtype=float)
        ok = np.ones(w.shape[:-1], dtype=bool)
        if self.matches is not None:
            for m in self.matches:
                ok &= w @ m.gt_per_video > 0
        elif self.recall is not None:
            ok &= w @ self.recall.num_gt > 0
        return bool(ok) if ok.ndim == 0 else ok

    def scores(self, video_weight: np.ndarray | None = None) -> Scores:
        """Every result, videos weighted if asked (a video of weight k counts k times)."""
        detection = (
            None
            if self.matches is None
            else average_precision(self.matches, self.thresholds, video_weight)
        )
        proposals = None if self.recall is None else self.recall.curve(video_weight)
        return Scores(detection, proposals)

    def metric_draws(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        """:meth:`Scores.metrics` for every row of ``weights`` (``draws x videos``), vectorised:
        each metric's value on each draw."""
        weights = np.asarray(weights, dtype=float)
        out: dict[str, np.ndarray] = {}
        if self.matches is not None:
            map_by_tiou = map_draws(self.matches, len(self.thresholds), weights)
            out.update(_detection_metrics(map_by_tiou, self.thresholds))
        if self.recall is not None:
            out.update(_proposal_metrics(self.recall.curves(weights)))
        return out


def match(
    ground_truth: GroundTruth,
    detections: pd.DataFrame | None,
    proposals: pd.DataFrame | None,
    *,
    thresholds: np.ndarray,
    proposal_thresholds: np.ndarray | None = None,
    max_an: int = 100,
    videos: list[str] | None = None,
    ar_scheme: str = "official",
) -> Matched:
    """Match prepared detections and proposals once (``videos``: the resampling units, by
    default the subset's videos plus any other video a prediction names; proposal recall uses
    ``proposal_thresholds``, by default ActivityNet's, and ``ar_scheme``: ``official`` or
    ``per_video``, see :mod:`.proposals`)."""
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
        else recall_counts(gt, proposals, proposal_thresholds, max_an, videos, ar_scheme)
    )
    return Matched(videos, np.asarray(thresholds, float), matches, recall)


@dataclass(frozen=True)
class BootstrapSamples:
    """Each prediction set's observed metrics and their values on the kept video draws."""

    observed: list[dict[str, float]]
    samples: list[dict[str, np.ndarray]]
    num_videos: int
    num_draws: int


def bootstrap_samples(
    matched: Sequence[Matched], *, n_bootstrap: int, seed: int
) -> BootstrapSamples:
    """Draw the videos with replacement ``n_bootstrap`` times (seeded; the same draws for every
    set) and compute every metric on each draw that holds ground truth of every class.

    A video drawn k times counts as k distinct videos (k copies of its ground truth and of its
    predictions, each copy matching only its own ground truth): the matching is done once and
    weighted (see :mod:`.detection`). A draw that misses every ground truth of some class is
    discarded, for every set alike: mAP would then average fewer classes, and leaving out a
    rare, badly detected class would bias the draws upwards. A class whose ground truth lies in
    a single video is missed by (1 - 1/n)^n, about 1/e, of the draws; a class spread over v
    videos by about e^-v. The number of draws kept is logged.
    """
    videos = matched[0].videos
    if any(m.videos != videos for m in matched):
        raise ValueError("bootstrap: the prediction sets index different videos")
    observed = [m.scores().metrics() for m in matched]
    draws = video_draws(len(videos), n_bootstrap, seed)
    keep = np.ones(len(draws), dtype=bool)
    for m in matched:
        keep &= m.covers_every_class(draws)
    draws = draws[keep]
    if len(draws) == 0:
        raise EvaluationError(
            f"bootstrap: no draw of the {len(videos)} videos holds ground truth of every class"
        )
    log.info("bootstrap: %d of %d draws hold every class and are kept", len(draws), n_bootstrap)
    samples = [m.metric_draws(draws) for m in matched]
    return BootstrapSamples(observed, samples, len(videos), len(draws))


def bootstrap(
    matched: Sequence[Matched], *, n_bootstrap: int, seed: int, confidence: float = 0.95
) -> list[dict[str, Interval]]:
    """Intervals of every metric of each prediction set, from the same video draws
    (:func:`bootstrap_samples`); with two sets, a third entry holds the intervals of the paired
    difference first - second. All sets must index the same videos (an error otherwise).

    The interval is :func:`~tsp_pretrain.evaluation.bootstrap.centred_interval`: the spread of
    the draws around their own mean, placed around the observed value. mAP and AR on a resample
    are biased upwards against the observed value (the interpolated precision of the official
    AP is a running maximum, and a resample, with its repeated videos, is noisier than the data:
    see docs/localization.md); the percentile interval inherited that shift and could lie
    wholly above the value it was reported with.
    """
    drawn = bootstrap_samples(matched, n_bootstrap=n_bootstrap, seed=seed)
    n = drawn.num_videos
    out = [
        {k: centred_interval(obs[k], s[k], n, confidence, (0.0, 1.0)) for k in obs}
        for obs, s in zip(drawn.observed, drawn.samples, strict=True)
    ]
    if len(matched) == 2:
        (obs_a, obs_b), (s_a, s_b) = drawn.observed, drawn.samples
        out.append(
            {
                k: centred_interval(obs_a[k] - obs_b[k], s_a[k] - s_b[k], n, confidence, (-1, 1))
                for k in obs_a
                if k in obs_b
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
            if key in COMPARED:
                entry[f"{key}_ci_low"] = intervals[key].low
                entry[f"{key}_ci_high"] = intervals[key].high
        report[name] = entry
    report[f"{name_a}_minus_{name_b}"] = {
        **{
            k: v
            for key in COMPARED
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


def localization_differences(report: Mapping) -> list[Difference]:
    """Trained - initial average mAP and AR AUC of a ``localization.json`` dict (as
    :func:`comparison_report` writes it for encoders named trained and initial), for
    :mod:`~tsp_pretrain.evaluation.verdict`; a metric the report lacks is left out."""
    diff = report["trained_minus_initial"]
    return [
        Difference(
            label,
            report["trained"][key],
            report["initial"][key],
            diff[key],
            diff[f"{key}_ci_low"],
            diff[f"{key}_ci_high"],
            int(diff["num_videos"]),
        )
        for key, label in COMPARED.items()
        if key in diff
    ]
