"""Stage `localize`: a localization read-out from each encoder's features, scored as the field
scores localizers (detection mAP over tIoU thresholds, proposal AR@AN).

Reads `localize`, `evaluate.fg_threshold`, `evaluate.n_bootstrap`,
`evaluate.num_timeline_videos`, `seed` and `datasets.target`. Probes are fit on the training
subset; the validation subset's proposals and detections are written as ActivityNet results
JSON (any tool reads them) and then scored from those files, so the metrics are exactly what
`python -m tsp_pretrain.localization.score` prints for them. Trained - initial is logged with
its number of videos and a word, with a warning when the trained encoder is worse.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import _checkout  # noqa: F401  (first: this checkout's tsp_pretrain, docstring there)
import pandas as pd

from tsp_pretrain.atomic import write_csv, write_json
from tsp_pretrain.config import load_params
from tsp_pretrain.evaluation import log_differences, plot_timelines
from tsp_pretrain.features.store import load_features
from tsp_pretrain.localization import (
    comparison_report,
    localization_differences,
    match,
    prepare_both,
    read_ground_truth,
    read_out_encoder,
    read_predictions,
    tiou_thresholds,
    write_predictions,
)
from tsp_pretrain.logs import setup_logging
from tsp_pretrain.tables import read_annotations


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
    log = setup_logging("localize")
    params = load_params()
    dataset, settings, ev = params.dataset("target"), params.localize, params.evaluate
    tables = read_annotations(args.annotations)
    truth = read_ground_truth(args.annotations, dataset.valid_subset)
    thresholds = tiou_thresholds(settings.tiou)

    matched, clips, detections = {}, {}, {}
    for name, folder in (("trained", args.trained), ("initial", args.initial)):
        features, clip_table = load_features(folder)
        readout = read_out_encoder(
            features,
            clip_table,
            tables.segments,
            tables.videos,
            tables.labels,
            settings,
            train_subset=dataset.train_subset,
            valid_subset=dataset.valid_subset,
            seed=params.seed,
            threshold=ev.fg_threshold,
            features_source=str(folder),
        )
        files = {kind: args.out / name / f"{kind}.json" for kind in ("detections", "proposals")}
        details = f"TSP linear read-out of {folder} (stage localize; params: localize)"
        for kind, table in (("detections", readout.detections), ("proposals", readout.proposals)):
            write_predictions(
                files[kind],
                table,
                proposals=kind == "proposals",
                details=details,
                videos=truth.videos,
            )
        dets, props, notes = prepare_both(
            read_predictions(files["detections"]), read_predictions(files["proposals"]), truth
        )
        for note in notes:
            log.warning("%s: %s", name, note)
        matched[name] = match(truth, dets, props, thresholds=thresholds, videos=truth.videos)
        clips[name], detections[name] = readout.clips, dets
        scores = matched[name].scores()
        per_class = scores.detection.per_class_table()
        write_csv(args.out / name / "per_class_ap.csv", per_class, float_format="%.4f")
        curve = scores.proposals.curve
        ar_an = pd.DataFrame({"an": range(1, len(curve) + 1), "ar": curve.round(4)})
        write_csv(args.ar_an / f"{name}.csv", ar_an)

    report = comparison_report(matched, n_bootstrap=ev.n_bootstrap, seed=params.seed)
    write_json(args.metrics, report, sort_keys=False)
    plot_timelines(
        {"initial": clips["initial"], "trained": clips["trained"]},
        tables.segments,
        args.figure,
        num_videos=ev.num_timeline_videos,
        detections={"initial": detections["initial"], "trained": detections["trained"]},
    )
    for name in ("initial", "trained"):
        m = report[name]
        log.info(
            "%-8s average mAP %.3f [%.3f, %.3f] (mAP@0.5 %.3f), AR@100 %.3f, AUC %.3f",
            name,
            m["average_map"],
            m["average_map_ci_low"],
            m["average_map_ci_high"],
            m.get("map_50", float("nan")),
            m["ar_100"],
            m["ar_auc"],
        )
    log_differences(localization_differences(report))


if __name__ == "__main__":
    from tsp_pretrain.cli import run_stage

    run_stage(main)
