"""Comparing runs across git revisions and DVC experiment refs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tsp_pretrain.experiments import (
    collect,
    compare,
    plot_sweep,
    resolve_revision,
    summary_table,
    sweep_table,
)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()


def _commit_run(repo: Path, aucs: np.ndarray, message: str) -> str:
    (repo / "metrics" / "train").mkdir(parents=True, exist_ok=True)
    ids = [f"v{i}" for i in range(len(aucs))]
    pd.concat(
        [
            pd.DataFrame({"video_id": ids, "auc": aucs, "encoder": "trained"}),
            pd.DataFrame({"video_id": ids, "auc": np.full(len(aucs), 0.5), "encoder": "initial"}),
        ]
    ).to_csv(repo / "metrics" / "per_video_auc.csv", index=False)
    enc = {
        "within_video_auc": float(aucs.mean()),
        "within_video_auc_ci_low": 0.0,
        "within_video_auc_ci_high": 1.0,
        "fg_auc": 0.7,
        "fg_ap": 0.6,
        "fg_balanced_acc": 0.65,
        "action_top1": 0.9,
    }
    (repo / "metrics" / "separability.json").write_text(
        json.dumps(
            {
                "trained": enc,
                "initial": enc | {"within_video_auc": 0.5},
                "trained_minus_initial": {"within_video_auc": 0.1, "ci_low": 0.0, "ci_high": 0.2},
            }
        )
    )
    (repo / "metrics" / "train" / "metrics.json").write_text(
        json.dumps({"seen": {"steps": 10, "fg_clips": 80}})
    )
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message)
    return _git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path):
    _git(tmp_path, "init", "-q")
    rng = np.random.default_rng(0)
    base = rng.uniform(0.6, 0.8, 30)
    weak = _commit_run(tmp_path, base, "tac")
    strong = _commit_run(tmp_path, base + 0.1 + rng.normal(0, 0.01, 30), "tsp")
    # A DVC experiment ref, named per baseline commit as DVC does.
    _git(tmp_path, "update-ref", f"refs/exps/{strong[:2]}/{strong[2:]}/tac", weak)
    return tmp_path


def test_compare_finds_a_clear_difference_and_none_against_itself(repo):
    better = compare("HEAD", "tac", repo=repo, n_bootstrap=2000)
    assert better["ci_low"] > 0.08 and better["num_videos"] == 30
    same = compare("HEAD", "HEAD", repo=repo, n_bootstrap=2000)
    assert same["mean_difference"] == 0.0


def test_a_name_on_several_baselines_resolves_to_the_nearest_one_in_history(repo):
    weak, strong = _git(repo, "rev-parse", "HEAD~1"), _git(repo, "rev-parse", "HEAD")
    _git(repo, "update-ref", f"refs/exps/{weak[:2]}/{weak[2:]}/tac", weak)
    (repo / "README.md").write_text("a later commit that is no experiment's baseline\n")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "docs")
    assert resolve_revision("tac", repo) == f"refs/exps/{strong[:2]}/{strong[2:]}/tac"
    _git(repo, "checkout", "-q", weak)
    assert resolve_revision("tac", repo) == f"refs/exps/{weak[:2]}/{weak[2:]}/tac"
    _git(repo, "update-ref", "refs/exps/00/" + "0" * 38 + "/other", weak)
    _git(repo, "update-ref", "refs/exps/11/" + "1" * 38 + "/other", weak)
    with pytest.raises(ValueError, match="several baselines"):
        resolve_revision("other", repo)


def test_experiment_names_resolve_to_their_ref_and_unknown_names_fail(repo):
    assert resolve_revision("tac", repo).startswith("refs/exps/")
    with pytest.raises(ValueError, match="neither a DVC experiment nor a git revision"):
        resolve_revision("nope", repo)


def test_summary_table_has_a_row_per_run(repo):
    table = summary_table(["HEAD", "tac"], repo)
    lines = table.splitlines()
    assert len(lines) == 5 and lines[2].startswith("| initial encoder (HEAD) | 0.500")
    assert lines[3].startswith("| HEAD |") and "| - | 10 | 80 |" in lines[4]
    assert "| - | - | - | - |" in lines[3]  # no localization metrics in these runs


def _params(repo: Path, **top) -> None:
    params = {"clip_len": 16, "objective": "tsp", "seed": 0, "train": {"epochs": 2}} | top
    (repo / "params.yaml").write_text(yaml.safe_dump(params))


def _localization(repo: Path, trained_map: float) -> None:
    entry = {
        "average_map": trained_map,
        "average_map_ci_low": trained_map - 0.1,
        "average_map_ci_high": trained_map + 0.1,
        "map_50": 0.6,
        "ar_100": 0.7,
        "ar_auc": 0.65,
    }
    (repo / "metrics").mkdir(exist_ok=True)
    (repo / "metrics" / "localization.json").write_text(
        json.dumps({"trained": entry, "initial": entry | {"average_map": 0.2}})
    )


def test_sweep_collects_the_runs_that_differ_only_in_the_key_and_objective(tmp_path):
    repo = tmp_path
    _git(repo, "init", "-q")
    rng = np.random.default_rng(0)
    _params(repo)
    _localization(repo, 0.4)
    base = _commit_run(repo, rng.uniform(0.6, 0.8, 10), "baseline")
    runs = {
        "c8": ({"clip_len": 8}, 0.3),
        "c32": ({"clip_len": 32}, 0.5),
        "tac16": ({"objective": "tac"}, 0.2),
        "tac32": ({"objective": "tac", "clip_len": 32}, 0.25),
        "seed1": ({"seed": 1}, 0.45),  # another key: not part of the sweep
        "again16": ({}, 0.4),  # the baseline's own point: reported, not drawn twice
    }
    for name, (change, value) in runs.items():
        _git(repo, "checkout", "-q", base)
        _params(repo, **change)
        _localization(repo, value)
        sha = _commit_run(repo, rng.uniform(0.6, 0.8, 10), name)
        _git(repo, "update-ref", f"refs/exps/{base[:2]}/{base[2:]}/{name}", sha)
    _git(repo, "checkout", "-q", base)
    found, left_out = collect("clip_len", "HEAD", repo)
    assert [(r.objective, r.value, r.name) for r in found] == [
        ("tac", 16, "tac16"),
        ("tac", 32, "tac32"),
        ("tsp", 8, "c8"),
        ("tsp", 16, f"{base[:7]} (baseline)"),
        ("tsp", 32, "c32"),
    ]
    assert any("seed1: also changes seed" in line for line in left_out)
    assert any(line.startswith("again16: same point") for line in left_out)
    table = sweep_table(found, "clip_len").splitlines()
    assert len(table) == 7 and "| tsp | 32 |" in table[6] and "0.500 [0.400, 0.600]" in table[6]
    rows = summary_table(["HEAD", "c8"], repo).splitlines()
    assert "| 0.300 [0.200, 0.400] | 0.600 | 0.700 | 0.650 |" in rows[4]  # localization cells
    plot_sweep(found, "clip_len", tmp_path / "sweep.png")
    assert (tmp_path / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match=r"not a params\.yaml key"):
        collect("clip_length", "HEAD", repo)
