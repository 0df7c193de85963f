"""Comparing runs across git revisions and DVC experiment refs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tsp_pretrain.config import EvaluateParams
from tsp_pretrain.evaluation import MIN_VIDEOS_FOR_VERDICT
from tsp_pretrain.experiments import (
    WITHIN_VIDEO_AUC_DRAWS,
    collect,
    compare,
    default_draws,
    format_verdict,
    plot_sweep,
    resolve_revision,
    run_verdict,
    summary_table,
    sweep_table,
)
from tsp_pretrain.experiments.__main__ import main as experiments_main


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


# --- the minimum number of videos, compare's words, and verdict ---------------------------------


def _two_runs(tmp_path: Path, num_videos: int) -> Path:
    """A git repo whose HEAD gains a clear +0.1 AUC over experiment 'tac' on every video."""
    _git(tmp_path, "init", "-q")
    rng = np.random.default_rng(0)
    base = rng.uniform(0.6, 0.8, num_videos)
    weak = _commit_run(tmp_path, base, "tac")
    strong = _commit_run(tmp_path, base + 0.1 + rng.normal(0, 0.01, num_videos), "tsp")
    _git(tmp_path, "update-ref", f"refs/exps/{strong[:2]}/{strong[2:]}/tac", weak)
    return tmp_path


def test_compare_gives_no_verdict_below_the_minimum_however_clear(tmp_path, monkeypatch, capsys):
    n = MIN_VIDEOS_FOR_VERDICT - 1
    repo = _two_runs(tmp_path, n)
    assert compare("HEAD", "tac", repo=repo, n_bootstrap=500)["ci_low"] > 0.05
    monkeypatch.chdir(repo)
    experiments_main(["compare", "HEAD", "tac", "--n-bootstrap", "500"])
    out = capsys.readouterr().out
    assert f"over {n} videos (too few videos to tell: n={n} < {MIN_VIDEOS_FOR_VERDICT})" in out
    assert "above zero" not in out


def test_compare_calls_a_clear_difference_at_the_minimum(tmp_path, monkeypatch, capsys):
    n = MIN_VIDEOS_FOR_VERDICT
    monkeypatch.chdir(_two_runs(tmp_path, n))
    experiments_main(["compare", "HEAD", "tac", "--n-bootstrap", "500"])
    assert f"over {n} videos (above zero)" in capsys.readouterr().out
    experiments_main(["compare", "tac", "HEAD", "--n-bootstrap", "500"])
    assert f"over {n} videos (below zero)" in capsys.readouterr().out


def test_compare_draws_default_to_the_named_choice_and_the_config(tmp_path, monkeypatch, capsys):
    # within-video AUC: the command's own documented 10,000; localization metrics: the config's
    # evaluate.n_bootstrap default, as the stages draw
    assert default_draws("within_video_auc") == WITHIN_VIDEO_AUC_DRAWS == 10_000
    for metric in ("average_map", "ar_auc"):
        assert default_draws(metric) == EvaluateParams.model_fields["n_bootstrap"].default
    repo = _two_runs(tmp_path, MIN_VIDEOS_FOR_VERDICT)
    monkeypatch.chdir(repo)
    experiments_main(["compare", "HEAD", "tac"])
    expected = compare("HEAD", "tac", repo=repo, n_bootstrap=WITHIN_VIDEO_AUC_DRAWS)
    assert f"{expected['ci_low']:+.4f}, {expected['ci_high']:+.4f}]" in capsys.readouterr().out


def _verdict_run(
    repo: Path,
    num_videos: int,
    auc: tuple[float, float, float],
    loc: tuple[float, float, float] | None = None,
    health: dict | None = None,
) -> None:
    """The metrics files verdict reads, in a workspace: trained - initial (mean, low, high)."""
    (repo / "metrics" / "train").mkdir(parents=True, exist_ok=True)
    (repo / "params.yaml").write_text(yaml.safe_dump({"objective": "tsp"}))
    mean, low, high = auc
    (repo / "metrics" / "separability.json").write_text(
        json.dumps(
            {
                "trained": {"within_video_auc": 0.8 + mean},
                "initial": {"within_video_auc": 0.8},
                "trained_minus_initial": {
                    "within_video_auc": mean,
                    "ci_low": low,
                    "ci_high": high,
                    "num_videos": num_videos,
                },
            }
        )
    )
    if loc is not None:
        m, lo, hi = loc
        entry = {"average_map": 0.3, "ar_auc": 0.6}
        diff = {"average_map": m, "average_map_ci_low": lo, "average_map_ci_high": hi}
        diff |= {"ar_auc": 0.0, "ar_auc_ci_low": -0.05, "ar_auc_ci_high": 0.05}
        (repo / "metrics" / "localization.json").write_text(
            json.dumps(
                {
                    "trained": {"average_map": 0.3 + m, "ar_auc": 0.6},
                    "initial": entry,
                    "trained_minus_initial": diff | {"num_videos": num_videos + 3},
                }
            )
        )
    train = {"seen": {"steps": 10}} | ({} if health is None else {"health": health})
    (repo / "metrics" / "train" / "metrics.json").write_text(json.dumps(train))


HEALTHY = {
    "valid_loss_initial": 2.3,
    "valid_loss_last": 0.6,
    "valid_loss_rose": 0,
    "train_loss_first": 1.2,
    "train_loss_last": 0.35,
    "train_loss_rose": 0,
    "healthy": 1,
}


def _words(verdict) -> dict[str, str]:
    return {d.label: d.word for d in verdict.differences}


def test_verdict_words_and_answer_with_enough_videos(tmp_path):
    n = MIN_VIDEOS_FOR_VERDICT + 9
    _verdict_run(tmp_path, n, (0.08, 0.04, 0.12), (-0.05, -0.09, -0.01), HEALTHY)
    verdict = run_verdict("workspace", tmp_path)
    assert _words(verdict) == {
        "within-video AUC": "helped",
        "average mAP": "hurt",
        "AR AUC": "no clear difference",
    }
    text = format_verdict(verdict)
    assert f"within-video AUC{n:>9}" in text and f"average mAP{n + 3:>14}" in text
    assert "+0.0800 [+0.0400, +0.1200]" in text
    assert "training health: ok (validation loss 2.3 before training -> 0.6" in text
    assert text.splitlines()[-1] == (
        "answer: mixed: TSP helped within-video AUC but hurt average mAP; "
        "no clear difference in AR AUC"
    )


def test_verdict_below_the_minimum_says_too_few_videos(tmp_path):
    _verdict_run(tmp_path, 3, (0.3, 0.2, 0.4), health=HEALTHY)  # a clear-looking interval
    verdict = run_verdict("workspace", tmp_path)
    assert _words(verdict) == {"within-video AUC": "too few videos to tell"}
    text = format_verdict(verdict)
    assert f"too few videos to tell: n=3 < {MIN_VIDEOS_FOR_VERDICT}" in text
    assert "helped" not in text and "no metrics/localization.json" in text
    assert text.splitlines()[-1] == (
        f"answer: cannot tell: too few validation videos (n=3; a verdict needs "
        f"{MIN_VIDEOS_FOR_VERDICT})"
    )
    _verdict_run(tmp_path, 3, (-0.38, -0.45, -0.3), (-0.38, -0.41, -0.33))  # the user's run
    text = format_verdict(run_verdict("workspace", tmp_path))
    assert "hurt" not in text
    assert text.splitlines()[-1] == (
        f"answer: cannot tell: too few validation videos (n=3, 6; a verdict needs "
        f"{MIN_VIDEOS_FOR_VERDICT}); the trained encoder scores below the initial one on "
        "within-video AUC, average mAP"
    )


def test_verdict_shows_the_health_flags_and_exits_0(tmp_path, monkeypatch, capsys):
    flagged = HEALTHY | {"valid_loss_last": 2.95, "valid_loss_rose": 1, "healthy": 0}
    _verdict_run(tmp_path, 30, (-0.3, -0.4, -0.2), (-0.2, -0.3, -0.1), flagged)
    monkeypatch.chdir(tmp_path)
    experiments_main(["verdict"])  # returns: exit status 0
    out = capsys.readouterr().out
    assert "training health: FLAGGED" in out
    assert "validation loss rose: 2.3 before training -> 2.95 after the last epoch" in out
    assert "look at train.lr_backbone, train.lr_heads, train.warmup_epochs" in out
    assert out.splitlines()[-1] == (
        "answer: no: TSP fine-tuning hurt within-video AUC, average mAP; no clear difference "
        "in AR AUC; training was flagged unhealthy (see above)"
    )


def test_verdict_of_a_run_without_health_or_evaluation(tmp_path, monkeypatch):
    _verdict_run(tmp_path, 30, (0.0, -0.01, 0.01))
    verdict = run_verdict("workspace", tmp_path)
    text = format_verdict(verdict)
    assert "training health: not recorded" in text
    assert text.splitlines()[-1] == (
        "answer: no clear difference from the initial encoder (within-video AUC)"
    )
    (tmp_path / "metrics" / "separability.json").unlink()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stopped:
        experiments_main(["verdict"])
    assert stopped.value.code == 2
