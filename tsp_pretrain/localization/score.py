"""Score any localizer's predictions: detection mAP and proposal AR@AN, ActivityNet protocol.

    python -m tsp_pretrain.localization.score --ground-truth activity_net.v1-3.min.json \\
        --predictions results.json [--subset validation] [--blocked blocked.json]

Ground truth: an ActivityNet-style JSON (ActivityNet v1.3, ActionFormer's THUMOS14 JSON), a
THUMOS14 folder of ``<Class>_val.txt`` / ``_test.txt``, or this project's annotations folder
(``data/annotations/target``). Predictions: ActivityNet results JSON (OpenTAD, G-TAD, BMN, this
project's ``localize`` stage), ActionFormer's ``{"<id>": [...]}`` with integer labels
(``--labels``), or a CSV ``video-id, t-start, t-end, label, score``. A file without labels is
scored as proposals only. AR@AN ranks the predictions themselves as proposals (labels
ignored) unless ``--proposals`` names a class-free proposals file; it is the official AR@AN
(AN an average number of proposals per video) unless ``--ar-scheme per-video`` asks for the top
AN of every video. ``--json`` writes every number (per class and threshold) to a file.
Thresholds are the official ``np.linspace`` floats (printed rounded).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tsp_pretrain.annotations.schema import load_label_list
from tsp_pretrain.atomic import write_json
from tsp_pretrain.evaluation.errors import EvaluationError
from tsp_pretrain.evaluation.evaluate import round_floats
from tsp_pretrain.localization.ground_truth import read_blocked, read_ground_truth
from tsp_pretrain.localization.predictions import read_predictions
from tsp_pretrain.localization.scoring import bootstrap, match, prepare_both
from tsp_pretrain.localization.segments import tiou_thresholds


def _thresholds(text: str):
    if "," in text or text.replace(".", "", 1).isdigit():
        return tiou_thresholds([float(t) for t in text.split(",")])
    return tiou_thresholds(text)


def score_files(args: argparse.Namespace) -> dict:
    """Everything the command prints, as a dict (rounded to 4 decimals)."""
    truth = read_ground_truth(args.ground_truth, args.subset)
    blocked = read_blocked(args.blocked) if args.blocked else []
    truth = truth.without(blocked)
    labels = load_label_list(args.labels) if args.labels else None
    table = read_predictions(args.predictions, labels)
    has_labels = bool((table["label"] != "").any())
    if has_labels and (table["label"] == "").any():
        raise EvaluationError(
            f"{args.predictions}: some predictions have a label and some do not; give every "
            "prediction a label (detections) or none (proposals)"
        )
    detections = table if has_labels and not args.proposals_only else None
    proposals = read_predictions(args.proposals) if args.proposals else table
    detections, proposals, notes = prepare_both(
        detections, proposals, truth, blocked=blocked, ignore_outside=args.ignore_outside
    )
    matched = match(
        truth,
        detections,
        proposals,
        thresholds=_thresholds(args.tiou),
        proposal_thresholds=_thresholds(args.proposal_tiou),
        ar_scheme=args.ar_scheme.replace("-", "_"),
    )
    scores = matched.scores()
    out: dict = {
        "ground_truth": str(args.ground_truth),
        "subset": args.subset,
        "predictions": str(args.predictions),
        "proposals": str(args.proposals or args.predictions),
        "num_videos": len(truth.videos),
        "num_ground_truth": len(truth.segments),
        "num_predictions": len(table),
        "blocked_videos": len(blocked),
        "notes": notes,
        "ar_scheme": args.ar_scheme,
        "metrics": scores.metrics(),
    }
    if scores.detection is not None:
        d = scores.detection
        out["map_by_tiou"] = {f"{t:g}": float(v) for t, v in zip(d.thresholds, d.map, strict=True)}
        out["ap_by_class"] = d.per_class_table().set_index("label").to_dict(orient="index")
    if args.n_bootstrap:
        (intervals,) = bootstrap([matched], n_bootstrap=args.n_bootstrap, seed=args.seed)
        out["ci95"] = {k: [i.low, i.high] for k, i in intervals.items()}
    return round_floats(out)


def format_report(result: dict) -> str:
    """The human-readable summary printed by the command."""
    m = result["metrics"]
    lines = [
        f"{result['predictions']}: {result['num_predictions']} predictions; ground truth "
        f"{result['ground_truth']} ({result['subset']}): {result['num_ground_truth']} segments "
        f"in {result['num_videos']} videos"
        + (f", {result['blocked_videos']} blocked" if result["blocked_videos"] else ""),
        *(f"note: {n}" for n in result["notes"]),
    ]
    ci = result.get("ci95", {})

    def fmt(key: str) -> str:
        text = f"{100 * m[key]:.2f}"
        if key in ci:
            text += f" [{100 * ci[key][0]:.2f}, {100 * ci[key][1]:.2f}]"
        return text

    if "average_map" in m:
        per_t = ", ".join(f"{t}: {100 * v:.2f}" for t, v in result["map_by_tiou"].items())
        lines.append(f"detection: average mAP {fmt('average_map')} %  (mAP at tIoU {per_t})")
    scheme = "" if result.get("ar_scheme", "official") == "official" else " (top AN per video)"
    lines.append(
        f"proposals{scheme}: "
        + ", ".join(f"AR@{an} {fmt(f'ar_{an}')}" for an in (1, 5, 10, 100))
        + f", AUC {fmt('ar_auc')} %"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tsp_pretrain.localization.score",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--ground-truth", type=Path, required=True)
    parser.add_argument("--predictions", type=Path, required=True)
    parser.add_argument("--subset", default="validation", help="validation (default), test, ...")
    parser.add_argument("--blocked", type=Path, help="JSON list (or lines) of video ids to skip")
    parser.add_argument("--labels", type=Path, help="JSON list of class names for integer labels")
    parser.add_argument(
        "--tiou", default="activitynet", help="activitynet | thumos14 | 0.3,0.5,..."
    )
    parser.add_argument(
        "--proposal-tiou",
        default="activitynet",
        help="AR thresholds: activitynet (default, np.linspace(0.5, 0.95, 10)) | thumos14 | list",
    )
    parser.add_argument(
        "--ar-scheme",
        choices=("official", "per-video"),
        default="official",
        help="AR@AN as eval_proposal.py (default: AN is an average over videos, the file's "
        "proposals per video set each video's budget) or the top AN of every video",
    )
    parser.add_argument(
        "--proposals",
        type=Path,
        help="a separate proposals file for AR (default: the predictions, labels ignored)",
    )
    parser.add_argument("--proposals-only", action="store_true", help="ignore labels")
    parser.add_argument(
        "--ignore-outside",
        action="store_true",
        help="drop predictions in videos outside the subset (default: false positives)",
    )
    parser.add_argument("--n-bootstrap", type=int, default=0, help="bootstrap resamples (0: off)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write every number to this JSON file")
    args = parser.parse_args(argv)
    result = score_files(args)
    if args.json:
        write_json(args.json, result, sort_keys=False)
    print(format_report(result))


if __name__ == "__main__":
    from tsp_pretrain.cli import run_stage
    from tsp_pretrain.numerics import pin

    pin(reexec=True)  # the same numbers on every machine (numpy loaded with the package)
    run_stage(main, name="tsp_pretrain.localization.score")
