"""Stage `annotations@<dataset>`: raw annotations -> canonical videos/segments/labels tables.

Reads `clip_len`, `frame_rate`, the `annotations` section and `datasets.<dataset>`. Every segment
or video that is clipped, dropped or skipped is listed in `report.csv` / `report.json`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tsp_pretrain.annotations import build_annotations, write_annotations
from tsp_pretrain.config import load_params
from tsp_pretrain.logs import setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", required=True, help="name under `datasets` in params.yaml")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    args = parser.parse_args()
    log = setup_logging(f"annotations@{args.dataset}")

    params = load_params()
    dataset = params.dataset(args.dataset)
    result = build_annotations(
        dataset.format,
        dataset.annotation_source(),
        dataset.videos,
        clip_seconds=params.clip_seconds,
        min_background=params.annotations.min_background,
        duration_tolerance=params.annotations.duration_tolerance,
        labels=dataset.labels,
        workers=params.annotations.workers,
    )
    write_annotations(result, args.out)
    log.info("tables and report written to %s", args.out)


if __name__ == "__main__":
    main()
