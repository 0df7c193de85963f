"""Stage `extract@<encoder>`: sliding-window clip features of every target video.

Reads `clip_len`, `frame_rate`, `extract` and `transform`. One T x F `.npy` per video (named after
the video file, e.g. v_<id>.npy, as localisers expect), `clips.csv` with clip times, resumable;
then `meta.json`, `missing_files.txt` (the annotated videos without features: the annotation
report's skipped videos and the videos missing from the frame store) and the optional HDF5 and
fixed-length copies (docs/localizers.md).

Sharded (README, "Sharded extraction"): `--shard i --num-shards n` (or `extract.shard` /
`extract.num_shards`, or torchrun's RANK / WORLD_SIZE) extracts shard i's share into
`<out>/.shards/i-of-n/`; `--merge --num-shards n` then checks the shards and writes `<out>`,
byte-identical to a single-process run.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import _checkout  # noqa: F401  (first: this checkout's tsp_pretrain, docstring there)

from tsp_pretrain.config import load_params
from tsp_pretrain.features.extract import (
    compute_dtype,
    default_workers,
    extract_dataset,
    extraction_device,
    feature_settings,
    merge_shards,
)
from tsp_pretrain.features.outputs import annotated_but_skipped, encoder_description
from tsp_pretrain.features.shards import resolve_shard
from tsp_pretrain.logs import setup_logging
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
    parser.add_argument("--shard", type=int, help="this shard (overrides extract.shard)")
    parser.add_argument("--num-shards", type=int, help="overrides extract.num_shards")
    parser.add_argument("--merge", action="store_true", help="merge the --num-shards shards")
    args = parser.parse_args()
    log = setup_logging(f"extract {args.encoder}")
    params = load_params()
    p = params.extract

    shard, num_shards = resolve_shard(
        p.shard if args.shard is None else args.shard,
        p.num_shards if args.num_shards is None else args.num_shards,
    )
    device = extraction_device(p.device, shard, num_shards)
    dtype = compute_dtype(p.dtype, device)
    state = load_encoder_file(args.encoder)
    settings = feature_settings(
        args.encoder,
        args.frames,
        clip_len=params.clip_len,
        stride=p.stride,
        frame_rate=params.frame_rate,
        crop_size=params.transform.crop_size,
        dtype=dtype,
        channels_last_3d=p.channels_last_3d,
    )
    common = dict(
        settings=settings,
        clip_len=params.clip_len,
        stride=p.stride,
        frame_rate=params.frame_rate,
        encoder_info=encoder_description(state, args.encoder, settings["encoder"]),
        skipped=annotated_but_skipped(args.annotations),
        h5=p.h5,
        fixed_length=p.fixed_length,
    )
    videos = read_annotations(args.annotations).videos
    if args.merge:
        argv = [a for a in sys.argv[1:] if a != "--merge"]
        rerun = shlex.join(["python", "stages/extract.py", *argv]) + " --shard {i}"
        counts = merge_shards(args.out, videos, num_shards=num_shards, rerun=rerun, **common)
        log.info("merged %d shards -> %s: %s", num_shards, args.out, counts)
        return
    workers = default_workers(device) if p.workers == "auto" else p.workers
    encoder = build_encoder(state["backbone"], str(args.encoder)).module
    counts = extract_dataset(
        encoder,
        FrameStore(args.frames),
        videos,
        args.out,
        crop_size=params.transform.crop_size,
        batch_size=p.batch_size,
        device=device,
        workers=workers,
        dtype=dtype,
        channels_last=p.channels_last_3d,
        shard=shard,
        num_shards=num_shards,
        **common,
    )
    where = f"shard {shard} of {num_shards} of " if num_shards > 1 else ""
    log.info("features -> %s%s: %s (%d input workers)", where, args.out, counts, workers)


if __name__ == "__main__":
    from tsp_pretrain.cli import run_stage

    run_stage(main)
