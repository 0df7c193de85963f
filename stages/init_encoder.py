"""Stage `init_encoder`: the initial encoder E0, from `encoder.weights`.

E0 is what TSP/TAC training starts from and, in the extract-only route
(`dvc repro extract@initial`), the encoder whose features are extracted. `encoder.weights` is a
torchvision weights name (KINETICS400_V1), a released TSP checkpoint
(tsp:r2plus1d_34-tsp_on_activitynet; both from the $TORCH_HOME hub cache), a checkpoint path
(tracked by DVC when it lies in models/weights/, where pretrain@NAME writes NAME.pt) or none
(a random network, drawn from seed RANDOM_INIT_SEED: the same one on every run).
Writes the encoder without heads, with where it came from.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import _checkout  # noqa: F401  (first: this checkout's tsp_pretrain, docstring there)

from tsp_pretrain.config import load_params
from tsp_pretrain.logs import setup_logging
from tsp_pretrain.models.crop import weights_crop
from tsp_pretrain.models.encoder import build_encoder
from tsp_pretrain.models.weights import describe_weights
from tsp_pretrain.training.checkpoint import save_encoder

RANDOM_INIT_SEED = 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--weights-dir", type=Path, required=True, help="the DVC-tracked checkpoints folder"
    )
    parser.add_argument("--out", type=Path, required=True, help="initial encoder file")
    args = parser.parse_args()
    log = setup_logging("init_encoder")
    enc = load_params().encoder

    # `none`: a random network, drawn from a fixed seed so that the stage is reproducible
    encoder = build_encoder(enc.backbone, enc.weights, seed=RANDOM_INIT_SEED)
    source = describe_weights(enc.weights, tracked_dir=args.weights_dir)
    save_encoder(
        args.out,
        encoder.module,
        backbone_name=enc.backbone,
        feature_dim=encoder.feature_dim,
        info=source,
        crop_size=weights_crop(enc.backbone, enc.weights),
    )
    log.info("initial encoder %s from %s -> %s", enc.backbone, enc.weights, args.out)


if __name__ == "__main__":
    from tsp_pretrain.cli import run_stage

    run_stage(main)
