"""Stage `train`: TSP (or TAC) fine-tuning of the initial encoder on the target dataset.

Reads `clip_len`, `frame_rate`, `gvf`, `objective`, `seed`, `train`, `transform`, `encoder.backbone`
and `encoder.crop_check` (clips are cut at the crop the initial encoder was trained at:
`tsp_pretrain.models.crop`). The GVF (fixed) is the max- (or avg-) pool of the initial encoder's
extracted features, or read from `train.gvf_file` (an HDF5 table such as the official releases').
Writes the trained encoder (no heads), the resumable checkpoint, dvclive logs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import _checkout  # noqa: F401  (first: this checkout's tsp_pretrain, docstring there)

from tsp_pretrain.config import load_params
from tsp_pretrain.digest import code_digest, file_digest, tracked_file_digest
from tsp_pretrain.features.gvf import training_gvf
from tsp_pretrain.features.store import load_features
from tsp_pretrain.logs import setup_logging
from tsp_pretrain.models.crop import CROP_KEY, check_crop
from tsp_pretrain.models.tsp import build_tsp_model
from tsp_pretrain.tables import read_annotations
from tsp_pretrain.training.checkpoint import fingerprint, load_encoder_file, save_encoder
from tsp_pretrain.training.distributed import is_main_process, launch_workers
from tsp_pretrain.training.loop import ClipSource, train
from tsp_pretrain.video.store import FrameStore


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
    log = setup_logging("train")
    params = load_params()
    # several processes on this machine: relaunch this script under torch.distributed.run
    status = launch_workers(params.train.processes, __file__, sys.argv[1:])
    if status is not None:
        raise SystemExit(status)

    initial = load_encoder_file(args.initial)
    crop = params.transform.crop_size
    check_crop(initial.get(CROP_KEY), crop, str(args.initial), params.encoder.crop_check)
    tables = read_annotations(args.annotations)
    dataset = params.dataset("target")
    model = build_tsp_model(
        params.encoder.backbone,
        len(tables.labels),
        weights=str(args.initial),
        objective=params.objective,
        gvf=params.gvf,
        seed=params.seed,
    )
    gvf = None
    if model.uses_gvf:
        gvf_file = params.train.gvf_file
        gvf = training_gvf(
            tables.videos[
                tables.videos["subset"].isin([dataset.train_subset, dataset.valid_subset])
            ],
            feature_dim=model.feature_dim,
            gvf_file=gvf_file,
            initial_features=None if gvf_file else load_features(args.initial_features)[0],
            pool=params.train.gvf_pool,
        )
    data = ClipSource(
        FrameStore(args.frames),
        tables.subset(dataset.train_subset).segments,
        tables.subset(dataset.valid_subset).segments,
        params.clip_len,
        params.frame_rate,
        gvf,
    )
    run_id = fingerprint(
        code=code_digest(),
        params=params.train.model_dump(),
        objective=params.objective,
        gvf=params.gvf,
        seed=params.seed,
        clip_len=params.clip_len,
        frame_rate=params.frame_rate,
        crop_size=crop,
        initial=file_digest(args.initial),
        gvf_file=(
            tracked_file_digest(params.train.gvf_file, args.gvf_dir, "train.gvf_file")
            if params.train.gvf_file and model.uses_gvf
            else None
        ),
        segments=file_digest(args.annotations / "segments.csv"),
        frames=file_digest(args.frames / "index.json"),
    )
    args.out.mkdir(parents=True, exist_ok=True)
    metrics = train(
        model,
        data,
        params.train,
        crop_size=crop,
        checkpoint=args.out / "checkpoint.pt",
        live_dir=args.live,
        fingerprint=run_id,
        seed=params.seed,
        foreground_only=params.objective == "tac",
        alpha_action=params.train.alpha_action,
        alpha_region=params.train.alpha_region,
    )
    if not is_main_process():  # rank 0 writes the outputs; the weights are the same
        return
    save_encoder(
        args.out / "encoder.pt",
        model.backbone,
        backbone_name=params.encoder.backbone,
        feature_dim=model.feature_dim,
        info={
            # the starting point, so that the features' meta.json says what was fine-tuned
            "weights": initial["info"].get("weights"),
            "objective": params.objective,
            "gvf": params.gvf,
            "metrics": metrics,
        },
        crop_size=crop,
    )
    log.info("trained encoder -> %s", args.out / "encoder.pt")


if __name__ == "__main__":
    from tsp_pretrain.cli import run_stage

    run_stage(main, kept_on_interrupt="the checkpoint of the last finished epoch")
