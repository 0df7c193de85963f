"""`dvc repro` with a broken entry in the videos folder, videos in subfolders, and a labels file.

A dangling link used to abort `dvc repro` before any stage ran (DVC hashed the videos folder as a
dependency). Now it is a reported skip, and editing the labels file re-runs the annotations.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml
from videos import write_video

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], cwd: Path) -> str:
    env = {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "PYTHONPATH": str(cwd),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, (
        f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done.stdout + done.stderr


def _repo(dest: Path) -> Path:
    """The stage scripts, library, dvc.yaml and params.yaml in a fresh git+DVC repository."""
    for rel in ("stages", "tsp_pretrain"):
        shutil.copytree(ROOT / rel, dest / rel, ignore=shutil.ignore_patterns("__pycache__"))
    for rel in ("dvc.yaml", "params.yaml", ".gitignore"):
        shutil.copy2(ROOT / rel, dest / rel)
    params = yaml.safe_load((dest / "params.yaml").read_text())
    params["clip_len"] = 8
    params["datasets"]["target"] = {
        "format": "activitynet",
        "annotations": "inputs/anet.json",
        "videos": "inputs/videos",  # the parent of train/ and valid/
        "labels": "inputs/labels.json",
    }
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    inputs = dest / "inputs"
    write_video(inputs / "videos" / "train" / "v_a.mp4", 60)
    write_video(inputs / "videos" / "valid" / "v_b.mp4", 60)
    (inputs / "videos" / "train" / "v_gone.mp4").symlink_to(dest / "deleted.mp4")
    segment = [{"segment": [0.2, 1.5], "label": "Jump"}]
    database = {
        "a": {"subset": "training", "duration": 2.0, "annotations": segment},
        "gone": {"subset": "training", "duration": 2.0, "annotations": segment},
        "b": {"subset": "validation", "duration": 2.0, "annotations": segment},
    }
    (inputs / "anet.json").write_text(json.dumps({"database": database}))
    (inputs / "labels.json").write_text('["Jump", "Run"]')
    _run(["git", "init", "-q"], dest)
    _run(["dvc", "init", "-q"], dest)
    return dest


def test_dangling_link_is_a_reported_skip_and_labels_edits_rerun_annotations(tmp_path):
    repo = _repo(tmp_path)
    log = _run(["dvc", "repro", "annotations@target"], repo)
    assert "videos per subset" in log

    report = json.loads((repo / "data/reports/videos-target.json").read_text())
    assert report["files"] == 2
    assert [e["path"] for e in report["skipped_entries"]] == ["train/v_gone.mp4"]
    assert "dangling symbolic link" in report["skipped_entries"][0]["problem"]
    videos = pd.read_csv(repo / "data/annotations/target/videos.csv")
    assert videos["filename"].tolist() == ["train/v_a.mp4", "valid/v_b.mp4"]
    issues = pd.read_csv(repo / "data/annotations/target/report.csv")
    gone = issues[issues["video_id"] == "gone"]
    assert gone["issue"].tolist() == ["unreadable_video"]
    assert "dangling symbolic link" in gone["detail"].iloc[0]
    totals = json.loads((repo / "data/annotations/target/report.json").read_text())["totals"]
    assert totals["subsets"]["training"]["unreadable"] == 1

    (repo / "inputs/labels.json").write_text('["Run", "Jump"]')
    log = _run(["dvc", "repro", "annotations@target"], repo)
    assert "Running stage 'annotations@target'" in log
    labels = json.loads((repo / "data/annotations/target/labels.json").read_text())
    assert labels == ["Run", "Jump"]
