"""``python -m tsp_pretrain.numerics show | record | check``: the CPU numerics contract on this
machine and the committed run's machine (docs/reproducibility.md, "Recording the machine").

The command lives apart from the contract (``__init__.py``), which every stage imports before
numpy or torch: the contract stays free of the command's imports.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tsp_pretrain.atomic import write_json
from tsp_pretrain.cli import run_stage
from tsp_pretrain.numerics import (
    COMMITTED_RECORD,
    RUN_RECORDS,
    compare_with,
    describe,
    gather_records,
    pin,
)


def main(argv: list[str] | None = None) -> None:
    """``python -m tsp_pretrain.numerics show | record | check``."""
    parser = argparse.ArgumentParser(
        prog="python -m tsp_pretrain.numerics",
        description="The CPU numerics contract: this machine, the committed run's machine.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("show", help="this machine, the contract and the kernels in effect (JSON)")
    rec = sub.add_parser(
        "record", help=f"gather {RUN_RECORDS}/*.json into {COMMITTED_RECORD} (after dvc repro)"
    )
    rec.add_argument("--out", type=Path, default=COMMITTED_RECORD)
    chk = sub.add_parser(
        "check", help=f"can this machine reproduce {COMMITTED_RECORD}'s results? exit 1 if not"
    )
    chk.add_argument("--committed", type=Path, default=COMMITTED_RECORD)
    args = parser.parse_args(argv)
    pin(reexec=True)
    if args.command == "record":
        write_json(args.out, gather_records(RUN_RECORDS))
        print(f"wrote {args.out} from {RUN_RECORDS}/")
        return
    import numpy  # noqa: F401  (loaded so that describe() reports them)
    import sklearn  # noqa: F401
    import torch

    torch.zeros(1).sum()  # ATen picks its kernels on first use
    here = describe()
    if args.command == "show":
        print(json.dumps(here, indent=2))
        return
    committed = json.loads(args.committed.read_text())
    problems = compare_with(committed, here)
    print(f"committed results made on: {committed['machine']}")
    print(f"this machine:              {here['machine']}")
    for line in problems:
        print(f"DIFFERS  {line}")
    if problems:
        raise SystemExit(1)
    print("same contract, kernels and versions: dvc repro here gives the committed bytes")


if __name__ == "__main__":
    run_stage(main, name="tsp_pretrain.numerics")
