"""Stage `check` (always run, first): params.yaml is valid and the inputs it names exist.

Every stage validates params.yaml when it starts; this one also checks, before any work, that
each dataset's annotations (and labels) exist, except those a pipeline stage writes (the demo).
Without it, a wrong `datasets.<name>.annotations` would stop `dvc repro` with DVC's own
missing-dependency error, which names the path but not the param. Writes what it checked.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import _checkout  # noqa: F401  (first: this checkout's tsp_pretrain, docstring there)

from tsp_pretrain.atomic import write_json
from tsp_pretrain.config import load_params
from tsp_pretrain.logs import setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="what was checked (JSON)")
    args = parser.parse_args()
    log = setup_logging("check")
    checked = load_params().check_inputs()
    write_json(args.out, {"params": "params.yaml", "inputs_checked": checked})
    log.info("params.yaml valid; inputs exist: %s", ", ".join(checked) or "(all made by stages)")


if __name__ == "__main__":
    from tsp_pretrain.cli import run_stage

    run_stage(main)
