"""What stage ``evaluate`` runs: both encoders' features in, the separability files out.

:func:`run_evaluation` probes the initial and the trained encoder alike (one
:class:`~tsp_pretrain.evaluation.spec.EvaluationSpec`), compares them on the same validation
videos, writes ``separability.json``, the per-video AUC CSV and one ROC CSV per encoder, and logs
each encoder's numbers and trained - initial in words (:mod:`.verdict`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from tsp_pretrain.atomic import write_csv, write_json
from tsp_pretrain.config import Params
from tsp_pretrain.evaluation.evaluate import (
    EncoderEvaluation,
    compare_encoders,
    evaluate_encoder,
    separability_differences,
)
from tsp_pretrain.evaluation.inputs import EncoderFolders
from tsp_pretrain.evaluation.spec import EvaluationSpec
from tsp_pretrain.evaluation.verdict import log_differences
from tsp_pretrain.features.store import load_features
from tsp_pretrain.tables import read_annotations

log = logging.getLogger(__name__)

#: The order the encoders are evaluated in, and their rows in the per-video CSV.
ORDER = ("initial", "trained")


@dataclass(frozen=True)
class SeparabilityFiles:
    """Where stage ``evaluate`` writes: the metrics JSON, the per-video AUC CSV (both encoders,
    column ``encoder``) and the folder of ROC CSVs (``<encoder>.csv``)."""

    metrics: Path
    per_video: Path
    roc: Path


def run_evaluation(
    params: Params, inputs: EncoderFolders, out: SeparabilityFiles
) -> dict[str, Any]:
    """Evaluate both encoders of ``inputs`` with the params' spec, write ``out`` and log the
    result; returns the ``separability.json`` dict."""
    spec = EvaluationSpec.from_params(params)
    tables = read_annotations(inputs.annotations)
    results: dict[str, EncoderEvaluation] = {}
    for name, folder in inputs.features(ORDER):
        features, clips = load_features(folder)
        results[name] = evaluate_encoder(
            features,
            clips,
            tables.segments,
            tables.videos,
            spec,
            features_source=str(folder),
        )
    summary = compare_encoders(
        results["trained"],
        results["initial"],
        name_a="trained",
        name_b="initial",
        n_bootstrap=spec.n_bootstrap,
        seed=spec.seed,
    )
    _write(summary, results, out)
    _log_summary(summary, results)
    return summary


def _write(
    summary: dict[str, Any], results: Mapping[str, EncoderEvaluation], out: SeparabilityFiles
) -> None:
    write_json(out.metrics, summary, sort_keys=False)
    per_video = [r.per_video_auc.assign(encoder=name) for name, r in results.items()]
    write_csv(out.per_video, pd.concat(per_video, ignore_index=True), float_format="%.6f")
    for name, r in results.items():
        write_csv(out.roc / f"{name}.csv", r.roc, float_format="%.5f")


def _log_summary(summary: dict[str, Any], results: Mapping[str, EncoderEvaluation]) -> None:
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
