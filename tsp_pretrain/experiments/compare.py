"""Comparing runs video by video, and tables of several runs' metrics.

`dvc metrics diff` shows how each metric moved; whether a change is more than noise needs both
runs' per-video results, paired by video. Within-video AUC is a mean of per-video values (the
committed ``metrics/per_video_auc.csv``); average mAP and the AR AUC are not, so their paired
bootstrap re-scores both runs' prediction files (``data/localization``) on the same draws of
the validation videos. A difference is called above or below zero only from
:data:`~tsp_pretrain.evaluation.bootstrap.MIN_VIDEOS_FOR_VERDICT` videos on.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from tsp_pretrain.config import EvaluateParams
from tsp_pretrain.evaluation import difference_sign, paired_bootstrap_tables, too_few_videos
from tsp_pretrain.experiments.revisions import (
    read_output,
    read_params,
    read_text,
    short_name,
)
from tsp_pretrain.localization.ground_truth import ground_truth_from_tables
from tsp_pretrain.localization.predictions import parse_predictions
from tsp_pretrain.localization.scoring import Matched, bootstrap, match, prepare_both
from tsp_pretrain.localization.segments import tiou_thresholds
from tsp_pretrain.tables import read_segments_csv, read_videos_csv

PER_VIDEO = "metrics/per_video_auc.csv"
SEPARABILITY = "metrics/separability.json"
LOCALIZATION = "metrics/localization.json"
ANNOTATIONS = "data/annotations/target"
PREDICTIONS = "data/localization/{encoder}/{kind}.json"
#: Metrics `compare` knows: within-video AUC (per-video mean), or re-scored localization.
METRICS = ("within_video_auc", "average_map", "ar_auc")
#: The command's draws for within-video AUC (a deliberate choice, above the stages'
#: ``evaluate.n_bootstrap``): its paired bootstrap is a mean of one number per video, so 10,000
#: draws take milliseconds and make the interval's ends steadier in the 4th decimal it prints;
#: docs/results.md's table of paired differences was made with it. The localization metrics
#: re-score both runs on every draw and take the stages' default (:func:`default_draws`).
WITHIN_VIDEO_AUC_DRAWS = 10_000


def default_draws(metric: str) -> int:
    """The ``compare`` command's bootstrap draws for ``metric`` when none are asked for:
    :data:`WITHIN_VIDEO_AUC_DRAWS` for within-video AUC, else the ``evaluate.n_bootstrap``
    default of :mod:`tsp_pretrain.config` (the stages' draws)."""
    if metric == "within_video_auc":
        return WITHIN_VIDEO_AUC_DRAWS
    return EvaluateParams.model_fields["n_bootstrap"].default


def read_json(name: str, path: str, repo: Path = Path()) -> dict:
    """A JSON file of revision/experiment ``name`` (``workspace`` = the file on disk)."""
    return json.loads(read_text(name, path, repo))


def read_per_video(name: str, repo: Path = Path(), encoder: str = "trained") -> pd.DataFrame:
    """The per-video AUC table of ``name`` (``workspace`` = the files on disk)."""
    text = read_text(name, PER_VIDEO, repo)
    table = pd.read_csv(io.StringIO(text), dtype={"video_id": str})
    return table[table["encoder"] == encoder].drop(columns="encoder")


def _localization_run(name: str, encoder: str, repo: Path):
    params = read_params(name, repo)
    subset = params["datasets"]["target"]["valid_subset"]
    truth = ground_truth_from_tables(
        read_videos_csv(io.StringIO(read_output(name, f"{ANNOTATIONS}/videos.csv", repo))),
        read_segments_csv(io.StringIO(read_output(name, f"{ANNOTATIONS}/segments.csv", repo))),
        subset,
        f"{name}:{ANNOTATIONS}",
    )
    tables = {
        kind: parse_predictions(
            read_output(name, path := PREDICTIONS.format(encoder=encoder, kind=kind), repo),
            f"{name}:{path}",
        )
        for kind in ("detections", "proposals")
    }
    return params, truth, tables


def localization_matches(
    names: tuple[str, str], encoder: str, repo: Path = Path()
) -> tuple[Matched, Matched]:
    """Both runs' predictions matched once against their (identical) ground truth."""
    runs = [_localization_run(n, encoder, repo) for n in names]
    (pa, ta, _), (pb, tb, _) = runs
    if ta.videos != tb.videos or not ta.segments.reset_index(drop=True).equals(
        tb.segments.reset_index(drop=True)
    ):
        raise ValueError(
            f"{names[0]} and {names[1]} were evaluated on different validation videos or ground "
            "truth (another demo.seed or dataset?); a paired comparison needs the same videos"
        )
    tiou = pa.get("localize", {}).get("tiou", "activitynet")
    if tiou != pb.get("localize", {}).get("tiou", "activitynet"):
        raise ValueError(f"{names[0]} and {names[1]} use different localize.tiou protocols")
    out = []
    for _, truth, tables in runs:
        det, prop, _ = prepare_both(tables["detections"], tables["proposals"], truth)
        out.append(match(truth, det, prop, thresholds=tiou_thresholds(tiou), videos=truth.videos))
    return out[0], out[1]


def compare(
    a: str,
    b: str,
    *,
    metric: str = "within_video_auc",
    encoder: str = "trained",
    n_bootstrap: int,
    seed: int = 0,
    repo: Path = Path(),
) -> dict:
    """Mean difference ``a - b`` of ``metric`` with a paired bootstrap interval over videos
    (``n_bootstrap`` draws; the command's default is :func:`default_draws`)."""
    if metric == "within_video_auc":
        interval = paired_bootstrap_tables(
            read_per_video(a, repo, encoder),
            read_per_video(b, repo, encoder),
            n_bootstrap=n_bootstrap,
            seed=seed,
        )
    elif metric in METRICS:
        matched = localization_matches((a, b), encoder, repo)
        interval = bootstrap(list(matched), n_bootstrap=n_bootstrap, seed=seed)[2][metric]
    else:
        raise ValueError(f"unknown metric {metric!r}; use one of {METRICS}")
    return {
        "a": a,
        "b": b,
        "metric": metric,
        "encoder": encoder,
        "mean_difference": round(interval.mean, 4),
        "ci_low": round(interval.low, 4),
        "ci_high": round(interval.high, 4),
        "num_videos": interval.num_videos,
    }


#: What ``compare`` says of A - B, per sign of its interval (below the minimum: too few videos).
COMPARE_WORDS = {"above": "above zero", "below": "below zero", "contains": "contains zero"}


def format_comparison(result: dict) -> str:
    """One line for a :func:`compare` result: the difference, its interval, n and the word."""
    r, n = result, result["num_videos"]
    sign = difference_sign(r["ci_low"], r["ci_high"], n)
    word = too_few_videos(n) if sign == "too_few" else COMPARE_WORDS[sign]
    return (
        f"{r['metric']} ({r['encoder']} encoder), {r['a']} - {r['b']}: "
        f"{r['mean_difference']:+.4f}, 95% CI [{r['ci_low']:+.4f}, {r['ci_high']:+.4f}] "
        f"over {n} videos ({word})"
    )


def _with_ci(entry: dict, key: str) -> str:
    return f"{entry[key]:.3f} [{entry[key + '_ci_low']:.3f}, {entry[key + '_ci_high']:.3f}]"


def _localization(name: str, encoder: str, repo: Path) -> dict | None:
    """One entry (an encoder, or ``trained_minus_initial``) of ``metrics/localization.json``;
    None for runs made before the localize stage existed."""
    try:
        return read_json(name, LOCALIZATION, repo).get(encoder)
    except FileNotFoundError:
        return None


def _cells(sep: dict, loc: dict | None) -> str:
    separability = f"{_with_ci(sep, 'within_video_auc')} | {sep['fg_auc']:.3f} | "
    separability += f"{sep['action_top1']:.3f}"
    if loc is None:
        return separability + " | - | - | - | -"
    return (
        f"{separability} | {_with_ci(loc, 'average_map')} | {loc.get('map_50', np.nan):.3f} | "
        f"{loc['ar_100']:.3f} | {loc['ar_auc']:.3f}"
    )


def summary_table(names: list[str], repo: Path = Path(), initial: bool = True) -> str:
    """Markdown table of the trained encoder's separability, localization and training, per run
    ('-' for localization of runs made before the localize stage existed). With ``initial``, a
    first row gives the initial encoder of the first run."""
    rows = [
        "| run | within-video AUC [95% CI] | pooled AUC | action top-1 | average mAP [95% CI] | "
        "mAP@0.5 | AR@100 | AR AUC | trained - initial: within-video AUC [95% CI] | "
        "trained - initial: average mAP [95% CI] | steps | fg clips seen |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    if initial:
        sep = read_json(names[0], SEPARABILITY, repo)["initial"]
        cells = _cells(sep, _localization(names[0], "initial", repo))
        rows.append(f"| initial encoder ({short_name(names[0])}) | {cells} | | | | |")
    for name in names:
        sep = read_json(name, SEPARABILITY, repo)
        seen = read_json(name, "metrics/train/metrics.json", repo).get("seen", {})
        d = sep["trained_minus_initial"]
        gain = _localization(name, "trained_minus_initial", repo)
        map_gain = (
            "-"
            if gain is None
            else f"{gain['average_map']:+.3f} [{gain['average_map_ci_low']:+.3f}, "
            f"{gain['average_map_ci_high']:+.3f}]"
        )
        rows.append(
            f"| {short_name(name)} | {_cells(sep['trained'], _localization(name, 'trained', repo))}"
            f" | {d['within_video_auc']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}] | "
            f"{map_gain} | {seen.get('steps', '-')} | {seen.get('fg_clips', '-')} |"
        )
    return "\n".join(rows)
