"""Stage `train`: TSP (or TAC) fine-tuning of the initial encoder on the target dataset.

Reads `clip_len`, `frame_rate`, `gvf`, `objective`, `seed`, `train`, `transform`, `encoder.backbone`
and `encoder.crop_check` (clips are cut at the crop the initial encoder was trained at:
`tsp_pretrain.models.crop`). The GVF (fixed) is the max- (or avg-) pool of the initial encoder's
extracted features, or read from `train.gvf_file` (an HDF5 table such as the official releases').
Writes the trained encoder (no heads), the resumable checkpoint, dvclive logs
(`tsp_pretrain.training.stage`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import _checkout  # noqa: F401  (first: this checkout's tsp_pretrain, docstring there)

from tsp_pretrain.config import load_params
from tsp_pretrain.logs import setup_logging
from tsp_pretrain.training.stage import InitialEncoder, TrainingStage, run_training_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--annotations", type=Path, required=True, help="target tables folder")
    parser.add_argument("--frames", type=Path, required=True, help="target frame store")
    parser.add_argument("--initial", type=Path, required=True, help="initial encoder file")
    parser.add_argument(
        "--initial-features",
        type=Path,
        required=True,
        help="initial encoder's features (for the GVF)",
    )
    parser.add_argument("--gvf-dir", type=Path, required=True, help="DVC-tracked GVF tables")
    parser.add_argument("--out", type=Path, required=True, help="folder: encoder.pt, checkpoint.pt")
    parser.add_argument("--live", type=Path, required=True, help="dvclive folder")
    args = parser.parse_args()
    setup_logging("train")
    stage = TrainingStage(
        dataset="target",
        annotations=args.annotations,
        frames=args.frames,
        encoder=args.out / "encoder.pt",
        checkpoint=args.out / "checkpoint.pt",
        live=args.live,
        initial=InitialEncoder(args.initial, args.initial_features, args.gvf_dir),
    )
    run_training_stage(load_params(), stage, __file__, sys.argv[1:])


if __name__ == "__main__":
    from tsp_pretrain.cli import run_stage

    run_stage(main, kept_on_interrupt="the checkpoint of the last finished epoch")
