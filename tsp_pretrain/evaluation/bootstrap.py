"""Bootstrap intervals over videos.

Clips of one video are strongly correlated, so the unit of resampling is the video: a mean of
per-video values, resampled with replacement, with a percentile interval (a resampled mean is
centred on the observed one). The paired version resamples the *differences* of two encoders on
the same videos, which removes the large video-to-video variation that both share (hard videos
are hard for both). Statistics that are not such a mean and whose resamples are biased, as the
official mAP, take :func:`centred_interval` instead.

Plain numpy rather than ``scipy.stats.bootstrap``: the percentile interval is defined with a few
lines here, it stays finite with one video or constant values (where BCa returns NaN), and the
resampling is chunked so that thousands of videos times thousands of resamples fit in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from tsp_pretrain.evaluation.errors import EvaluationError

_CHUNK_ELEMENTS = 1 << 22

MIN_VIDEOS_FOR_VERDICT = 12
"""Fewest validation videos for which a difference may be called above or below zero.

With few videos the nominal 95% percentile interval is too narrow: it is the spread of the
sample itself, which underestimates the spread of the population. Measured coverage of the
paired bootstrap interval of a mean per-video difference (``python bench/interval_coverage.py
--small-samples``: 4,000 samples per cell, 1,000 draws each, standard error about 0.005):

==========================================  =====  =====  =====  =====  =====  =====  =====
n videos                                        3      5     10     12     15     20     30
per-video AUC differences (demo, resampled)  0.755  0.823  0.889  0.903  0.915  0.924  0.934
heavy-tailed t(3)                            0.738  0.837  0.886  0.902  0.911  0.908  0.918
normal                                       0.743  0.840  0.905  0.909  0.920  0.925  0.939
==========================================  =====  =====  =====  =====  =====  =====  =====

