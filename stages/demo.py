"""Stage `demo`: the built-in synthetic dataset (untrimmed + trimmed mp4s, ActivityNet JSON).

Reads the `demo` section only. Deterministic from `demo.seed`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import _checkout  # noqa: F401  (first: this checkout's tsp_pretrain, docstring there)

from tsp_pretrain.config import load_params
from tsp_pretrain.demo import make_demo_dataset
from tsp_pretrain.logs import setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="parallel processes (the output does not depend on it)",
    )
    args = parser.parse_args()
    log = setup_logging("demo")
    summary = make_demo_dataset(load_params().demo, args.out, workers=args.workers)
    log.info("wrote %s: %s", args.out, summary)


if __name__ == "__main__":
    from tsp_pretrain.cli import run_stage

    run_stage(main)
