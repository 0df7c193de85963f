"""End to end: `dvc repro` and `dvc exp run -S clip_len=...` on a tiny demo, in a temporary clone.

This is the workflow users run; it checks that the stages chain, that the metrics exist, that
they change with clip_len, and that `dvc metrics diff` lists them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]

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
    "pretrain": {"epochs": 1, "batch_size": 8, "clips_per_segment": 2},
    "train": {"epochs": 1, "batch_size": 8, "clips_per_segment": 2},
    "extract": {"stride": 4},
    "evaluate": {"n_bootstrap": 200, "num_timeline_videos": 2},
}


def _merge(base: dict, update: dict) -> dict:
    for key, value in update.items():
        if isinstance(value, dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def _run(cmd: list[str], cwd: Path) -> str:
    env = {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@localhost",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@localhost",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, (
        f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done.stdout


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """The tracked files of this repository (minus pipeline outputs) as a fresh git+DVC repo."""
    dest = tmp_path_factory.mktemp("clone")
    files = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    for rel in files:
        if rel.startswith(("metrics/", "data/", "models/")) or rel == "dvc.lock":
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest / rel)
    params = yaml.safe_load((dest / "params.yaml").read_text())
    (dest / "params.yaml").write_text(yaml.safe_dump(_merge(params, TINY), sort_keys=False))
    _run(["git", "init", "-q"], dest)
    _run(["git", "add", "-A"], dest)
    _run(["git", "commit", "-qm", "tiny"], dest)
    return dest


def _weights(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)["model"]


def _assert_training_is_reproducible(clone: Path) -> None:
    """Pretraining and training again from scratch (checkpoints deleted) give the same weights:
    the same params give the same run, and so the same committed metrics."""
    first = {p: _weights(clone / p) for p in ("models/initial.pt", "models/trained/encoder.pt")}
    (clone / "models/pretrain/checkpoint.pt").unlink()
    (clone / "models/trained/checkpoint.pt").unlink()
    _run(["dvc", "repro", "--force", "--single-item", "init_encoder", "train"], clone)
    for path, weights in first.items():
        again = _weights(clone / path)
        assert all(torch.equal(weights[k], again[k]) for k in weights), f"{path} differs"


@pytest.mark.integration
def test_repro_then_exp_run_with_another_clip_len(clone):
    _run(["dvc", "repro"], clone)
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
    report = json.loads((clone / "data/reports/decode-target.json").read_text())
    assert report["counts"]["skipped"] == 0
    status = _run(["dvc", "status"], clone)
    # only the videos@ stages (always run: they re-list the videos folders) are not up to date
    changed = sorted(line for line in status.splitlines() if line and not line.startswith("\t"))
    assert changed == ["videos@pretrain:", "videos@target:"], status
    assert status.count("always changed") == 2, status
    again = _run(["dvc", "repro"], clone)  # same videos: same manifests, nothing else re-runs
    ran = [line for line in again.splitlines() if line.startswith("Running stage")]
    assert sorted(ran) == ["Running stage 'videos@pretrain':", "Running stage 'videos@target':"]
    _assert_training_is_reproducible(clone)

    _run(["git", "add", "-A"], clone)
    _run(["git", "commit", "-qm", "baseline run"], clone)
    _run(["dvc", "exp", "run", "-n", "short", "-S", "clip_len=4"], clone)
    shown = json.loads(_run(["dvc", "exp", "show", "--json"], clone))
    assert "short" in json.dumps(shown)
    diff = json.loads(_run(["dvc", "metrics", "diff", "HEAD", "short", "--json"], clone))
    changed = diff["metrics/separability.json"]
    assert "trained.within_video_auc" in changed
    assert any(v.get("diff") for v in changed.values()), "no metric changed with clip_len"
    text = _run(["dvc", "metrics", "diff", "HEAD", "short"], clone)
    assert "trained.within_video_auc" in text and "metrics/separability.json" in text
    params_diff = _run(["dvc", "params", "diff", "HEAD", "short"], clone)
    assert "clip_len" in params_diff
