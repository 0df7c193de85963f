"""Stage `init_encoder`: the initial encoder E0, from `encoder.weights`.

E0 is what TSP/TAC training starts from and, in the extract-only route
(`dvc repro extract@initial`), the encoder whose features are extracted. `encoder.weights` is a
torchvision weights name (KINETICS400_V1), a released TSP checkpoint
(tsp:r2plus1d_34-tsp_on_activitynet; both from the $TORCH_HOME hub cache), a checkpoint path
(tracked by DVC when it lies in models/weights/, where pretrain@NAME writes NAME.pt) or none
(a random network, drawn from a fixed seed: the same one on every run).
Writes the encoder without heads, with where it came from.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import _checkout  # noqa: F401  (first: this checkout's tsp_pretrain, docstring there)

from tsp_pretrain.config import load_params
from tsp_pretrain.logs import setup_logging
from tsp_pretrain.models.initial import write_initial_encoder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--weights-dir", type=Path, required=True, help="the DVC-tracked checkpoints folder"
    )
    parser.add_argument("--out", type=Path, required=True, help="initial encoder file")
    args = parser.parse_args()
    log = setup_logging("init_encoder")
    enc = load_params().encoder
    write_initial_encoder(enc, tracked_dir=args.weights_dir, out=args.out)
    log.info("initial encoder %s from %s -> %s", enc.backbone, enc.weights, args.out)


if __name__ == "__main__":
    from tsp_pretrain.cli import run_stage

    run_stage(main)
