"""Stage `extract@<encoder>`: sliding-window clip features of every target video.

Reads `clip_len`, `frame_rate`, `extract` and `transform`. One T x F `.npy` per video (named after
the video file, e.g. v_<id>.npy, as localisers expect), `clips.csv` with clip times, resumable;
then `meta.json`, `missing_files.txt` (the annotated videos without features: the annotation
report's skipped videos and the videos missing from the frame store) and the optional HDF5 and
fixed-length copies (docs/localizers.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tsp_pretrain.config import load_params
from tsp_pretrain.digest import code_digest, file_digest
from tsp_pretrain.features.extract import extract_dataset
from tsp_pretrain.features.outputs import annotated_but_skipped, encoder_description
from tsp_pretrain.logs import setup_logging
from tsp_pretrain.models.device import pick_device
from tsp_pretrain.models.encoder import build_encoder
from tsp_pretrain.tables import read_annotations
from tsp_pretrain.training.checkpoint import load_encoder_file
from tsp_pretrain.video.store import FrameStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--encoder", type=Path, required=True, help="encoder file")
    parser.add_argument("--annotations", type=Path, required=True, help="target tables folder")
    parser.add_argument("--frames", type=Path, required=True, help="target frame store")
    parser.add_argument("--out", type=Path, required=True, help="features folder")
    args = parser.parse_args()
    log = setup_logging(f"extract {args.encoder}")
    params = load_params()

    state = load_encoder_file(args.encoder)
    encoder = build_encoder(state["backbone"], str(args.encoder)).module
    settings = {
        "code": code_digest(),
        "encoder": file_digest(args.encoder),
        "frames": file_digest(args.frames / "index.json"),
        "clip_len": params.clip_len,
        "stride": params.extract.stride,
        "frame_rate": params.frame_rate,
        "crop_size": params.transform.crop_size,
    }
    counts = extract_dataset(
        encoder,
        FrameStore(args.frames),
        read_annotations(args.annotations).videos,
        args.out,
        settings=settings,
        clip_len=params.clip_len,
        stride=params.extract.stride,
        frame_rate=params.frame_rate,
        crop_size=params.transform.crop_size,
        batch_size=params.extract.batch_size,
        device=pick_device(params.extract.device),
        encoder_info=encoder_description(state, args.encoder, settings["encoder"]),
        skipped=annotated_but_skipped(args.annotations),
        h5=params.extract.h5,
        fixed_length=params.extract.fixed_length,
    )
    log.info("features -> %s: %s", args.out, counts)


if __name__ == "__main__":
    from tsp_pretrain.cli import run_stage

    run_stage(main)
