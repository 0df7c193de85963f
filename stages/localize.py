"""Stage `localize`: a localization read-out from each encoder's features, scored as the field
scores localizers (detection mAP over tIoU thresholds, proposal AR@AN).

Reads `localize`, `evaluate.fg_threshold`, `evaluate.n_bootstrap`,
`evaluate.num_timeline_videos`, `seed` and `datasets.target`. Probes are fit on the training
subset; the validation subset's proposals and detections are written as ActivityNet results
JSON (any tool reads them) and then scored from those files, so the metrics are exactly what
`python -m tsp_pretrain.localization.score` prints for them. Trained - initial is logged with
its number of videos and a word, with a warning when the trained encoder is worse. The work is
tsp_pretrain.localization.stage.run_localization.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import _checkout  # noqa: F401  (first: this checkout's tsp_pretrain, docstring there)

from tsp_pretrain.config import load_params
from tsp_pretrain.evaluation.inputs import EncoderFolders
from tsp_pretrain.localization.stage import LocalizationFiles, run_localization
from tsp_pretrain.logs import setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--annotations", type=Path, required=True, help="target tables folder")
    parser.add_argument("--initial", type=Path, required=True, help="initial encoder's features")
    parser.add_argument("--trained", type=Path, required=True, help="trained encoder's features")
    parser.add_argument("--out", type=Path, required=True, help="folder of prediction files")
    parser.add_argument("--metrics", type=Path, required=True, help="localization JSON")
    parser.add_argument("--ar-an", type=Path, required=True, help="folder of AR-AN curve CSVs")
    parser.add_argument("--figure", type=Path, required=True, help="timeline PNG")
    args = parser.parse_args()
    setup_logging("localize")
    run_localization(
        load_params(),
        EncoderFolders(args.annotations, initial=args.initial, trained=args.trained),
        LocalizationFiles(
            predictions=args.out, metrics=args.metrics, ar_an=args.ar_an, figure=args.figure
        ),
    )


if __name__ == "__main__":
    from tsp_pretrain.cli import run_stage

    run_stage(main)
