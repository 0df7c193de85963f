"""End to end: `dvc repro` and `dvc exp run -S clip_len=...` on a tiny demo, in a temporary clone.

This is the workflow users run; it checks that the stages chain, that the metrics exist, that
they change with clip_len, and that `dvc metrics diff` lists them.
"""

from __future__ import annotations

import json
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from repo_copy import copy_tracked_files, merge_params, run

TINY = {
    "clip_len": 8,
    "demo": {
        "num_train_videos": 6,
        "num_valid_videos": 4,
        "num_empty_videos": 1,
        "min_duration": 8.0,
        "max_duration": 10.0,
        "size": 32,
        "trimmed_per_class": 3,
        "trimmed_duration": 1.5,
        "min_segment": 2.0,
        "max_segment": 3.0,
        "min_gap": 1.0,
        "max_segments": 2,
    },
    "decode": {"short_side": 20, "workers": 1},
    "transform": {"crop_size": 16},
    # schedules must fit the epochs (tsp_pretrain.config): milestones within them
    "pretrain": {"epochs": 1, "batch_size": 8, "clips_per_segment": 2, "lr_milestones": []},
    "train": {"epochs": 2, "batch_size": 8, "clips_per_segment": 2, "lr_milestones": [1]},
    "extract": {"stride": 4, "h5": True, "fixed_length": 10},  # the resume check covers them
    "evaluate": {"n_bootstrap": 200, "num_timeline_videos": 2},
}


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """The tracked files of this repository (minus pipeline outputs) as a fresh git+DVC repo."""
    dest = copy_tracked_files(tmp_path_factory.mktemp("clone"))
    params = yaml.safe_load((dest / "params.yaml").read_text())
    (dest / "params.yaml").write_text(yaml.safe_dump(merge_params(params, TINY), sort_keys=False))
    run(["git", "init", "-q"], dest)
    run(["git", "add", "-A"], dest)
    run(["git", "commit", "-qm", "tiny"], dest)
    return dest


def _assert_up_to_date(clone: Path) -> None:
    """`dvc status` lists only the always-run stages: `check` and the videos@ stages (they
    re-list the videos folders)."""
    status = run(["dvc", "status"], clone)
    changed = sorted(line for line in status.splitlines() if line and not line.startswith("\t"))
    assert changed == ["check:", "videos@pretrain:", "videos@target:"], status
    assert status.count("always changed") == 3, status


def _assert_training_is_reproducible(clone: Path) -> None:
    """Pretraining and training again from scratch (checkpoints deleted) give byte-identical
    encoder files: the same params give the same run, the same dvc.lock and the same metrics."""
    files = ("models/weights/demo-tac.pt", "models/initial.pt", "models/trained/encoder.pt")
    first = {p: (clone / p).read_bytes() for p in files}
    (clone / "models/pretrain/demo-tac/checkpoint.pt").unlink()
    (clone / "models/trained/checkpoint.pt").unlink()
    stages = ["pretrain@demo-tac", "init_encoder", "train"]
    run(["dvc", "repro", "--force", "--single-item", *stages], clone)
    assert [p for p in files if (clone / p).read_bytes() != first[p]] == []


# Code run before a stage script in a subprocess that must die by SIGKILL at a chosen point (a
# deterministic point in the work, never a timer).
_KILL_MID_EPOCH = """
import os, signal
import tsp_pretrain.training.loop as loop
real, calls = loop.forward_and_loss, [0]
def forward_and_loss(model, *args, **kwargs):
    if model.training:
        calls[0] += 1
        if calls[0] == KILL_AT:
            os.kill(os.getpid(), signal.SIGKILL)
    return real(model, *args, **kwargs)
loop.forward_and_loss = forward_and_loss
"""

