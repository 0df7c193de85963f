"""Did TSP help? One run's trained - initial differences, training health and a one-line answer.

Everything comes from the run's committed metrics: ``metrics/separability.json`` (within-video
AUC), ``metrics/localization.json`` (average mAP, AR AUC; absent for runs made before the
localize stage) and the ``health`` block of ``metrics/train/metrics.json`` (absent for runs
made before the health checks). Each difference gets one word from
:class:`~tsp_pretrain.evaluation.verdict.Difference` (no verdict below
:data:`~tsp_pretrain.evaluation.bootstrap.MIN_VIDEOS_FOR_VERDICT` videos); TSP against TAC is
``compare``'s job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tsp_pretrain.config import Params
from tsp_pretrain.evaluation import MIN_VIDEOS_FOR_VERDICT, Difference, separability_differences
from tsp_pretrain.experiments.compare import LOCALIZATION, SEPARABILITY, read_json
from tsp_pretrain.experiments.revisions import WORKSPACE, read_params, short_name
from tsp_pretrain.localization import localization_differences
from tsp_pretrain.training.health import HEALTH_BLOCK, keys_to_check, problems

TRAIN_METRICS = "metrics/train/metrics.json"


@dataclass(frozen=True)
class RunVerdict:
    """What ``verdict`` prints for one run."""

    name: str
    objective: str
    differences: list[Difference]
    missing: list[str]  # metrics files the run does not have
    health: Mapping[str, float] | None  # None: not recorded


def _optional_json(name: str, path: str, repo: Path) -> dict | None:
    try:
        return read_json(name, path, repo)
    except FileNotFoundError:
        return None


def run_verdict(name: str = WORKSPACE, repo: Path = Path()) -> RunVerdict:
    """Read the run's metrics; separability is required, the rest is reported when absent."""
    separability = _optional_json(name, SEPARABILITY, repo)
    if separability is None:
        raise FileNotFoundError(
            f"{name}: no {SEPARABILITY} (run `dvc repro evaluate`, or name an evaluated run)"
        )
    differences = separability_differences(separability)
    missing = []
    localization = _optional_json(name, LOCALIZATION, repo)
    if localization is None:
        missing.append(LOCALIZATION)
    else:
        differences += localization_differences(localization)
    train = _optional_json(name, TRAIN_METRICS, repo)
    objective = read_params(name, repo).get("objective", Params().objective)  # omitted: default
    return RunVerdict(
        name=name,
        objective=str(objective).upper(),
        differences=differences,
        missing=missing,
        health=None if train is None else train.get(HEALTH_BLOCK),
    )


def _table(differences: list[Difference]) -> list[str]:
    rows = [
        f"{'metric':<18}{'videos':>7}{'trained':>9}{'initial':>9}"
        f"  {'trained - initial [95% CI]':<29}verdict"
    ]
    for d in differences:
        rows.append(
            f"{d.label:<18}{d.num_videos:>7}{d.trained:>9.4f}{d.initial:>9.4f}"
            f"  {d.interval:<29}{d.explained()}"
        )
    return rows


def health_lines(health: Mapping[str, float] | None) -> list[str]:
    """The training-health part of the report: healthy, the flags with numbers, or unknown."""
    if health is None:
        return ["training health: not recorded (a run made before the health checks)"]
    found = problems(health)
    if not found:
        return [
            f"training health: ok (validation loss {health['valid_loss_initial']:.4g} before "
            f"training -> {health['valid_loss_last']:.4g}; train loss "
            f"{health['train_loss_first']:.4g} -> {health['train_loss_last']:.4g})"
        ]
    return [
        "training health: FLAGGED",
        *(f"  {line}" for line in found),
        f"  look at {keys_to_check('train')}",
    ]


def _labels(differences: list[Difference], word: str) -> str:
    return ", ".join(d.label for d in differences if d.word == word)


def answer(verdict: RunVerdict) -> str:
    """The one-line answer: yes / no / mixed / no clear difference / cannot tell, then what the
    words leave out (the point estimates below the initial encoder's, unhealthy training)."""
    objective, ds = verdict.objective, verdict.differences
    helped, hurt = _labels(ds, "helped"), _labels(ds, "hurt")
    unclear, few = _labels(ds, "no clear difference"), _labels(ds, "too few videos to tell")
    if helped and hurt:
        text = f"mixed: {objective} helped {helped} but hurt {hurt}"
    elif hurt:
        text = f"no: {objective} fine-tuning hurt {hurt}"
    elif helped:
        text = f"yes: {objective} helped {helped}"
    elif few and not unclear:
        counts = sorted({d.num_videos for d in ds})
        text = (
            f"cannot tell: too few validation videos (n={', '.join(map(str, counts))}; a "
            f"verdict needs {MIN_VIDEOS_FOR_VERDICT})"
        )
        few = ""
    else:
        text = f"no clear difference from the initial encoder ({unclear})"
        unclear = ""
    if unclear and (helped or hurt):
        text += f"; no clear difference in {unclear}"
    if few:
        text += f"; too few videos to tell for {few}"
    below = ", ".join(d.label for d in ds if d.word != "hurt" and d.trained < d.initial)
    if below:
        text += f"; the trained encoder scores below the initial one on {below}"
    if verdict.health is not None and problems(verdict.health):
        text += "; training was flagged unhealthy (see above)"
    return text


def format_verdict(verdict: RunVerdict) -> str:
    """The terminal report of ``python -m tsp_pretrain.experiments verdict``."""
    lines = [
        f"Did {verdict.objective} fine-tuning help?  run: {short_name(verdict.name)}",
        "trained minus initial encoder on the validation videos, paired 95% bootstrap intervals",
        f"(no verdict from fewer than {MIN_VIDEOS_FOR_VERDICT} videos: docs/evaluation.md)",
        "",
        *_table(verdict.differences),
        *(f"{'(not evaluated)':<18} no {path}" for path in verdict.missing),
        "",
        *health_lines(verdict.health),
        "",
        f"answer: {answer(verdict)}",
    ]
    return "\n".join(lines)
