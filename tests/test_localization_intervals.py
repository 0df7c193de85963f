"""Bootstrap intervals of mAP: what they cover, checked by simulation against a known truth.

The truth is the expected official average mAP of a validation set of the same size drawn from
the simulated population (the Monte Carlo mean over many sets); see
:mod:`tsp_pretrain.localization.simulation` and, for larger runs, ``bench/interval_coverage.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tsp_pretrain.evaluation.bootstrap import centred_interval, percentile_interval
from tsp_pretrain.localization.scoring import bootstrap, bootstrap_samples
from tsp_pretrain.localization.simulation import (
    DetectionModel,
    Population,
    population_average_map,
    simulate_intervals,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def runs():
    """200 validation sets of 300 videos in 30 classes (10 videos a class, as sparse as
    ActivityNet's rarer classes); an informative detector and a random ranking, paired."""
    return simulate_intervals(
        Population(num_classes=30),
        (DetectionModel(1.0, false_positives=2.0), DetectionModel(0.0, false_positives=2.0)),
        300,
        repeats=200,
        n_bootstrap=150,
        truth_repeats=400,
        seed=0,
    )


def test_resampled_map_is_biased_upwards(runs):
    """The cause of the old intervals' miss: mAP on a resample is higher than on the data, by
    about one standard deviation of the official value here (the running maximum of
    interpolated precision rises with noise, and a resample repeats videos). The paired
    difference, where both detectors share the shift, is hardly biased."""
    bias = (runs.draws_mean - runs.observed).mean(axis=0)
    spread = runs.observed.std(axis=0)
    assert (bias[:2] > 0.5 * spread[:2]).all(), (bias, spread)
    assert abs(bias[2]) < 0.5 * spread[2], (bias, spread)


def test_centred_interval_covers_the_expected_map_where_the_percentile_interval_fails(runs):
    centred = runs.coverage(runs.expected, "centred")
    percentile = runs.coverage(runs.expected, "percentile")
    # 200 sets: a binomial standard error of 0.015 around 0.95
    assert (centred >= 0.89).all() and (centred <= 0.99).all(), centred
    assert percentile[1] < 0.8, percentile  # random ranking: the shift moves it off the truth
    held = (runs.centred[..., 0] <= runs.observed) & (runs.observed <= runs.centred[..., 1])
    assert held.mean() > 0.99  # and the interval holds the value it is reported with


def test_official_map_overestimates_the_infinite_population_value(runs):
    """Why the interval is for the expected value at this size, not for infinitely many
    videos: the official mAP of 300 videos exceeds the latter by more than its own spread."""
    population = Population(num_classes=30)
    infinite = [
        population_average_map(population, DetectionModel(s, false_positives=2.0))
        for s in (1.0, 0.0)
    ]
    excess = runs.expected[:2] - infinite
    assert (excess > runs.observed[:, :2].std(axis=0)).all(), (excess, infinite)


def test_bootstrap_reports_the_centred_interval():
    """What the stage and the score command print is the interval whose coverage is tested."""
    sets = Population(num_classes=5).sample(
        np.random.default_rng(3), 60, (DetectionModel(1.0), DetectionModel(0.0))
    )
    first, second, difference = bootstrap(sets, n_bootstrap=100, seed=4)
    drawn = bootstrap_samples(sets, n_bootstrap=100, seed=4)
    (obs_a, obs_b), (s_a, s_b) = drawn.observed, drawn.samples
    for key in obs_a:
        for got, obs, samples, bounds in (
            (first[key], obs_a[key], s_a[key], (0, 1)),
            (second[key], obs_b[key], s_b[key], (0, 1)),
            (difference[key], obs_a[key] - obs_b[key], s_a[key] - s_b[key], (-1, 1)),
        ):
            expected = centred_interval(obs, samples, 60, bounds=bounds)
            assert (got.mean, got.low, got.high) == pytest.approx(
                (expected.mean, expected.low, expected.high)
            )


def test_centred_interval_equals_the_percentile_interval_for_centred_draws():
    rng = np.random.default_rng(0)
    draws = rng.normal(0.0, 0.1, 4001)
    draws = np.concatenate([draws, -draws]) + 0.3  # mean exactly 0.3
    old, new = percentile_interval(0.3, draws, 10), centred_interval(0.3, draws, 10)
    assert new.low == pytest.approx(old.low) and new.high == pytest.approx(old.high)
    shifted = centred_interval(0.1, draws, 10)  # draws 0.2 above the observed value
    assert shifted.low == pytest.approx(old.low - 0.2) and shifted.mean == 0.1
    cut = centred_interval(0.1, draws, 10, bounds=(0.0, 1.0))  # mAP cannot be negative
    assert cut.low == 0.0 and cut.high == pytest.approx(shifted.high)


def test_coverage_bench_runs_and_prints_its_table():
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "interval_coverage.py"),
            "--scenario",
            "random",
            "--repeats",
            "4",
            "--bootstrap",
            "20",
            "--truth-repeats",
            "10",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith("first")]
    assert len(rows) == 2 and all(len(r) >= 9 for r in rows), done.stdout
