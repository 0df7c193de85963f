"""A fresh copy of this repository for tests that run `dvc` in it, and the environment to run it.

One rule for what a fresh clone holds: every tracked file except the pipeline's outputs
(`metrics/`, `data/`, `models/` other than their README files, which create the folders
`init_encoder` and `train` depend on) and `dvc.lock`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def copy_tracked_files(dest: Path) -> Path:
    """Copy the tracked files of this repository, minus pipeline outputs, into ``dest``."""
    files = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    for rel in files:
        if rel.startswith(("metrics/", "data/", "models/")) and not rel.endswith("README.md"):
            continue
        if rel == "dvc.lock" or not (ROOT / rel).is_file():
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest / rel)
    return dest


def merge_params(base: dict, update: dict) -> dict:
    """``base`` (a loaded params.yaml) with the nested keys of ``update`` set; returns ``base``."""
    for key, value in update.items():
        if isinstance(value, dict):
            merge_params(base[key], value)
        else:
            base[key] = value
    return base


def dvc_env(**extra: str) -> dict[str, str]:
    """The environment for `dvc` and `git` in a copy: no analytics, a git identity (experiments
    commit), this interpreter's bin folder first on PATH; ``extra`` added on top."""
    return {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@localhost",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@localhost",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        **extra,
    }


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run ``cmd`` in ``cwd``; its stdout, or a failed assertion holding the end of its output."""
    done = subprocess.run(cmd, cwd=cwd, env=env or dvc_env(), capture_output=True, text=True)
    assert done.returncode == 0, (
        f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done.stdout
