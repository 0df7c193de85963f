"""Stage `videos@<dataset>` (always run): list the dataset's videos folder into a manifest.

Writes the manifest CSV (relative path, size, content digest, problem), the report of entries
that cannot be read (dangling links, permissions, non-regular files) and a record of the optional
labels file. The stages that read videos or labels depend on these files, not on the folder:
a broken file in the folder is a reported skip, never an abort of `dvc repro`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import _checkout  # noqa: F401  (first: this checkout's tsp_pretrain, docstring there)

from tsp_pretrain.config import load_params
from tsp_pretrain.logs import setup_logging
from tsp_pretrain.video.manifest import list_dataset_videos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", required=True, help="name under `datasets` in params.yaml")
    parser.add_argument("--out", type=Path, required=True, help="manifest CSV")
    parser.add_argument("--labels-record", type=Path, required=True, help="labels record (JSON)")
    parser.add_argument("--report", type=Path, required=True, help="skipped entries (JSON)")
    parser.add_argument("--cache", type=Path, required=True, help="digest cache (not an output)")
    args = parser.parse_args()
    setup_logging(f"videos@{args.dataset}")

    list_dataset_videos(
        load_params().dataset(args.dataset),
        args.dataset,
        manifest=args.out,
        labels_record=args.labels_record,
        report=args.report,
        cache=args.cache,
    )


if __name__ == "__main__":
    from tsp_pretrain.cli import run_stage

    run_stage(main, kept_on_interrupt="every file digest computed so far (the digest cache)")
