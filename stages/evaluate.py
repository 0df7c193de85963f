"""Stage `evaluate`: foreground/background separability of the initial and trained encoders.

Reads `evaluate`, `seed` and `datasets.target` (its subsets). Linear probes are fit on the
training subset's clip features and scored on the validation subset; the within-video AUC gets a
bootstrap interval over videos, and trained-minus-initial a paired one, logged with its number
of videos and a word (none below the minimum of videos), and a warning when the trained encoder
separates worse than the initial one (tsp_pretrain.evaluation.verdict).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import _checkout  # noqa: F401  (first: this checkout's tsp_pretrain, docstring there)
import pandas as pd

from tsp_pretrain.atomic import write_csv, write_json
from tsp_pretrain.config import load_params
from tsp_pretrain.evaluation import (
    compare_encoders,
    evaluate_encoder,
    log_differences,
    separability_differences,
)
from tsp_pretrain.features.store import load_features
from tsp_pretrain.logs import setup_logging
from tsp_pretrain.tables import read_annotations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--annotations", type=Path, required=True, help="target tables folder")
    parser.add_argument("--initial", type=Path, required=True, help="initial encoder's features")
    parser.add_argument("--trained", type=Path, required=True, help="trained encoder's features")
    parser.add_argument("--metrics", type=Path, required=True, help="separability JSON")
    parser.add_argument("--per-video", type=Path, required=True, help="per-video AUC CSV")
    parser.add_argument("--roc", type=Path, required=True, help="folder of ROC CSVs")
    args = parser.parse_args()
    log = setup_logging("evaluate")
    params = load_params()
    dataset, ev = params.dataset("target"), params.evaluate
    tables = read_annotations(args.annotations)

    results = {}
    for name, folder in (("initial", args.initial), ("trained", args.trained)):
        features, clips = load_features(folder)
        results[name] = evaluate_encoder(
            features,
            clips,
            tables.segments,
            tables.videos,
            train_subset=dataset.train_subset,
            valid_subset=dataset.valid_subset,
            seed=params.seed,
            n_bootstrap=ev.n_bootstrap,
            threshold=ev.fg_threshold,
            features_source=str(folder),
        )
    summary = compare_encoders(
        results["trained"],
        results["initial"],
        name_a="trained",
        name_b="initial",
        n_bootstrap=ev.n_bootstrap,
        seed=params.seed,
    )

    write_json(args.metrics, summary, sort_keys=False)
    per_video = [r.per_video_auc.assign(encoder=name) for name, r in results.items()]
    write_csv(args.per_video, pd.concat(per_video, ignore_index=True), float_format="%.6f")
    for name, r in results.items():
        write_csv(args.roc / f"{name}.csv", r.roc, float_format="%.5f")
    for name in results:
        m = summary[name]
        log.info(
            "%-8s within-video AUC %.3f [%.3f, %.3f], pooled AUC %.3f, action top-1 %.3f",
            name,
            m["within_video_auc"],
            m["within_video_auc_ci_low"],
            m["within_video_auc_ci_high"],
            m["fg_auc"],
            m["action_top1"],
        )
    log_differences(separability_differences(summary))


if __name__ == "__main__":
    from tsp_pretrain.cli import run_stage

    run_stage(main)
