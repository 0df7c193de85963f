"""Stage `pretrain@<run>`: action pretraining (TAC) on a trimmed dataset.

The demo's stand-in for Kinetics pretraining: no Kinetics weights can be downloaded on every
machine, so the demo trains its initial encoder on trimmed action clips. One stage per entry of
`pretrain.runs` (run name -> dataset); it writes the encoder without heads into
`models/weights/<run>.pt` (an `encoder.weights` path), the resumable checkpoint and dvclive logs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import _checkout  # noqa: F401  (first: this checkout's tsp_pretrain, docstring there)

from tsp_pretrain.config import load_params
from tsp_pretrain.digest import code_digest, file_digest
from tsp_pretrain.logs import setup_logging
from tsp_pretrain.models.tsp import build_tsp_model
from tsp_pretrain.tables import read_annotations
from tsp_pretrain.training.checkpoint import fingerprint, save_encoder
from tsp_pretrain.training.distributed import is_main_process, launch_workers
from tsp_pretrain.training.loop import ClipSource, train
from tsp_pretrain.video.store import FrameStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", required=True, help="name under `datasets` (trimmed clips)")
    parser.add_argument("--annotations", type=Path, required=True, help="its tables folder")
    parser.add_argument("--frames", type=Path, required=True, help="its frame store")
    parser.add_argument("--out", type=Path, required=True, help="encoder file")
    parser.add_argument("--checkpoint", type=Path, required=True, help="pretraining checkpoint")
    parser.add_argument("--live", type=Path, required=True, help="dvclive folder")
    args = parser.parse_args()
    log = setup_logging(f"pretrain {args.out.stem}")
    params = load_params()
    # several processes on this machine: relaunch this script under torch.distributed.run
    status = launch_workers(params.pretrain.processes, __file__, sys.argv[1:])
    if status is not None:
        raise SystemExit(status)
    backbone = params.encoder.backbone

    tables = read_annotations(args.annotations)
    dataset = params.dataset(args.dataset)
    data = ClipSource(
        FrameStore(args.frames),
        tables.subset(dataset.train_subset).segments,
        tables.subset(dataset.valid_subset).segments,
        params.clip_len,
        params.frame_rate,
    )
    model = build_tsp_model(
        backbone, len(tables.labels), objective="tac", gvf=False, seed=params.pretrain.seed
    )
    run_id = fingerprint(
        code=code_digest(),
        params=params.pretrain.model_dump(exclude={"runs"}),
        backbone=backbone,
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
    if not is_main_process():  # rank 0 writes the outputs; the weights are the same
        return
    save_encoder(
        args.out,
        model.backbone,
        backbone_name=backbone,
        feature_dim=model.feature_dim,
        info={"pretrained_on": args.dataset, "pretrain_metrics": metrics},
        crop_size=params.transform.crop_size,
    )
    log.info("pretrained %s on %s (action classification) -> %s", backbone, args.dataset, args.out)


if __name__ == "__main__":
    from tsp_pretrain.cli import run_stage

    run_stage(main, kept_on_interrupt="the checkpoint of the last finished epoch")