_KILL_MID_WRITE = """
import os, signal
import numpy as np
real, calls = np.save, [0]
def save(path, array, *args, **kwargs):
    calls[0] += 1
    if calls[0] == KILL_AT:
        with open(path, "wb") as f:
            f.write(b"\\x93NUMPY half a file")
        os.kill(os.getpid(), signal.SIGKILL)
    return real(path, array, *args, **kwargs)
np.save = save
"""


def _stage_argv(clone: Path, stage: str, key: str | None = None, item: str | None = None) -> list:
    """The command of a dvc.yaml stage (a foreach stage's with ${key} and ${item} filled in)."""
    spec = yaml.safe_load((clone / "dvc.yaml").read_text())["stages"][stage]
    cmd = spec.get("do", spec)["cmd"].replace("${key}", key or "").replace("${item}", item or "")
    return shlex.split(cmd)[1:]  # drop "python"


def _run_killed(clone: Path, argv: list[str], patch: str, kill_at: int) -> None:
    """Run a stage script with ``patch`` applied; it must die by SIGKILL (not finish, not fail)."""
    code = (
        f"KILL_AT = {kill_at}\n{patch}\nimport runpy, sys\n"
        "sys.path.insert(0, 'stages')  # as `python stages/x.py` has it\n"
        f"sys.argv = {argv!r}\nrunpy.run_path({argv[0]!r}, run_name='__main__')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=clone, capture_output=True, text=True)
    assert done.returncode == -signal.SIGKILL, (
        f"expected SIGKILL, got {done.returncode}:\n{done.stderr[-3000:]}"
    )


def _snapshot(clone: Path, *folders: str) -> dict[str, bytes]:
    return {
        p.relative_to(clone).as_posix(): p.read_bytes()
        for folder in folders
        for p in sorted((clone / folder).rglob("*"))
        if p.is_file()
    }


def _assert_killed_runs_resume_to_identical_outputs(clone: Path) -> None:
    """SIGKILL in the middle of training's second epoch and in the middle of writing the second
    video's features; `dvc repro` then resumes both and gives byte-identical outputs to the
    uninterrupted run, with no partial file left for DVC to cache."""
    outputs = ("models/trained", "metrics/train", "data/features/trained", "metrics/roc")
    before = _snapshot(clone, *outputs) | _snapshot(clone, "metrics/separability.json")
    steps_per_epoch = json.loads((clone / "metrics/train/metrics.json").read_text())["seen"]
    steps_per_epoch = steps_per_epoch["steps"] // TINY["train"]["epochs"]
    assert steps_per_epoch >= 3, "the tiny config needs more steps for a mid-epoch kill"

    (clone / "models/trained/checkpoint.pt").unlink()
    _run_killed(clone, _stage_argv(clone, "train"), _KILL_MID_EPOCH, steps_per_epoch + 2)
    state = torch.load(clone / "models/trained/checkpoint.pt", weights_only=False)
    assert state["epoch"] == 0, "the killed run should have left the first epoch's checkpoint"

    shutil.rmtree(clone / "data/features/trained")
    argv = _stage_argv(clone, "extract", "trained", "models/trained/encoder.pt")
    _run_killed(clone, argv, _KILL_MID_WRITE, 2)
    assert list((clone / "data/features/trained").glob("*.partial*")), "no partial file left"

    log = run(["dvc", "repro"], clone)
    assert "Running stage 'train'" in log and "Running stage 'extract@trained'" in log
    after = _snapshot(clone, *outputs) | _snapshot(clone, "metrics/separability.json")
    assert after.keys() == before.keys(), sorted(after.keys() ^ before.keys())
    differing = [k for k in before if before[k] != after[k]]
    assert differing == [], f"the resumed runs changed {differing}"
    partial = [p for d in ("data", "models", "metrics") for p in (clone / d).rglob("*.partial*")]
    assert partial == []
    _assert_up_to_date(clone)


@pytest.mark.integration
def test_repro_then_exp_run_with_another_clip_len(clone):
    run(["dvc", "repro"], clone)
    metrics = json.loads((clone / "metrics/separability.json").read_text())
    for encoder in ("initial", "trained"):
        for key in (
            "fg_auc",
            "fg_ap",
            "fg_balanced_acc",
            "within_video_auc",
            "within_video_auc_ci_low",
            "within_video_auc_ci_high",
            "action_top1",
        ):
            assert 0.0 <= metrics[encoder][key] <= 1.0, (encoder, key)
    assert (clone / "metrics/timelines.png").stat().st_size > 0
    assert (clone / "metrics/train/metrics.json").is_file()
    localization = json.loads((clone / "metrics/localization.json").read_text())
    for encoder in ("initial", "trained"):
        for key in (
            "average_map",
            "map_50",
            "map_75",
            "map_95",
            "ar_1",
            "ar_5",
            "ar_10",
            "ar_100",
            "ar_auc",
            "average_map_ci_low",
            "average_map_ci_high",
        ):
            assert 0.0 <= localization[encoder][key] <= 1.0, (encoder, key)
    assert "average_map" in localization["trained_minus_initial"]
    for encoder in ("initial", "trained"):
        results = json.loads((clone / f"data/localization/{encoder}/detections.json").read_text())
        assert results["version"] == "VERSION 1.3" and len(results["results"]) == 4
        curve = (clone / f"metrics/ar_an/{encoder}.csv").read_text().splitlines()
        assert curve[0] == "an,ar" and len(curve) == 101
    report = json.loads((clone / "data/reports/decode-target.json").read_text())
    assert report["counts"]["skipped"] == 0
    _assert_up_to_date(clone)
    again = run(["dvc", "repro"], clone)  # same videos: same manifests, nothing else re-runs
    ran = [line for line in again.splitlines() if line.startswith("Running stage")]
    assert sorted(ran) == [
        "Running stage 'check':",
        "Running stage 'videos@pretrain':",
        "Running stage 'videos@target':",
    ]
    _assert_training_is_reproducible(clone)
    _assert_killed_runs_resume_to_identical_outputs(clone)

    run(["git", "add", "-A"], clone)
    run(["git", "commit", "-qm", "baseline run"], clone)
    run(["dvc", "exp", "run", "-n", "short", "-S", "clip_len=4"], clone)
    shown = json.loads(run(["dvc", "exp", "show", "--json"], clone))
    assert "short" in json.dumps(shown)
    diff = json.loads(run(["dvc", "metrics", "diff", "HEAD", "short", "--json"], clone))
    changed = diff["metrics/separability.json"]
    assert "trained.within_video_auc" in changed
    assert any(v.get("diff") for v in changed.values()), "no metric changed with clip_len"
    text = run(["dvc", "metrics", "diff", "HEAD", "short"], clone)
    assert "trained.within_video_auc" in text and "metrics/separability.json" in text
    params_diff = run(["dvc", "params", "diff", "HEAD", "short"], clone)
    assert "clip_len" in params_diff
    # every localization metric is listed with --all (a plain diff omits those that did not move:
    # on this tiny demo the trained encoder's average mAP can be the same at both clip lengths)
    listed = json.loads(run(["dvc", "metrics", "diff", "HEAD", "short", "--json", "--all"], clone))
    assert "trained.average_map" in listed["metrics/localization.json"]
    assert any(v.get("diff") for v in diff["metrics/localization.json"].values())
    assert "trained.ar_auc" in text and "metrics/localization.json" in text
    # the paired bootstrap of average mAP re-scores both runs' prediction files (dvc.api)
    compared = run(
        [
            sys.executable,
            "-m",
            "tsp_pretrain.experiments",
            "compare",
            "HEAD",
            "short",
            "--metric",
            "average_map",
            "--n-bootstrap",
            "100",
        ],
        clone,
    )
    assert "average_map (trained encoder), HEAD - short" in compared and "over 4 videos" in compared
