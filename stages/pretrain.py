"""Stage `pretrain@<run>`: action pretraining (TAC) on a trimmed dataset.

The demo's stand-in for Kinetics pretraining: no Kinetics weights can be downloaded on every
machine, so the demo trains its initial encoder on trimmed action clips. One stage per entry of
`pretrain.runs` (run name -> dataset); it writes the encoder without heads into
`models/weights/<run>.pt` (an `encoder.weights` path), the resumable checkpoint and dvclive logs
(`tsp_pretrain.training.stage`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import _checkout  # noqa: F401  (first: this checkout's tsp_pretrain, docstring there)

from tsp_pretrain.config import load_params
from tsp_pretrain.logs import setup_logging
from tsp_pretrain.training.stage import TrainingStage, run_training_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", required=True, help="name under `datasets` (trimmed clips)")
    parser.add_argument("--annotations", type=Path, required=True, help="its tables folder")
    parser.add_argument("--frames", type=Path, required=True, help="its frame store")
    parser.add_argument("--out", type=Path, required=True, help="encoder file")
    parser.add_argument("--checkpoint", type=Path, required=True, help="pretraining checkpoint")
    parser.add_argument("--live", type=Path, required=True, help="dvclive folder")
    args = parser.parse_args()
    setup_logging(f"pretrain {args.out.stem}")
    stage = TrainingStage(
        dataset=args.dataset,
        annotations=args.annotations,
        frames=args.frames,
        encoder=args.out,
        checkpoint=args.checkpoint,
        live=args.live,
    )  # no initial encoder: pretraining (TAC from random weights)
    run_training_stage(load_params(), stage, __file__, sys.argv[1:])


if __name__ == "__main__":
    from tsp_pretrain.cli import run_stage

    run_stage(main, kept_on_interrupt="the checkpoint of the last finished epoch")
