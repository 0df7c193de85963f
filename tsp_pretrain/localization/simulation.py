"""A generative model of detections whose truth is known, to measure what an interval covers.

The bootstrap intervals of :mod:`.scoring` are only worth their "95%" if, over many validation
sets drawn from one population, 95% of them hold the value they aim at. That is checked here by
simulation (``tests/test_localization_intervals.py``, ``bench/interval_coverage.py``).

Videos are independent. Each holds ``1 + Poisson(extra_instances)`` instances of one class
(uniform over ``num_classes``). Each instance is detected with probability ``detected``, at a
tIoU quality ``q ~ Beta(4, 1.5)`` (a true positive at every threshold up to ``q``, a false
positive above), scored ``separation * q + noise``; each video also holds
``Poisson(false_positives)`` detections of random classes scored by the noise alone. Several
:class:`DetectionModel` s (two encoders, say) share the videos, the instances, which are detected
and at what quality, and differ in how they score them: a paired comparison. The detections are
generated already matched (:class:`~tsp_pretrain.localization.detection.ClassMatches`), since
the matching of one video depends only on that video.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from tsp_pretrain.evaluation.bootstrap import centred_interval, percentile_interval
from tsp_pretrain.localization.detection import ClassMatches, rank_order
from tsp_pretrain.localization.scoring import Matched, bootstrap_samples
from tsp_pretrain.localization.segments import ACTIVITYNET_TIOU

#: The tIoU quality of a detected instance: Beta(4, 1.5) (mean 0.73).
QUALITY = stats.beta(4.0, 1.5)


@dataclass(frozen=True)
class DetectionModel:
    """How one detector scores (see the module docstring); ``separation`` 0 is random ranking."""

    separation: float = 2.0
    noise: float = 0.7
    false_positives: float = 5.0


@dataclass(frozen=True)
class Population:
    """The videos' side of the model: classes, instances, detection rate and quality."""

    num_classes: int = 10
    extra_instances: float = 0.6
    detected: float = 0.85

    def sample(
        self,
        rng: np.random.Generator,
        num_videos: int,
        models: Sequence[DetectionModel],
        thresholds: Sequence[float] = ACTIVITYNET_TIOU,
    ) -> list[Matched]:
        """One validation set of ``num_videos`` videos, matched, for each model."""
        thresholds = np.asarray(thresholds, dtype=float)
        cls = rng.integers(0, self.num_classes, num_videos)
        count = 1 + rng.poisson(self.extra_instances, num_videos)
        gt = np.zeros((self.num_classes, num_videos))
        gt[cls, np.arange(num_videos)] = count
        owner = np.repeat(np.arange(num_videos), count)
        found = owner[rng.random(len(owner)) < self.detected]
        quality = QUALITY.rvs(size=len(found), random_state=rng)
        hits = quality[:, None] >= thresholds[None, :]
        videos = [f"v{i}" for i in range(num_videos)]
        out = []
        for model in models:
            fp_owner = np.repeat(
                np.arange(num_videos), rng.poisson(model.false_positives, num_videos)
            )
            video = np.concatenate([found, fp_owner])
            label = np.concatenate([cls[found], rng.integers(0, self.num_classes, len(fp_owner))])
            score = np.concatenate([model.separation * quality, np.zeros(len(fp_owner))])
            score = score + rng.normal(0.0, model.noise, len(score))
            tp = np.vstack([hits, np.zeros((len(fp_owner), len(thresholds)), dtype=bool)])
            matches = []
            for c in np.flatnonzero(gt.sum(axis=1) > 0):  # the classes of the ground truth
                rows = np.flatnonzero(label == c)
                rows = rows[rank_order(score[rows])]
                matches.append(ClassMatches(f"class{c}", tp[rows], video[rows], gt[c]))
            out.append(Matched(videos, thresholds, matches, None))
        return out


def expected_average_map(
    population: Population,
    models: Sequence[DetectionModel],
    num_videos: int,
    *,
    repeats: int,
    seed: int,
) -> np.ndarray:
    """Each model's average mAP averaged over ``repeats`` validation sets of ``num_videos``
    videos: the value the official mAP of such a set estimates without bias (what the
    bootstrap interval aims at), within Monte Carlo error."""
    rng = np.random.default_rng(seed)
    total = np.zeros(len(models))
    for _ in range(repeats):
        sets = population.sample(rng, num_videos, models)
        total += [m.scores().metrics()["average_map"] for m in sets]
    return total / repeats


