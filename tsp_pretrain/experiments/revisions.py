"""Files of git revisions and DVC experiments: which revision a name means, and its files.

Metrics are committed to git (``cache: false``), so any revision has them; DVC-tracked outputs
(prediction files, annotation tables) are read through ``dvc.api`` from this machine's DVC
cache, where the runs that made them left them.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

WORKSPACE = "workspace"


def _git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=check)


def experiment_refs(repo: Path = Path()) -> list[str]:
    """Every DVC experiment ref (``refs/exps/<sha[:2]>/<sha[2:]>/<name>``)."""
    refs = _git(repo, "for-each-ref", "--format=%(refname)", "refs/exps").stdout.split()
    return [r for r in refs if r.count("/") == 4]


def ref_baseline(ref: str) -> str:
    """The baseline commit of an experiment ref."""
    return "".join(ref.split("/")[2:4])


def resolve_revision(name: str, repo: Path = Path()) -> str:
    """A git revision for ``name``: a DVC experiment name (refs/exps/.../name) or any git rev."""
    matches = [r for r in experiment_refs(repo) if r.rsplit("/", 1)[-1] == name]
    if len(matches) > 1:
        # Names are unique per baseline commit (refs/exps/<sha[:2]>/<sha[2:]>/<name>), as in DVC:
        # prefer the experiment based on the current commit or else on its nearest ancestor
        # (experiments are often run before a later commit, a README update for instance).
        history = _git(repo, "rev-list", "HEAD").stdout.split()
        age = {sha: i for i, sha in enumerate(history)}
        based = sorted((age[ref_baseline(r)], r) for r in matches if ref_baseline(r) in age)
        matches = [based[0][1]] if based else matches
    if len(matches) > 1:
        raise ValueError(
            f"experiment name {name!r} exists for several baselines: {matches}; "
            "pass the ref or commit instead"
        )
    if matches:
        return matches[0]
    if _git(repo, "rev-parse", "--verify", "--quiet", f"{name}^{{commit}}", check=False).returncode:
        raise ValueError(
            f"{name!r} is neither a DVC experiment nor a git revision "
            "(see `dvc exp show` and `git log`)"
        )
    return name


def read_text(name: str, path: str, repo: Path = Path()) -> str:
    """A git-tracked file of revision/experiment ``name`` (``workspace`` = the file on disk)."""
    if name == WORKSPACE:
        return (repo / path).read_text()
    shown = _git(repo, "show", f"{resolve_revision(name, repo)}:{path}", check=False)
    if shown.returncode != 0:
        raise FileNotFoundError(f"{name}: no {path} in that revision (was it evaluated?)")
    return shown.stdout


def read_params(name: str, repo: Path = Path()) -> dict:
    """``params.yaml`` of revision/experiment ``name``."""
    return yaml.safe_load(read_text(name, "params.yaml", repo))


def read_output(name: str, path: str, repo: Path = Path()) -> str:
    """A DVC-tracked output of revision/experiment ``name``, from this machine's DVC cache."""
    if name == WORKSPACE:
        return (repo / path).read_text()
    from dvc.api import DVCFileSystem

    fs = DVCFileSystem(str(repo.resolve()), rev=resolve_revision(name, repo))
    try:
        return fs.read_text(path)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{name}: {path} is not in this machine's DVC cache (was the run made here? "
            "`dvc pull` it from a remote, or re-run the experiment)"
        ) from None


def baseline_experiments(baseline: str = "HEAD", repo: Path = Path()) -> tuple[str, list[str]]:
    """The commit of ``baseline`` with experiments (itself or its nearest ancestor that has
    some) and the refs of the experiments based on it, sorted by name."""
    refs = experiment_refs(repo)
    based = {ref_baseline(r) for r in refs}
    for sha in _git(repo, "rev-list", baseline).stdout.split():
        if sha in based:
            mine = [r for r in refs if ref_baseline(r) == sha]
            return sha, sorted(mine, key=lambda r: r.rsplit("/", 1)[-1])
    return _git(repo, "rev-parse", baseline).stdout.strip(), []


def short_name(name: str) -> str:
    """An experiment's name for tables (the last part of its ref); other names unchanged."""
    return name.rsplit("/", 1)[-1] if name.startswith("refs/exps/") else name
