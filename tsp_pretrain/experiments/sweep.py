"""A one-parameter sweep over DVC experiments (clip length, ...): a table and a figure.

The runs of a sweep are the baseline commit and every experiment based on it whose params
differ from the baseline's only in the swept key and ``objective`` (TSP or TAC); other
experiments of the same baseline (seeds, GVF off, ...) are listed as left out, with the keys
that set them apart. Each run's numbers come from its committed metrics, intervals included.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from tsp_pretrain.atomic import atomic_path
from tsp_pretrain.experiments.compare import SEPARABILITY, _localization, read_json
from tsp_pretrain.experiments.revisions import (
    baseline_experiments,
    read_params,
    short_name,
)

SWEPT_WITH = "objective"


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists stay values)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out |= flatten(value, name + ".")
        else:
            out[name] = value
    return out


@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep: its name, swept value, objective and metrics of both encoders."""

    name: str
    value: Any
    objective: str
    separability: dict
    localization: dict | None


def collect(
    key: str, baseline: str = "HEAD", repo: Path = Path()
) -> tuple[list[SweepRun], list[str]]:
    """The sweep's runs (sorted by objective then value) and one line per run left out."""
    sha, refs = baseline_experiments(baseline, repo)
    base = flatten(read_params(sha, repo))
    if key not in base:
        raise ValueError(f"{key!r} is not a params.yaml key of the baseline {sha[:7]}")
    runs: dict[tuple[str, Any], SweepRun] = {}
    left_out = []
    for name in [sha, *refs]:
        params = flatten(read_params(name, repo))
        differ = sorted(k for k in base.keys() | params.keys() if base.get(k) != params.get(k))
        other = [k for k in differ if k not in (key, SWEPT_WITH)]
        label = short_name(name) if name != sha else f"{sha[:7]} (baseline)"
        if other:
            left_out.append(f"{label}: also changes {', '.join(other)}")
            continue
        try:
            sep = read_json(name, SEPARABILITY, repo)
        except FileNotFoundError:
            left_out.append(f"{label}: not evaluated")
            continue
        point = (params[SWEPT_WITH], params[key])
        if point in runs:
            left_out.append(f"{label}: same point as {runs[point].name}")
            continue
        runs[point] = SweepRun(
            label, params[key], params[SWEPT_WITH], sep, _localization_pair(name, repo)
        )
    ordered = sorted(runs.values(), key=lambda r: (r.objective, r.value))
    return ordered, left_out


def _localization_pair(name: str, repo: Path) -> dict | None:
    trained = _localization(name, "trained", repo)
    if trained is None:
        return None
    return {"trained": trained, "initial": _localization(name, "initial", repo)}


def _ci(entry: dict | None, key: str) -> str:
    if entry is None:
        return "-"
    return f"{entry[key]:.3f} [{entry[key + '_ci_low']:.3f}, {entry[key + '_ci_high']:.3f}]"


def sweep_table(runs: list[SweepRun], key: str) -> str:
    """Markdown: per run, both encoders' within-video AUC and average mAP with 95% intervals."""
    rows = [
        f"| objective | {key} | within-video AUC, trained | within-video AUC, initial | "
        "average mAP, trained | average mAP, initial | AR AUC, trained | run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        loc = r.localization or {}
        ar = f"{loc['trained']['ar_auc']:.3f}" if loc else "-"
        rows.append(
            f"| {r.objective} | {r.value} | {_ci(r.separability['trained'], 'within_video_auc')} | "
            f"{_ci(r.separability['initial'], 'within_video_auc')} | "
            f"{_ci(loc.get('trained'), 'average_map')} | {_ci(loc.get('initial'), 'average_map')}"
            f" | {ar} | {r.name} |"
        )
    return "\n".join(rows)


def plot_sweep(runs: list[SweepRun], key: str, path: str | Path) -> None:
    """Two panels (within-video AUC, average mAP) against the swept value: one line per
    objective plus the initial encoder, with the 95% bootstrap intervals as error bars."""
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    axes = fig.subplots(1, 2)
    panels = (
        ("within-video AUC", "within_video_auc", "sep"),
        ("average mAP", "average_map", "loc"),
    )
    for ax, (title, metric, source) in zip(axes, panels, strict=True):
        lines: dict[str, list[tuple[Any, dict]]] = {}
        for r in runs:
            tables = (
                r.separability
                if source == "sep"
                else (r.localization or {"trained": None, "initial": None})
            )
            if tables.get("trained") is not None:
                lines.setdefault(r.objective.upper(), []).append((r.value, tables["trained"]))
            if tables.get("initial") is not None:
                initial = lines.setdefault("initial encoder", [])
                if r.value not in [v for v, _ in initial]:
                    initial.append((r.value, tables["initial"]))
        for k, (name, points) in enumerate(sorted(lines.items())):
            points.sort(key=lambda p: p[0])
            x = np.array([p[0] for p in points], dtype=float)
            y = np.array([p[1][metric] for p in points])
            low = y - np.array([p[1][metric + "_ci_low"] for p in points])
            high = np.array([p[1][metric + "_ci_high"] for p in points]) - y
            style = {"ls": "--", "color": "grey"} if name == "initial encoder" else {}
            offset = 1 + 0.03 * (k - 1)  # keep the error bars of equal x apart
            ax.errorbar(x * offset, y, yerr=[low, high], marker="o", capsize=3, label=name, **style)
        values = sorted({float(r.value) for r in runs})
        if values and all(v > 0 for v in values):
            ax.set_xscale("log", base=2)
        ax.set_xticks(values, [f"{v:g}" for v in values])
        ax.minorticks_off()
        ax.set_xlabel(key)
        ax.set_title(f"{title} (validation videos, 95% bootstrap CI)", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
