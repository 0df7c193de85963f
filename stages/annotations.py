"""Stage `annotations@<dataset>`: raw annotations -> canonical videos/segments/labels tables.

Reads `clip_len`, `frame_rate`, the `annotations` section and `datasets.<dataset>`; finds video
files (in subfolders too) through the videos manifest of stage `videos@<dataset>`, and the labels
file checked against that stage's record. Every segment or video that is clipped, dropped or
skipped is listed in `report.csv` / `report.json`; a summary per subset is printed, and the stage
fails when a subset lost too many videos or has no foreground left.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import _checkout  # noqa: F401  (first: this checkout's tsp_pretrain, docstring there)

from tsp_pretrain.annotations.dataset import annotate_dataset
from tsp_pretrain.config import load_params
from tsp_pretrain.logs import setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", required=True, help="name under `datasets` in params.yaml")
    parser.add_argument("--manifest", type=Path, required=True, help="videos manifest (CSV)")
    parser.add_argument("--labels-record", type=Path, required=True, help="labels record (JSON)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    args = parser.parse_args()
    log = setup_logging(f"annotations@{args.dataset}")
    annotate_dataset(args.dataset, load_params(), args.manifest, args.labels_record, args.out)
    log.info("tables and report written to %s", args.out)


if __name__ == "__main__":
    from tsp_pretrain.cli import run_stage

    run_stage(main)
