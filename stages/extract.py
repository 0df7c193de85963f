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

Sharded (docs/sharding.md, "Sharded extraction"): `--shard i --num-shards n` (or `extract.shard` /
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
from tsp_pretrain.features.stage import ExtractionPaths, run_extraction
from tsp_pretrain.logs import setup_logging


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
    setup_logging(f"extract {args.encoder}")
    argv = [a for a in sys.argv[1:] if a != "--merge"]
    run_extraction(  # logs what it did: extracted, kept, removed, without features
        load_params(),
        ExtractionPaths(args.encoder, args.annotations, args.frames, args.out),
        shard=args.shard,
        num_shards=args.num_shards,
        merge=args.merge,
        rerun=shlex.join(["python", "stages/extract.py", *argv]) + " --shard {i}",
    )


if __name__ == "__main__":
    from tsp_pretrain.cli import run_stage

    run_stage(main, kept_on_interrupt="the features of every video finished so far")
