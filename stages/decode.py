"""Stage `decode@<dataset>`: decode every usable video into the frame store.

Reads `frame_rate` and the `decode` section; paths come from the command line (dvc.yaml).
Videos that cannot be decoded are skipped and listed in the report, never a crash of the stage.

Sharded (docs/sharding.md, "Sharded decoding"): `--shard i --num-shards n` (or `decode.shard` /
`decode.num_shards`, or torchrun's RANK / WORLD_SIZE, or a SLURM array's task:
`tsp_pretrain.sharding.resolve_shard`) decodes shard i's share into `<out>/.shards/i-of-n/`, leaving
the videos `<out>` already holds current; `--merge --num-shards n` then checks the shards, moves
their files into `<out>` and writes its index and the report, byte-identical to a single-process
run (`tsp_pretrain.video.shards.run_decode_stage`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import _checkout  # noqa: F401  (first: this checkout's tsp_pretrain, docstring there)

from tsp_pretrain.config import load_params
from tsp_pretrain.logs import setup_logging
from tsp_pretrain.video.decode import store_settings
from tsp_pretrain.video.shards import DecodeSpec, run_decode_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", required=True, help="name under `datasets` in params.yaml")
    parser.add_argument("--annotations", type=Path, required=True, help="canonical tables folder")
    parser.add_argument("--out", type=Path, required=True, help="frame store folder")
    parser.add_argument("--report", type=Path, required=True, help="decode report (JSON)")
    parser.add_argument("--shard", type=int, help="this shard (overrides decode.shard)")
    parser.add_argument("--num-shards", type=int, help="overrides decode.num_shards")
    parser.add_argument("--merge", action="store_true", help="merge the --num-shards shards")
    args = parser.parse_args()
    setup_logging(f"decode@{args.dataset}")

    params = load_params()
    p = params.decode
    spec = DecodeSpec(
        params.dataset(args.dataset).videos,
        args.out,
        store_settings(p, params.frame_rate),
        workers=p.workers,
        min_readable_fraction=p.min_readable_fraction,
    )
    run_decode_stage(
        spec,
        args.annotations / "videos.csv",
        shard=p.shard if args.shard is None else args.shard,
        num_shards=p.num_shards if args.num_shards is None else args.num_shards,
        merge=args.merge,
        report_path=args.report,
        argv=sys.argv[1:],
    )


if __name__ == "__main__":
    from tsp_pretrain.cli import run_stage

    run_stage(main, kept_on_interrupt="every video decoded so far (the frame store)")
