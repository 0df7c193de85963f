"""``python -m tsp_pretrain.experiments``: verdict, compare, table and sweep (package docstring)."""

from __future__ import annotations

import argparse

from tsp_pretrain.experiments import (
    METRICS,
    WITHIN_VIDEO_AUC_DRAWS,
    collect,
    compare,
    default_draws,
    format_comparison,
    format_verdict,
    plot_sweep,
    run_verdict,
    summary_table,
    sweep_table,
)
from tsp_pretrain.experiments import __doc__ as DOC


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tsp_pretrain.experiments",
        description=DOC,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    verdict = sub.add_parser("verdict", help="did fine-tuning help? one run, trained - initial")
    verdict.add_argument(
        "name", nargs="?", default="workspace", help="experiment name, git revision, or 'workspace'"
    )
    cmp_ = sub.add_parser("compare", help="paired bootstrap over validation videos, A minus B")
    cmp_.add_argument("a", help="experiment name, git revision, or 'workspace'")
    cmp_.add_argument("b", help="experiment name, git revision, or 'workspace'")
    cmp_.add_argument("--metric", default="within_video_auc", choices=METRICS)
    cmp_.add_argument("--encoder", default="trained", choices=["trained", "initial"])
    cmp_.add_argument(
        "--n-bootstrap",
        type=int,
        default=None,
        help=f"draws (default {WITHIN_VIDEO_AUC_DRAWS} for within_video_auc, else "
        f"{default_draws('average_map')}: params' evaluate.n_bootstrap default)",
    )
    cmp_.add_argument("--seed", type=int, default=0)
    table = sub.add_parser("table", help="main metrics of several runs as a Markdown table")
    table.add_argument("names", nargs="+", help="experiment names, git revisions, or 'workspace'")
    sweep = sub.add_parser("sweep", help="a one-key sweep over experiments: table and figure")
    sweep.add_argument("key", help="the swept params key, e.g. clip_len")
    sweep.add_argument("--baseline", default="HEAD", help="commit the experiments are based on")
    sweep.add_argument("--plot", help="write the figure (PNG) here")
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "verdict":
        try:
            report = format_verdict(run_verdict(args.name))
        except (FileNotFoundError, ValueError) as error:  # no such run, or not evaluated
            parser.exit(2, f"verdict: {error}\n")
        print(report)  # a report: exit status 0 whatever it says
    elif args.command == "table":
        print(summary_table(args.names))
    elif args.command == "sweep":
        runs, left_out = collect(args.key, args.baseline)
        print(sweep_table(runs, args.key))
        for line in left_out:
            print(f"left out: {line}")
        if args.plot:
            plot_sweep(runs, args.key, args.plot)
            print(f"figure: {args.plot}")
    else:
        n = args.n_bootstrap or default_draws(args.metric)
        r = compare(
            args.a, args.b, metric=args.metric, encoder=args.encoder, n_bootstrap=n, seed=args.seed
        )
        print(format_comparison(r))


if __name__ == "__main__":
    from tsp_pretrain.cli import run_stage
    from tsp_pretrain.numerics import pin

    pin(reexec=True)  # the same numbers on every machine (numpy loaded with the package)
    run_stage(main, name="tsp_pretrain.experiments")