The rule: the smallest n from which both realistic populations (the committed
``metrics/per_video_auc.csv`` differences, trained - initial, and a heavy-tailed t(3)) reach a
coverage of 0.90 at every larger size measured: 12 (10 videos: 0.889 and 0.886; 3 videos, the
user's case: 0.74-0.76). The demo's 21 (within-video AUC) and 24 (localization) videos keep
their verdicts. 12 is necessary, not sufficient: a strongly skewed population (lognormal) stays
below 0.88 up to 30 videos, a rare collapse (10% of videos losing 0.5) needs 25, and the paired
average-mAP difference needs several videos per class (simulated: 15 videos at 2 classes, 20 to
25 at the demo's 5 classes); docs/evaluation.md has the whole table.
"""


@dataclass(frozen=True)
class Interval:
    """Observed mean over videos and the bootstrap percentile interval around it."""

    mean: float
    low: float
    high: float
    num_videos: int


Sign = Literal["above", "below", "contains", "too_few"]


def difference_sign(low: float, high: float, num_videos: int) -> Sign:
    """Where a difference's interval lies against zero: ``above``, ``below``, ``contains``, or
    ``too_few`` below :data:`MIN_VIDEOS_FOR_VERDICT` videos, whatever the interval says. The one
    rule behind every word the stages and ``python -m tsp_pretrain.experiments`` print."""
    if num_videos < MIN_VIDEOS_FOR_VERDICT:
        return "too_few"
    if low > 0:
        return "above"
    if high < 0:
        return "below"
    return "contains"


def too_few_videos(num_videos: int) -> str:
    """What is printed instead of a verdict below the minimum."""
    return f"too few videos to tell: n={num_videos} < {MIN_VIDEOS_FOR_VERDICT}"


def bootstrap_mean(
    values: np.ndarray, *, n_bootstrap: int, seed: int, confidence: float = 0.95
) -> Interval:
    """Mean of ``values`` (one per video) with a percentile bootstrap interval; seeded."""
    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or len(values) == 0:
        raise EvaluationError(
            f"bootstrap: need a non-empty 1-D array of per-video values, got shape {values.shape}"
        )
    if not np.isfinite(values).all():
        raise EvaluationError("bootstrap: per-video values contain NaN or inf")
    if n_bootstrap < 1:
        raise EvaluationError(f"bootstrap: n_bootstrap must be at least 1, got {n_bootstrap}")
    if not 0.0 < confidence < 1.0:
        raise EvaluationError(f"bootstrap: confidence must be in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    n = len(values)
    per_chunk = max(1, _CHUNK_ELEMENTS // n)
    means = np.empty(n_bootstrap)
    for start in range(0, n_bootstrap, per_chunk):
        stop = min(start + per_chunk, n_bootstrap)
        means[start:stop] = values[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    return percentile_interval(float(values.mean()), means, n, confidence)


def percentile_interval(
    observed: float, samples: np.ndarray, num_videos: int, confidence: float = 0.95
) -> Interval:
    """The observed value with the central ``confidence`` range of its bootstrap ``samples``."""
    alpha = 1.0 - confidence
    low, high = np.quantile(np.asarray(samples, dtype=float), [alpha / 2, 1 - alpha / 2])
    return Interval(float(observed), float(low), float(high), num_videos)


def centred_interval(
    observed: float,
    samples: np.ndarray,
    num_videos: int,
    confidence: float = 0.95,
    bounds: tuple[float, float] = (-np.inf, np.inf),
) -> Interval:
    """The central ``confidence`` range of the bootstrap ``samples`` around their own mean,
    moved to the ``observed`` value: ``observed + quantile - mean(samples)``.

    For statistics that are not a mean of per-video values and whose resamples are biased
    against the observed value, as the official mAP and AR (a resample repeats videos, and the
    interpolated AP's running maximum of precision rises with noise). The percentile interval
    keeps that shift and can miss the value it is reported with; this one takes only the
    spread of the draws. It is an interval for the value the same evaluation would give on
    another set of as many videos drawn like these (docs/localization.md: what the interval
    means, and its coverage in simulations). Equal to the percentile interval when the draws
    are centred on the observed value, as for a mean. ``bounds``: the values the statistic can
    take (0 and 1 for mAP, -1 and 1 for a difference); the interval is cut to them, which cannot
    lose the truth.
    """
    samples = np.asarray(samples, dtype=float)
    alpha = 1.0 - confidence
    low, high = np.quantile(samples, [alpha / 2, 1 - alpha / 2]) - samples.mean() + observed
    low, high = np.clip([low, high], *bounds)
    return Interval(float(observed), float(low), float(high), num_videos)


def video_draws(num_videos: int, n_bootstrap: int, seed: int) -> np.ndarray:
    """``n_bootstrap x num_videos`` counts: how often each video is drawn in each resample.

    For statistics that are not a mean of per-video values (mAP, recall over pooled ground
    truth): each resample draws ``num_videos`` videos with replacement, and a video drawn k
    times counts k times. The same rows serve every encoder, which pairs the comparison.
    """
    if num_videos < 1 or n_bootstrap < 1:
        raise EvaluationError(
            f"bootstrap: need at least one video and one resample, got {num_videos} and "
            f"{n_bootstrap}"
        )
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, num_videos, size=(n_bootstrap, num_videos))
    counts = np.zeros((n_bootstrap, num_videos))
    np.add.at(counts, (np.arange(n_bootstrap)[:, None], draws), 1)
    return counts


def paired_bootstrap(
    a: np.ndarray, b: np.ndarray, *, n_bootstrap: int, seed: int, confidence: float = 0.95
) -> Interval:
    """Mean of ``a - b`` over videos (same order in both) with a paired bootstrap interval."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise EvaluationError(f"paired bootstrap: shapes differ ({a.shape} vs {b.shape})")
    return bootstrap_mean(a - b, n_bootstrap=n_bootstrap, seed=seed, confidence=confidence)


def align_per_video(
    table_a: pd.DataFrame, table_b: pd.DataFrame, value: str = "auc"
) -> pd.DataFrame:
    """Join two per-video tables on ``video_id``: columns video_id, a, b, sorted by video_id.

    Both must hold exactly the same videos, once each: a paired comparison over different video
    sets would compare different things. The error lists a few ids on either side.
    """
    for name, table in (("first", table_a), ("second", table_b)):
        for column in ("video_id", value):
            if column not in table.columns:
                raise EvaluationError(f"per-video table ({name}) lacks column {column!r}")
        dup = table["video_id"][table["video_id"].duplicated()]
        if len(dup):
            raise EvaluationError(
                f"per-video table ({name}) lists video(s) more than once: {sorted(set(dup))[:5]}"
            )
    ids_a = set(table_a["video_id"].astype(str))
    ids_b = set(table_b["video_id"].astype(str))
    if ids_a != ids_b:
        raise EvaluationError(
            "per-video tables cover different videos "
            f"({len(ids_a - ids_b)} only in the first, e.g. {sorted(ids_a - ids_b)[:5]}; "
            f"{len(ids_b - ids_a)} only in the second, e.g. {sorted(ids_b - ids_a)[:5]}); "
            "compare runs evaluated on the same validation videos and clip rule"
        )
    left = table_a[["video_id", value]].assign(video_id=table_a["video_id"].astype(str))
    right = table_b[["video_id", value]].assign(video_id=table_b["video_id"].astype(str))
    joined = left.merge(right, on="video_id", suffixes=("_a", "_b"))
    joined = joined.rename(columns={f"{value}_a": "a", f"{value}_b": "b"})
    return joined.sort_values("video_id", ignore_index=True)


def paired_bootstrap_tables(
    table_a: pd.DataFrame,
    table_b: pd.DataFrame,
    *,
    n_bootstrap: int,
    seed: int,
    value: str = "auc",
    confidence: float = 0.95,
) -> Interval:
    """Paired bootstrap of ``a - b`` for two per-video tables (e.g. two experiments' CSVs)."""
    joined = align_per_video(table_a, table_b, value)
    return paired_bootstrap(
        joined["a"].to_numpy(),
        joined["b"].to_numpy(),
        n_bootstrap=n_bootstrap,
        seed=seed,
        confidence=confidence,
    )
