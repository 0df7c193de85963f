"""What stage ``localize`` runs: both encoders' features in, prediction files and scores out.

:func:`run_localization` reads out each encoder (:mod:`.readout`, probed as the separability
probes are: one :class:`~tsp_pretrain.evaluation.spec.EvaluationSpec`), writes its proposals and
detections as ActivityNet results JSON, and scores them *from those files* (:mod:`.scoring`), so
the metrics are exactly what ``python -m tsp_pretrain.localization.score`` prints for them. Then
the paired bootstrap of trained - initial, the timeline figure, and the log in words.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tsp_pretrain.atomic import write_csv, write_json
from tsp_pretrain.config import LocalizeParams, Params
from tsp_pretrain.evaluation.inputs import EncoderFolders
from tsp_pretrain.evaluation.plots import plot_timelines
from tsp_pretrain.evaluation.spec import EvaluationSpec
from tsp_pretrain.evaluation.verdict import log_differences
from tsp_pretrain.features.store import load_features
from tsp_pretrain.localization.ground_truth import GroundTruth, read_ground_truth
from tsp_pretrain.localization.predictions import read_predictions, write_predictions
from tsp_pretrain.localization.readout import Readout, read_out_encoder
from tsp_pretrain.localization.scoring import (
    Matched,
    comparison_report,
    localization_differences,
    match,
    prepare_both,
)
from tsp_pretrain.localization.segments import tiou_thresholds
from tsp_pretrain.tables import AnnotationTables, read_annotations

log = logging.getLogger(__name__)

#: The order the encoders are read out in; the first is A of the report's A - B.
ORDER = ("trained", "initial")
#: The prediction files of each encoder, ``<predictions>/<encoder>/<kind>.json``.
KINDS = ("detections", "proposals")


@dataclass(frozen=True)
class LocalizationFiles:
    """Where stage ``localize`` writes: the folder of prediction files (per encoder: detections
    and proposals JSON, per-class AP CSV), the metrics JSON, the folder of AR-AN curve CSVs
    (``<encoder>.csv``) and the timeline PNG."""

    predictions: Path
    metrics: Path
    ar_an: Path
    figure: Path


@dataclass(frozen=True)
class ScoredReadout:
    """One encoder's read-out as scored: its matches (what the bootstrap re-weights), its
    validation clips with their actionness and its detections as scored (for the figure)."""

    matched: Matched
    clips: pd.DataFrame
    detections: pd.DataFrame


def run_localization(
    params: Params, inputs: EncoderFolders, out: LocalizationFiles
) -> dict[str, Any]:
    """Read out and score both encoders of ``inputs`` (``localize`` params, the evaluation spec
    of the params), write ``out`` and log the result; returns the ``localization.json`` dict."""
    spec = EvaluationSpec.from_params(params)
    tables = read_annotations(inputs.annotations)
    truth = read_ground_truth(inputs.annotations, spec.valid_subset)
    thresholds = tiou_thresholds(params.localize.tiou)
    scored: dict[str, ScoredReadout] = {}
    for name, folder in inputs.features(ORDER):
        readout = _read_out(folder, tables, params.localize, spec)
        files = _write_predictions(out.predictions / name, readout, str(folder), truth)
        matched, detections = _score(name, files, truth, thresholds)
        scored[name] = ScoredReadout(matched, readout.clips, detections)
        _write_scores(name, matched, out)

    report = comparison_report(
        {name: s.matched for name, s in scored.items()},
        n_bootstrap=spec.n_bootstrap,
        seed=spec.seed,
    )
    write_json(out.metrics, report, sort_keys=False)
    plot_timelines(
        {"initial": scored["initial"].clips, "trained": scored["trained"].clips},
        tables.segments,
        out.figure,
        num_videos=params.evaluate.num_timeline_videos,
        detections={
            "initial": scored["initial"].detections,
            "trained": scored["trained"].detections,
        },
    )
    _log_summary(report)
    return report


def _read_out(
    folder: Path, tables: AnnotationTables, params: LocalizeParams, spec: EvaluationSpec
) -> Readout:
    features, clips = load_features(folder)
    return read_out_encoder(
        features,
        clips,
        tables.segments,
        tables.videos,
        tables.labels,
        params,
        spec,
        features_source=str(folder),
    )


def _write_predictions(
    folder: Path, readout: Readout, source: str, truth: GroundTruth
) -> dict[str, Path]:
    """Write the read-out's detections and proposals as ActivityNet results JSON in ``folder``
    (``source``: the features folder, named in the files); the files by kind."""
    files = {kind: folder / f"{kind}.json" for kind in KINDS}
    details = f"TSP linear read-out of {source} (stage localize; params: localize)"
    for kind, table in (("detections", readout.detections), ("proposals", readout.proposals)):
        write_predictions(
            files[kind],
            table,
            proposals=kind == "proposals",
            details=details,
            videos=truth.videos,
        )
    return files


def _score(
    name: str, files: dict[str, Path], truth: GroundTruth, thresholds: np.ndarray
) -> tuple[Matched, pd.DataFrame]:
    """Read the prediction files back, apply the scoring rules (notes logged as warnings) and
    match them against ``truth`` once; the matches and the detections as scored."""
    dets, props, notes = prepare_both(
        read_predictions(files["detections"]), read_predictions(files["proposals"]), truth
    )
    for note in notes:
        log.warning("%s: %s", name, note)
    matched = match(truth, dets, props, thresholds=thresholds, videos=truth.videos)
    return matched, dets


def _write_scores(name: str, matched: Matched, out: LocalizationFiles) -> None:
    """The encoder's AP per class and its AR-AN curve, as CSV."""
    scores = matched.scores()
    per_class = scores.detection.per_class_table()
    write_csv(out.predictions / name / "per_class_ap.csv", per_class, float_format="%.4f")
    curve = scores.proposals.curve
    ar_an = pd.DataFrame({"an": range(1, len(curve) + 1), "ar": curve.round(4)})
    write_csv(out.ar_an / f"{name}.csv", ar_an)


def _log_summary(report: dict[str, Any]) -> None:
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