def population_average_map(
    population: Population, model: DetectionModel, thresholds: Sequence[float] = ACTIVITYNET_TIOU
) -> float:
    """The average mAP of infinitely many videos (the limit of the official mAP), by numerical
    integration of the model's precision-recall curve.

    Every class has the same curve. Per video and class, in expectation: ``(1 + extra) / C``
    instances, ``detected`` of them detected (a true positive at threshold t when q >= t) with
    score ``separation * q + noise``, and ``false_positives / C`` detections scored by noise.
    AP is the area under the running maximum of precision (from the right) against recall.
    """
    q = np.linspace(0.0, 1.0, 2001)
    density = QUALITY.pdf(q)
    score = np.linspace(-8.0, 8.0 + 2 * model.separation, 4001)[::-1]  # high to low: recall up
    above = stats.norm.sf((score[:, None] - model.separation * q[None, :]) / model.noise)
    weight = above * density[None, :]
    # tail[:, i]: the integral over quality from q[i] to 1 (trapezoids), for every score
    pieces = (weight[:, 1:] + weight[:, :-1]) / 2 * np.diff(q)[None, :]
    tail = np.concatenate([np.cumsum(pieces[:, ::-1], axis=1)[:, ::-1], 0 * pieces[:, :1]], 1)
    detected_above = tail[:, 0]
    noise_above = stats.norm.sf(score / model.noise)
    rate = population.detected * (1 + population.extra_instances)
    aps = []
    for t in thresholds:
        tp_above = tail[:, int(np.searchsorted(q, t))]  # quality at least t
        precision = np.divide(
            rate * tp_above,
            rate * detected_above + model.false_positives * noise_above,
            out=np.zeros_like(tp_above),
            where=tp_above > 0,
        )
        recall = population.detected * tp_above
        envelope = np.maximum.accumulate(precision[::-1])[::-1]
        aps.append(float(np.sum(np.diff(recall, prepend=0.0) * envelope)))
    return float(np.mean(aps))


@dataclass(frozen=True)
class IntervalRuns:
    """Bootstrap intervals of average mAP over many simulated validation sets.

    Columns (last axis of ``observed``, second of the intervals): the first model, the second,
    and their paired difference. ``percentile`` and ``centred``: ``repeats x 3 x 2`` (low,
    high); ``expected``: the Monte Carlo mean of the official value over sets of this size.
    """

    observed: np.ndarray
    percentile: np.ndarray
    centred: np.ndarray
    draws_mean: np.ndarray
    expected: np.ndarray

    def coverage(self, truth: np.ndarray, method: str) -> np.ndarray:
        """How often ``method``'s interval holds ``truth`` (one value per column)."""
        intervals = getattr(self, method)
        return ((intervals[..., 0] <= truth) & (truth <= intervals[..., 1])).mean(axis=0)


def simulate_intervals(
    population: Population,
    models: tuple[DetectionModel, DetectionModel],
    num_videos: int,
    *,
    repeats: int,
    n_bootstrap: int,
    truth_repeats: int,
    seed: int,
    confidence: float = 0.95,
) -> IntervalRuns:
    """Draw ``repeats`` validation sets, bootstrap each (both models on the same draws) and keep
    the percentile and the centred interval of average mAP and of the paired difference."""
    expected = expected_average_map(
        population, models, num_videos, repeats=truth_repeats, seed=seed + 1
    )
    rng = np.random.default_rng(seed)
    observed = np.zeros((repeats, 3))
    percentile = np.zeros((repeats, 3, 2))
    centred = np.zeros((repeats, 3, 2))
    draws_mean = np.zeros((repeats, 3))
    for r in range(repeats):
        sets = population.sample(rng, num_videos, models)
        drawn = bootstrap_samples(sets, n_bootstrap=n_bootstrap, seed=seed + 7919 * (r + 1))
        a, b = (o["average_map"] for o in drawn.observed)
        sa, sb = (s["average_map"] for s in drawn.samples)
        for j, (value, samples) in enumerate(((a, sa), (b, sb), (a - b, sa - sb))):
            observed[r, j] = value
            draws_mean[r, j] = samples.mean()
            old = percentile_interval(value, samples, num_videos, confidence)
            new = centred_interval(
                value, samples, num_videos, confidence, (-1.0 if j == 2 else 0.0, 1.0)
            )
            percentile[r, j] = old.low, old.high
            centred[r, j] = new.low, new.high
    return IntervalRuns(
        observed, percentile, centred, draws_mean, np.append(expected, expected[0] - expected[1])
    )
