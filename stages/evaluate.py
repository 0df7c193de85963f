"""Stage `evaluate`: foreground/background separability of the initial and trained encoders.

Reads `evaluate`, `seed` and `datasets.target` (its subsets). Linear probes are fit on the
training subset's clip features and scored on the validation subset; the within-video AUC gets a
bootstrap interval over videos, and trained-minus-initial a paired one, logged with its number
of videos and a word (none below the minimum of videos), and a warning when the trained encoder
separates worse than the initial one (tsp_pretrain.evaluation.verdict). The work is
tsp_pretrain.evaluation.stage.run_evaluation.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import _checkout  # noqa: F401  (first: this checkout's tsp_pretrain, docstring there)

from tsp_pretrain.config import load_params
from tsp_pretrain.evaluation.inputs import EncoderFolders
from tsp_pretrain.evaluation.stage import SeparabilityFiles, run_evaluation
from tsp_pretrain.logs import setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--annotations", type=Path, required=True, help="target tables folder")
    parser.add_argument("--initial", type=Path, required=True, help="initial encoder's features")
    parser.add_argument("--trained", type=Path, required=True, help="trained encoder's features")
    parser.add_argument("--metrics", type=Path, required=True, help="separability JSON")
    parser.add_argument("--per-video", type=Path, required=True, help="per-video AUC CSV")
    parser.add_argument("--roc", type=Path, required=True, help="folder of ROC CSVs")
    args = parser.parse_args()
    setup_logging("evaluate")
    run_evaluation(
        load_params(),
        EncoderFolders(args.annotations, initial=args.initial, trained=args.trained),
        SeparabilityFiles(metrics=args.metrics, per_video=args.per_video, roc=args.roc),
    )


if __name__ == "__main__":
    from tsp_pretrain.cli import run_stage

    run_stage(main)
