"""Stage `extract@<encoder>`: sliding-window clip features of every target video.

Reads `clip_len`, `frame_rate`, `extract`, `transform` and `encoder.crop_check` (clips are cut at
the crop the encoder was trained at: `tsp_pretrain.models.crop`). One T x F `.npy` per video (named
after the video file, e.g. v_<id>.npy, as localisers expect), `clips.csv` with clip times; then
`meta.json`, `missing_files.txt` (the annotated videos without features: the annotation report's
skipped videos and the videos missing from the frame store), the annotation files the localizers
read (`actionformer.json`, `opentad.json`, `category_idx.txt`) and the optional HDF5 and fixed-
length copies (docs/localizers.md). Resumable and incremental, per video: a re-run extracts only the
videos that are new or whose stored frames changed, and deletes the features of the videos no longer
in the dataset (`tsp_pretrain.features.extract.features_are_current`).

Sharded (README, "Sharded extraction"): `--shard i --num-shards n` (or `extract.shard` /
`extract.num_shards`, or torchrun's RANK / WORLD_SIZE, or a SLURM array's task:
`tsp_pretrain.sharding.resolve_shard`) extracts shard i's share into `<out>/.shards/i-of-n/`;
`--merge --num-shards n` then checks the shards and writes `<out>`, byte-identical to a
single-process run.
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
from tsp_pretrain.features.localizers import write_localizer_annotations
from tsp_pretrain.features.outputs import annotated_but_skipped, encoder_description
from tsp_pretrain.logs import setup_logging
from tsp_pretrain.models.crop import CROP_KEY, check_crop
from tsp_pretrain.models.encoder import build_encoder
from tsp_pretrain.sharding import resolve_shard
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
    crop = params.transform.crop_size
    check_crop(state.get(CROP_KEY), crop, str(args.encoder), params.encoder.crop_check)
    settings = feature_settings(
        args.encoder,
        clip_len=params.clip_len,
        stride=p.stride,
        frame_rate=params.frame_rate,
        crop_size=crop,
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
    store = FrameStore(args.frames)
    if args.merge:  # merge_shards logs what it did
        argv = [a for a in sys.argv[1:] if a != "--merge"]
        rerun = shlex.join(["python", "stages/extract.py", *argv]) + " --shard {i}"
        merge_shards(args.out, videos, store, num_shards=num_shards, rerun=rerun, **common)
        write_localizer_annotations(args.annotations, args.out)
        return
    workers = default_workers(device) if p.workers == "auto" else p.workers
    log.info("extracting on %s with %d input worker process(es)", device, workers)
    encoder = build_encoder(state["backbone"], str(args.encoder)).module
    extract_dataset(  # logs what it did: extracted, kept, removed, without features
        encoder,
        store,
        videos,
        args.out,
        crop_size=crop,
        batch_size=p.batch_size,
        device=device,
        workers=workers,
        dtype=dtype,
        channels_last=p.channels_last_3d,
        shard=shard,
        num_shards=num_shards,
        **common,
    )
    if num_shards == 1:  # a shard's run leaves the folder to the merge
        write_localizer_annotations(args.annotations, args.out)


if __name__ == "__main__":
    from tsp_pretrain.cli import run_stage

    run_stage(main, kept_on_interrupt="the features of every video finished so far")
