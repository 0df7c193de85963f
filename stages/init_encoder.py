"""Stage `init_encoder`: the initial encoder E0 that TSP/TAC training starts from.

`encoder.weights` selects it: a torchvision weights name (KINETICS400_V1, from the $TORCH_HOME
cache), a checkpoint path, `none`, or `demo-tac`: action-classification pretraining on the demo's
trimmed clips (the stand-in for Kinetics when no network is available). Writes the encoder without
heads; for demo-tac also the pretraining checkpoint (resumable) and its dvclive logs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tsp_pretrain.atomic import write_json
from tsp_pretrain.config import load_params
from tsp_pretrain.digest import code_digest, file_digest
from tsp_pretrain.logs import setup_logging
from tsp_pretrain.models.encoder import build_encoder
from tsp_pretrain.models.tsp import build_tsp_model
from tsp_pretrain.tables import read_annotations
from tsp_pretrain.training.checkpoint import fingerprint, save_encoder
from tsp_pretrain.training.loop import ClipSource, train
from tsp_pretrain.video.store import FrameStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--annotations", type=Path, required=True, help="pretrain tables folder")
    parser.add_argument("--frames", type=Path, required=True, help="pretrain frame store")
    parser.add_argument("--out", type=Path, required=True, help="initial encoder file")
    parser.add_argument("--checkpoint", type=Path, required=True, help="pretraining checkpoint")
    parser.add_argument("--live", type=Path, required=True, help="dvclive folder")
    args = parser.parse_args()
    log = setup_logging("init_encoder")
    params = load_params()
    enc = params.encoder

    if enc.weights != "demo-tac":
        encoder = build_encoder(enc.backbone, enc.weights)
        save_encoder(
            args.out,
            encoder.module,
            backbone_name=enc.backbone,
            feature_dim=encoder.feature_dim,
            info={"weights": enc.weights},
        )
        write_json(
            args.live / "metrics.json",
            {"pretraining": f"not run: encoder.weights is {enc.weights}"},
            indent=None,
        )
        log.info("initial encoder %s with weights %s -> %s", enc.backbone, enc.weights, args.out)
        return

    tables = read_annotations(args.annotations)
    dataset = params.dataset("pretrain")
    train_part, valid_part = (
        tables.subset(dataset.train_subset),
        tables.subset(dataset.valid_subset),
    )
    data = ClipSource(
        FrameStore(args.frames),
        train_part.segments,
        valid_part.segments,
        params.clip_len,
        params.frame_rate,
    )
    model = build_tsp_model(
        enc.backbone, len(tables.labels), objective="tac", gvf=False, seed=params.pretrain.seed
    )
    run_id = fingerprint(
        code=code_digest(),
        params=params.pretrain.model_dump(),
        backbone=enc.backbone,
        clip_len=params.clip_len,
        frame_rate=params.frame_rate,
        crop_size=params.transform.crop_size,
        segments=file_digest(args.annotations / "segments.csv"),
        frames=file_digest(args.frames / "index.json"),
    )
    metrics = train(
        model,
        data,
        params.pretrain,
        crop_size=params.transform.crop_size,
        checkpoint=args.checkpoint,
        live_dir=args.live,
        fingerprint=run_id,
        seed=params.pretrain.seed,
        foreground_only=True,
    )
    save_encoder(
        args.out,
        model.backbone,
        backbone_name=enc.backbone,
        feature_dim=model.feature_dim,
        info={"weights": "demo-tac", "pretrain_metrics": metrics},
    )
    log.info("pretrained %s on the trimmed demo clips -> %s", enc.backbone, args.out)


if __name__ == "__main__":
    from tsp_pretrain.cli import run_stage

    run_stage(main)
