"""Comparing two experiments' encoders video by video (what `dvc metrics diff` cannot do).

`dvc metrics diff` shows the change of each metric; whether a change of the within-video AUC is
more than noise needs the per-video values of both runs, paired by video. Every run of the
`evaluate` stage commits them (`metrics/per_video_auc.csv`), so any two git revisions or DVC
experiments can be compared::

    python -m tsp_pretrain.experiments compare tsp tac        # experiment names
    python -m tsp_pretrain.experiments compare HEAD workspace # a commit against the workspace
    python -m tsp_pretrain.experiments table HEAD tac tsp-seed1 ...

`compare` prints the mean difference A - B of the trained encoders' within-video AUC with a
paired bootstrap 95% interval over the validation videos; `table` prints the main metrics of
several runs as a Markdown table (for seed studies).
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
from pathlib import Path

import pandas as pd

from tsp_pretrain.evaluation import paired_bootstrap_tables

PER_VIDEO = "metrics/per_video_auc.csv"


def resolve_revision(name: str, repo: Path = Path()) -> str:
    """A git revision for ``name``: a DVC experiment name (refs/exps/.../name) or any git rev."""
    refs = subprocess.run(
        ["git", "for-each-ref", "--format=%(refname)", "refs/exps"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    matches = [r for r in refs if r.rsplit("/", 1)[-1] == name]
    if len(matches) > 1:
        # Names are unique per baseline commit (refs/exps/<sha[:2]>/<sha[2:]>/<name>), as in DVC:
        # prefer the experiment based on the current commit or else on its nearest ancestor
        # (experiments are often run before a later commit, a README update for instance).
        history = subprocess.run(
            ["git", "rev-list", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.split()
        age = {sha: i for i, sha in enumerate(history)}
        based = sorted((age[sha], r) for r in matches if (sha := "".join(r.split("/")[2:4])) in age)
        matches = [based[0][1]] if based else matches
    if len(matches) > 1:
        raise ValueError(
            f"experiment name {name!r} exists for several baselines: {matches}; "
            "pass the ref or commit instead"
        )
    if matches:
        return matches[0]
    check = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{name}^{{commit}}"],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    if check.returncode != 0:
        raise ValueError(
            f"{name!r} is neither a DVC experiment nor a git revision "
            "(see `dvc exp show` and `git log`)"
        )
    return name


def read_text(name: str, path: str, repo: Path = Path()) -> str:
    """A file of revision/experiment ``name`` (``workspace`` = the file on disk)."""
    if name == "workspace":
        return (repo / path).read_text()
    shown = subprocess.run(
        ["git", "show", f"{resolve_revision(name, repo)}:{path}"],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    if shown.returncode != 0:
        raise FileNotFoundError(f"{name}: no {path} in that revision (was it evaluated?)")
    return shown.stdout


def read_json(name: str, path: str, repo: Path = Path()) -> dict:
    """A JSON file of revision/experiment ``name`` (``workspace`` = the file on disk)."""
    return json.loads(read_text(name, path, repo))


def summary_table(names: list[str], repo: Path = Path()) -> str:
    """Markdown table of the trained encoder's separability and what training saw, per run."""
    rows = [
        "| run | within-video AUC [95% CI] | pooled AUC | AP | bal. acc | action top-1 | "
        "trained - initial [95% CI] | steps | fg clips seen |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in names:
        sep = read_json(name, "metrics/separability.json", repo)
        seen = read_json(name, "metrics/train/metrics.json", repo).get("seen", {})
        t, d = sep["trained"], sep["trained_minus_initial"]
        rows.append(
            f"| {name} | {t['within_video_auc']:.3f} [{t['within_video_auc_ci_low']:.3f}, "
            f"{t['within_video_auc_ci_high']:.3f}] | {t['fg_auc']:.3f} | {t['fg_ap']:.3f} | "
            f"{t['fg_balanced_acc']:.3f} | {t['action_top1']:.3f} | "
            f"{d['within_video_auc']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}] | "
            f"{seen.get('steps', '-')} | {seen.get('fg_clips', '-')} |"
        )
    return "\n".join(rows)


def read_per_video(name: str, repo: Path = Path(), encoder: str = "trained") -> pd.DataFrame:
    """The per-video AUC table of ``name`` (``workspace`` = the files on disk)."""
    text = read_text(name, PER_VIDEO, repo)
    table = pd.read_csv(io.StringIO(text), dtype={"video_id": str})
    return table[table["encoder"] == encoder].drop(columns="encoder")


def compare(
    a: str,
    b: str,
    *,
    encoder: str = "trained",
    n_bootstrap: int = 10_000,
    seed: int = 0,
    repo: Path = Path(),
) -> dict:
    """Paired bootstrap of the within-video AUC difference ``a - b`` over shared videos."""
    interval = paired_bootstrap_tables(
        read_per_video(a, repo, encoder),
        read_per_video(b, repo, encoder),
        n_bootstrap=n_bootstrap,
        seed=seed,
    )
    return {
        "a": a,
        "b": b,
        "encoder": encoder,
        "mean_difference": round(interval.mean, 4),
        "ci_low": round(interval.low, 4),
        "ci_high": round(interval.high, 4),
        "num_videos": interval.num_videos,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tsp_pretrain.experiments",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    cmp_ = sub.add_parser("compare", help="paired bootstrap of within-video AUC, A minus B")
    cmp_.add_argument("a", help="experiment name, git revision, or 'workspace'")
    cmp_.add_argument("b", help="experiment name, git revision, or 'workspace'")
    cmp_.add_argument("--encoder", default="trained", choices=["trained", "initial"])
    cmp_.add_argument("--n-bootstrap", type=int, default=10_000)
    cmp_.add_argument("--seed", type=int, default=0)
    table = sub.add_parser("table", help="main metrics of several runs as a Markdown table")
    table.add_argument("names", nargs="+", help="experiment names, git revisions, or 'workspace'")
    args = parser.parse_args(argv)
    if args.command == "table":
        print(summary_table(args.names))
        return
    r = compare(args.a, args.b, encoder=args.encoder, n_bootstrap=args.n_bootstrap, seed=args.seed)
    verdict = (
        "above zero" if r["ci_low"] > 0 else "below zero" if r["ci_high"] < 0 else "contains zero"
    )
    print(
        f"within-video AUC ({r['encoder']} encoder), {r['a']} - {r['b']}: "
        f"{r['mean_difference']:+.4f}, 95% CI [{r['ci_low']:+.4f}, {r['ci_high']:+.4f}] "
        f"over {r['num_videos']} videos ({verdict})"
    )


if __name__ == "__main__":
    main()
