"""Temporal action localization: a read-out from frozen features, and the field's metrics.

Modules, one concept each: :mod:`.segments` (tIoU, threshold sets), :mod:`.detection`
(detection mAP as the official ActivityNet evaluation), :mod:`.proposals` (AR@AN and its AUC),
:mod:`.nms` (hard and soft NMS), :mod:`.readout` (actionness -> proposals -> detections),
:mod:`.predictions` (ActivityNet results JSON, CSV), :mod:`.ground_truth` (annotation folders,
ActivityNet JSON, THUMOS14 txt; blocked videos), :mod:`.scoring` (scoring rules, bootstrap,
the metrics report), :mod:`.score` (the command that scores any localizer's output),
:mod:`.simulation` (detections with a known truth, to check what the intervals cover) and
:mod:`.stage` (what stage ``localize`` runs: files in, files out; imported by the stage, not
here).
"""

from tsp_pretrain.localization.detection import DetectionResult, detection_map
from tsp_pretrain.localization.ground_truth import GroundTruth, read_blocked, read_ground_truth
from tsp_pretrain.localization.predictions import read_predictions, write_predictions
from tsp_pretrain.localization.proposals import ProposalResult, average_recall
from tsp_pretrain.localization.readout import Readout, read_out, read_out_encoder
from tsp_pretrain.localization.scoring import (
    Matched,
    Scores,
    bootstrap,
    comparison_report,
    localization_differences,
    match,
    prepare_both,
    prepare_predictions,
)
from tsp_pretrain.localization.segments import tiou_matrix, tiou_thresholds

__all__ = [
    "DetectionResult",
    "GroundTruth",
    "Matched",
    "ProposalResult",
    "Readout",
    "Scores",
    "average_recall",
    "bootstrap",
    "comparison_report",
    "detection_map",
    "localization_differences",
    "match",
    "prepare_both",
    "prepare_predictions",
    "read_blocked",
    "read_ground_truth",
    "read_out",
    "read_out_encoder",
    "read_predictions",
    "tiou_matrix",
    "tiou_thresholds",
    "write_predictions",
]
