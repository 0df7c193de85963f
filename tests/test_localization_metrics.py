"""Detection mAP and proposal AR@AN: hand-computed cases, and a brute-force reference.

The reference below is written independently of ``tsp_pretrain.localization``: plain Python
loops that follow the official ActivityNet ``eval_detection.py`` / ``eval_proposal.py`` step by
step (per class: rank by score; visit the same video's ground truth by descending tIoU; lock;
VOC interpolation), with the two tie rules the library fixes (stable ranking, lowest index
first on equal tIoU). Random cases then compare the two.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tsp_pretrain.localization.detection import average_precision as weighted_ap
from tsp_pretrain.localization.detection import detection_map, match_detections
from tsp_pretrain.localization.proposals import ProposalResult, average_recall, recall_counts
from tsp_pretrain.localization.segments import ACTIVITYNET_TIOU, THUMOS14_TIOU, tiou_thresholds

ANET = np.array(ACTIVITYNET_TIOU)


def gt_table(*rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["video_id", "t_start", "t_end", "label"])


def pred_table(*rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["video_id", "t_start", "t_end", "label", "score"])


# --- the brute-force reference -------------------------------------------------------------


def ref_iou(a, b) -> float:
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = (a[1] - a[0]) + (b[1] - b[0]) - inter
    return inter / union if union > 0 else 0.0


def ref_ap_class(gts: list, preds: list, thr: float) -> float:
    """gts: [(video, s, e)], preds: [(video, s, e, score)] of one class."""
    order = sorted(range(len(preds)), key=lambda i: -preds[i][3])  # sorted() is stable
    used = set()
    tp, fp = [], []
    for i in order:
        video, s, e, _ = preds[i]
        candidates = [
            (ref_iou((s, e), (g[1], g[2])), j) for j, g in enumerate(gts) if g[0] == video
        ]
        if not candidates:
            tp.append(0)
            fp.append(1)
            continue
        # descending tIoU, lowest index first on ties
        candidates.sort(key=lambda c: (-c[0], c[1]))
        hit = 0
        for iou, j in candidates:
            if iou < thr:
                break
            if j in used:
                continue
            used.add(j)
            hit = 1
            break
        tp.append(hit)
        fp.append(1 - hit)
    if not preds:
        return 0.0
    ctp = cfp = 0
    rec, prec = [], []
    for t, f in zip(tp, fp, strict=True):
        ctp += t
        cfp += f
        rec.append(ctp / len(gts))
        prec.append(ctp / (ctp + cfp))
    mrec = [0.0, *rec, 1.0]
    mprec = [0.0, *prec, 0.0]
    for i in range(len(mprec) - 2, -1, -1):
        mprec[i] = max(mprec[i], mprec[i + 1])
    return sum(
        (mrec[i] - mrec[i - 1]) * mprec[i] for i in range(1, len(mrec)) if mrec[i] != mrec[i - 1]
    )


def ref_map(gt: pd.DataFrame, pred: pd.DataFrame, thresholds) -> np.ndarray:
    """classes (sorted) x thresholds."""
    out = []
    for label in sorted(set(gt["label"])):
        gts = [(r.video_id, r.t_start, r.t_end) for r in gt.itertuples() if r.label == label]
        preds = [
            (r.video_id, r.t_start, r.t_end, r.score) for r in pred.itertuples() if r.label == label
        ]
        out.append([ref_ap_class(gts, preds, t) for t in thresholds])
    return np.array(out)


def ref_ar(gt: pd.DataFrame, props: pd.DataFrame, thresholds, max_an: int = 100) -> np.ndarray:
    """AR at AN = 1..max_an: top AN proposals per video, recall over all gt, mean over tIoU."""
    per_video = []
    for video in sorted(set(gt["video_id"])):
        mine = props[props["video_id"] == video]
        ranked = sorted(
            zip(mine["score"], mine["t_start"], mine["t_end"], range(len(mine)), strict=True),
            key=lambda r: (-r[0], r[3]),
        )
        truths = [(g.t_start, g.t_end) for g in gt[gt["video_id"] == video].itertuples()]
        per_video.append((ranked, truths))
    curve = []
    for an in range(1, max_an + 1):
        recalls = []
        for t in thresholds:
            hit = total = 0
            for ranked, truths in per_video:
                for truth in truths:
                    total += 1
                    hit += any(ref_iou((s, e), truth) >= t for _, s, e, _ in ranked[:an])
            recalls.append(hit / total)
        curve.append(sum(recalls) / len(recalls))
    return np.array(curve)


def random_case(rng: np.random.Generator, videos: int = 6, classes: int = 3, extra_video=True):
    labels = [f"c{k}" for k in range(classes)]
    gt_rows, pred_rows = [], []
    for v in range(videos):
        for _ in range(rng.integers(0, 4)):
            s = rng.uniform(0, 50)
            gt_rows.append((f"v{v}", s, s + rng.uniform(1, 20), labels[rng.integers(classes)]))
    for v in range(videos + int(extra_video)):  # one video has predictions but no ground truth
        for _ in range(rng.integers(0, 12)):
            s = rng.uniform(0, 50)
            pred_rows.append(
                (f"v{v}", s, s + rng.uniform(0.5, 20), labels[rng.integers(classes)], rng.random())
            )
    gt = gt_table(*gt_rows)
    if gt.empty or gt["label"].nunique() < 2:
        return random_case(rng, videos, classes, extra_video)
    # snap some predictions onto ground truth (jittered) so that true positives happen
    pred = pred_table(*pred_rows)
    for i in rng.choice(len(gt), size=len(gt) // 2 + 1, replace=False):
        g = gt.iloc[i]
        jitter = rng.normal(0, 1.0, 2)
        pred.loc[len(pred)] = (
            g.video_id,
            g.t_start + jitter[0],
            g.t_end + jitter[1],
            g.label,
            rng.random(),
        )
    return gt, pred


# --- hand-computed cases ------------------------------------------------------------------------


def test_perfect_prediction_scores_one_everywhere():
    gt = gt_table(("a", 2.0, 8.0, "jump"), ("b", 1.0, 3.0, "run"))
    pred = pred_table(("a", 2.0, 8.0, "jump", 0.9), ("b", 1.0, 3.0, "run", 0.2))
    result = detection_map(gt, pred, ANET)
    assert result.ap.shape == (2, 10)
    np.testing.assert_array_equal(result.ap, 1.0)
    assert result.average_map == 1.0


def test_duplicate_is_a_false_positive_after_the_match():
    gt = gt_table(("a", 0.0, 10.0, "jump"))
    # the duplicate ranks second: precision 1 then 0.5 at recall 1 -> AP 1
    second = pred_table(("a", 0.0, 10.0, "jump", 0.9), ("a", 0.0, 10.0, "jump", 0.8))
    assert detection_map(gt, second, ANET).average_map == 1.0
    # a worse duplicate ranks first at high tIoU: at 0.5 it matches (locking the truth), the
    # exact one is then a false positive; at tIoU above 9/11 the first is a false positive
    first = pred_table(("a", 1.0, 11.0, "jump", 0.9), ("a", 0.0, 10.0, "jump", 0.8))
    ap = detection_map(gt, first, ANET).ap[0]
    iou = 9 / 11
    np.testing.assert_allclose(ap[iou >= ANET], 1.0)
    np.testing.assert_allclose(ap[iou < ANET], 0.5)  # FP then TP: precision 1/2 at recall 1


@pytest.mark.parametrize(
    ("end", "matched"),
    [(4.0, True), (4.0001, False)],  # tIoU 3/4 exactly: a hit at 0.75; a hair less: a miss
)
def test_tiou_just_at_and_just_below_a_threshold(end, matched):
    gt = gt_table(("a", 0.0, 3.0, "jump"))
    pred = pred_table(("a", 0.0, end, "jump", 0.5))
    ap = detection_map(gt, pred, ANET).ap[0]
    at = ANET == 0.75
    assert ap[at][0] == (1.0 if matched else 0.0)
    np.testing.assert_array_equal(ap[ANET < 0.75], 1.0)
    np.testing.assert_array_equal(ap[ANET > 0.75], 0.0)


def test_shifted_segment_average_map():
    gt = gt_table(("a", 0.0, 10.0, "jump"))
    pred = pred_table(("a", 1.0, 11.0, "jump", 0.5))  # tIoU 9/11 = 0.818: hits 0.5 .. 0.8
    assert detection_map(gt, pred, ANET).average_map == pytest.approx(0.7)
    assert detection_map(gt, pred, np.array(THUMOS14_TIOU)).average_map == 1.0


def test_wrong_class_and_class_without_predictions():
    gt = gt_table(("a", 0.0, 10.0, "jump"), ("b", 0.0, 5.0, "run"))
    # the run is predicted as a jump in video b: a false positive of "jump" (no jump in b);
    # "run" has no prediction at all: AP 0
    pred = pred_table(("a", 0.0, 10.0, "jump", 0.4), ("b", 0.0, 5.0, "jump", 0.9))
    result = detection_map(gt, pred, ANET)
    assert result.classes == ["jump", "run"]
    np.testing.assert_allclose(result.ap[0], 0.5)  # FP (0.9) then TP (0.4): precision 1/2
    np.testing.assert_array_equal(result.ap[1], 0.0)
    assert result.average_map == pytest.approx(0.25)


def test_predictions_in_a_video_without_ground_truth_are_false_positives():
    gt = gt_table(("a", 0.0, 10.0, "jump"), ("a", 20.0, 30.0, "jump"))
    pred = pred_table(
        ("a", 0.0, 10.0, "jump", 0.9),
        ("empty", 0.0, 10.0, "jump", 0.8),  # a video with no ground truth
        ("a", 20.0, 30.0, "jump", 0.7),
    )
    # recall 1/2 at precision 1, then recall 1 at precision 2/3 -> 0.5 + 0.5 * 2/3
    assert detection_map(gt, pred, ANET).average_map == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_greedy_matching_takes_the_best_free_ground_truth():
    # p1 overlaps g1 (tIoU 0.9) and g2 (0.6) and takes g1; p2 overlaps g1 best (0.8) but g1 is
    # taken, so it takes g2 (0.7) at thresholds <= 0.7 and is a false positive above
    gt = gt_table(("a", 0.0, 10.0, "x"), ("a", 2.0, 12.0, "x"))
    pred = pred_table(("a", 0.0, 9.0, "x", 0.9), ("a", 1.0, 11.0, "x", 0.8))
    tp = match_detections(gt, pred, ANET, ["a"])[0].tp
    iou = [[0.9, 7 / 12], [9 / 11, 9 / 11]]
    assert tp[0].tolist() == [t <= iou[0][0] for t in ANET]
    assert tp[1].tolist() == [t <= iou[1][1] for t in ANET]  # the second-best, free one


def test_threshold_sets():
    assert tiou_thresholds("activitynet").tolist() == [
        0.5,
        0.55,
        0.6,
        0.65,
        0.7,
        0.75,
        0.8,
        0.85,
        0.9,
        0.95,
    ]
    assert tiou_thresholds("thumos14").tolist() == [0.3, 0.4, 0.5, 0.6, 0.7]


def test_average_recall_hand_computed():
    gt = gt_table(("a", 0.0, 10.0, ""), ("a", 20.0, 30.0, ""))
    props = pred_table(
        ("a", 0.0, 10.0, "", 0.9),  # g1 exactly
        ("a", 40.0, 50.0, "", 0.8),  # nothing
        ("a", 20.0, 30.0 + 10 * (1 / 0.7 - 1), "", 0.7),  # g2 at tIoU 0.7
    )
    result = average_recall(gt, props, ANET)
    assert result.ar_at(1) == pytest.approx(0.5) and result.ar_at(2) == pytest.approx(0.5)
    # from 3 proposals on: g2 counts at 0.5 .. 0.7 (5 of 10 thresholds)
    assert result.ar_at(3) == pytest.approx(0.75) and result.ar_at(100) == pytest.approx(0.75)
    # trapezoid over AN = 1..100: (AR1+AR2)/2 + (AR2+AR3)/2 + 97 steps of 0.75
    expected_auc = ((0.5 + 0.5) / 2 + (0.5 + 0.75) / 2 + 97 * 0.75) / 100
    assert result.auc == pytest.approx(expected_auc)


def test_video_with_ground_truth_and_no_proposals_counts_zero():
    gt = gt_table(("a", 0.0, 10.0, ""), ("b", 0.0, 10.0, ""))
    props = pred_table(("a", 0.0, 10.0, "", 0.9), ("z", 0.0, 10.0, "", 0.9))  # z: no gt, ignored
    result = average_recall(gt, props, ANET)
    assert result.ar_at(1) == 0.5 and result.ar_at(100) == 0.5
    assert ProposalResult(np.ones(100)).auc == pytest.approx(0.99)  # AN runs from 1, as official


# --- against the brute-force reference ----------------------------------------------------------


@pytest.mark.parametrize("seed", range(25))
def test_map_equals_the_reference_on_random_cases(seed):
    rng = np.random.default_rng(seed)
    gt, pred = random_case(rng)
    thresholds = ANET if seed % 2 else np.array(THUMOS14_TIOU)
    expected = ref_map(gt, pred, thresholds)
    result = detection_map(gt, pred, thresholds)
    np.testing.assert_allclose(result.ap, expected, atol=1e-12)


@pytest.mark.parametrize("seed", range(10))
def test_average_recall_equals_the_reference_on_random_cases(seed):
    rng = np.random.default_rng(100 + seed)
    gt, pred = random_case(rng)
    props = pred.assign(label="")
    expected = ref_ar(gt, props, ANET, max_an=15)
    np.testing.assert_allclose(average_recall(gt, props, ANET, max_an=15).curve, expected)


@pytest.mark.parametrize("seed", range(8))
def test_video_weights_equal_evaluating_duplicated_videos(seed):
    """What the bootstrap computes (weights on matched predictions) equals the reference run
    on a dataset where each video is copied as often as it was drawn."""
    rng = np.random.default_rng(200 + seed)
    gt, pred = random_case(rng, extra_video=False)
    videos = sorted(set(gt["video_id"]) | set(pred["video_id"]))
    weight = rng.integers(0, 3, len(videos)).astype(float)
    weight[videos.index(gt["video_id"].iloc[0])] = 2  # keep at least one ground truth
    copies_gt, copies_pred = [], []
    for v, w in zip(videos, weight, strict=True):
        for k in range(int(w)):
            copies_gt.append(gt[gt["video_id"] == v].assign(video_id=f"{v}#{k}"))
            copies_pred.append(pred[pred["video_id"] == v].assign(video_id=f"{v}#{k}"))
    dup_gt = pd.concat(copies_gt, ignore_index=True)
    dup_pred = pd.concat(copies_pred, ignore_index=True)
    # copies of one prediction share its score: keep them adjacent in rank order, as weights do
    dup_pred = dup_pred.assign(_v=dup_pred["video_id"].str.split("#").str[0])
    dup_pred = dup_pred.sort_values(["score"], ascending=False, kind="stable").drop(columns="_v")
    expected = ref_map(dup_gt, dup_pred, ANET)
    matches = match_detections(gt, pred, ANET, videos)
    result = weighted_ap(matches, ANET, weight)
    present = sorted(set(dup_gt["label"]))
    assert result.classes == present
    np.testing.assert_allclose(result.ap, expected, atol=1e-12)

    props = pred.assign(label="")
    dup_props = dup_pred.assign(label="")
    counts = recall_counts(gt, props, ANET, max_an=10, videos=videos)
    np.testing.assert_allclose(counts.curve(weight), ref_ar(dup_gt, dup_props, ANET, max_an=10))
