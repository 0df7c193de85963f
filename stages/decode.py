"""Stage `decode@<dataset>`: decode every usable video into the frame store.

Reads `frame_rate` and the `decode` section; paths come from the command line (dvc.yaml).
Videos that cannot be decoded are skipped and listed in the report, never a crash of the stage.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import _checkout  # noqa: F401  (first: this checkout's tsp_pretrain, docstring there)
import pandas as pd

from tsp_pretrain.atomic import write_json
from tsp_pretrain.config import load_params
from tsp_pretrain.digest import code_digest
from tsp_pretrain.logs import setup_logging
from tsp_pretrain.video.decode import decode_dataset
from tsp_pretrain.video.store import StoreSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", required=True, help="name under `datasets` in params.yaml")
    parser.add_argument("--annotations", type=Path, required=True, help="canonical tables folder")
    parser.add_argument("--out", type=Path, required=True, help="frame store folder")
    parser.add_argument("--report", type=Path, required=True, help="decode report (JSON)")
    args = parser.parse_args()
    log = setup_logging(f"decode@{args.dataset}")

    params = load_params()
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
    )
    report = decode_dataset(
        videos,
        dataset.videos,
        args.out,
        settings,
        params.decode.workers,
        min_readable_fraction=params.decode.min_readable_fraction,
    )

    document = {"settings": vars(settings), **report.to_json()}
    write_json(args.report, document, indent=1, sort_keys=False)
    log.info("%s (report: %s)", report.run_summary(), args.report)


if __name__ == "__main__":
    from tsp_pretrain.cli import run_stage

    run_stage(main, kept_on_interrupt="every video decoded so far (the frame store)")
