"""Stage `decode@<dataset>`: decode every usable video into the frame store.

Reads `frame_rate` and the `decode` section; paths come from the command line (dvc.yaml).
Videos that cannot be decoded are skipped and listed in the report, never a crash of the stage.

Sharded (README, "Sharded decoding"): `--shard i --num-shards n` (or `decode.shard` /
`decode.num_shards`, or torchrun's RANK / WORLD_SIZE, or a SLURM array's task:
`tsp_pretrain.sharding.resolve_shard`) decodes shard i's share into `<out>/.shards/i-of-n/`, leaving
the videos `<out>` already holds current; `--merge --num-shards n` then checks the shards, moves
their files into `<out>` and writes its index and the report, byte-identical to a single-process
run.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import _checkout  # noqa: F401  (first: this checkout's tsp_pretrain, docstring there)
import pandas as pd

from tsp_pretrain.config import load_params
from tsp_pretrain.digest import code_digest
from tsp_pretrain.logs import setup_logging
from tsp_pretrain.sharding import resolve_shard
from tsp_pretrain.video.decode import decode_dataset, write_report
from tsp_pretrain.video.shards import decode_shard, merge_decode_shards, refuse_unmerged_shards
from tsp_pretrain.video.store import StoreSettings


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
    log = setup_logging(f"decode@{args.dataset}")

    params = load_params()
    p = params.decode
    shard, num_shards = resolve_shard(
        p.shard if args.shard is None else args.shard,
        p.num_shards if args.num_shards is None else args.num_shards,
    )
    dataset = params.dataset(args.dataset)
    videos = pd.read_csv(args.annotations / "videos.csv", dtype={"video_id": str})
    settings = StoreSettings(
        params.frame_rate,
        params.decode.stored_short_side,
        params.decode.store,
        code=code_digest(
            "video/decode.py",
            "video/encode.py",
            "video/store.py",
            "video/probe.py",
            "video/official.py",
        ),
        frame_size=params.decode.frame_size,
        method=params.decode.method,
        mp4_crf=params.decode.mp4_crf,
        mp4_pix_fmt=params.decode.mp4_pix_fmt,
        mp4_keyint=params.decode.mp4_keyint,
    )
    if args.merge:  # merge_decode_shards logs what it did
        argv = [a for a in sys.argv[1:] if a != "--merge"]
        rerun = shlex.join(["python", "stages/decode.py", *argv]) + " --shard {i}"
        merge_decode_shards(
            videos,
            dataset.videos,
            args.out,
            settings,
            num_shards=num_shards,
            rerun=rerun,
            report_path=args.report,
            min_readable_fraction=p.min_readable_fraction,
        )
        return
    common = dict(workers=p.workers, min_readable_fraction=p.min_readable_fraction)
    if num_shards > 1:  # the shard's report goes into its shard.json; the merge writes the stage's
        decode_shard(
            videos, dataset.videos, args.out, settings, shard=shard, num_shards=num_shards, **common
        )
        return
    merge = shlex.join(["python", "stages/decode.py", *sys.argv[1:]]) + " --merge --num-shards N"
    refuse_unmerged_shards(args.out, merge)
    report = decode_dataset(videos, dataset.videos, args.out, settings, **common)
    write_report(args.report, settings, report)
    log.info("%s (report: %s)", report.run_summary(), args.report)


if __name__ == "__main__":
    from tsp_pretrain.cli import run_stage

    run_stage(main, kept_on_interrupt="every video decoded so far (the frame store)")
