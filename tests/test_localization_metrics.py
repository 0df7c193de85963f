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
from tsp_pretrain.localization.detection import detection_map, map_draws, match_detections
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


def ranked_segments(props: pd.DataFrame, video: str) -> list[tuple[float, float]]:
    """A video's proposals by descending score, equal scores in file order."""
    mine = props[props["video_id"] == video]
    rows = zip(mine["score"], mine["t_start"], mine["t_end"], range(len(mine)), strict=True)
    return [(s, e) for _, s, e, _ in sorted(rows, key=lambda r: (-r[0], r[3]))]


def truths_of(gt: pd.DataFrame, video: str) -> list[tuple[float, float]]:
    return [(g.t_start, g.t_end) for g in gt[gt["video_id"] == video].itertuples()]


def ref_recall(per_video: list, used: list[int], thresholds) -> float:
    """Recall averaged over thresholds, video i using its first used[i] proposals."""
    recalls = []
    for t in thresholds:
        hit = total = 0
        for (truths, ranked), n in zip(per_video, used, strict=True):
            for truth in truths:
                total += 1
                hit += any(ref_iou(p, truth) >= t for p in ranked[:n])
        recalls.append(hit / total)
    return sum(recalls) / len(recalls)


def ref_ar(gt: pd.DataFrame, props: pd.DataFrame, thresholds, max_an: int = 100) -> np.ndarray:
    """Per-video scheme, AR at AN = 1..max_an: the top AN proposals of every video."""
    videos = sorted(set(gt["video_id"]))
    per_video = [(truths_of(gt, v), ranked_segments(props, v)) for v in videos]
    return np.array(
        [ref_recall(per_video, [an] * len(videos), thresholds) for an in range(1, max_an + 1)]
    )


def ref_ar_official(gt: pd.DataFrame, props: pd.DataFrame, thresholds, max_avg: int = 100):
    """The official eval_proposal.py, step by step: (AR at the 100 curve points, AN axis, AUC).

    V = videos with ground truth; P = every proposal, any video. A video keeps
    min(int(n * max_avg * V / P), n) of its best proposals (K kept in all); at point k it uses
    min(int(kept * k / 100 * max_avg * V / K), kept) of them. AN = that fraction * K / V.
    """
    videos = sorted(set(gt["video_id"]))
    ratio = max_avg * len(videos) / len(props)
    per_video, total_kept = [], 0
    for v in videos:
        ranked = ranked_segments(props, v)
        kept = min(int(len(ranked) * ratio), len(ranked))
        total_kept += kept
        per_video.append((truths_of(gt, v), ranked[:kept]))
    fractions = [k / 100.0 * (max_avg * len(videos) / total_kept) for k in range(1, 101)]
    curve = [
        ref_recall(
            per_video,
            [min(int(len(kept) * f), len(kept)) for _, kept in per_video],
            thresholds,
        )
        for f in fractions
    ]
    an = [f * (total_kept / len(videos)) for f in fractions]
    area = sum((an[i] - an[i - 1]) * (curve[i] + curve[i - 1]) / 2 for i in range(1, len(an)))
    return np.array(curve), np.array(an), area / an[-1]


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


def test_threshold_sets_are_the_official_linspace_floats():
    anet = tiou_thresholds("activitynet")
    assert anet.tolist() == np.linspace(0.5, 0.95, 10).tolist()
    assert anet[8] == 0.8999999999999999 and anet[8] != 0.9  # not rounded
    assert tiou_thresholds("thumos14").tolist() == np.linspace(0.3, 0.7, 5).tolist()


def test_tiou_equal_to_the_linspace_threshold_is_a_hit():
    """tIoU of [0.9, 7.6] with [1.3, 7.9] is 6.3 / 7.0 = 0.8999999999999999 in floats: exactly
    the official ninth threshold, so a hit there (mAP 90% at 9 of 10 thresholds, not 80%)."""
    gt = gt_table(("a", 1.3, 7.9, "jump"))
    pred = pred_table(("a", 0.9, 7.6, "jump", 0.5))
    result = detection_map(gt, pred, ANET)
    assert result.ap[0].tolist() == [1.0] * 9 + [0.0]
    assert result.average_map == pytest.approx(0.9)
    curve = average_recall(gt, pred.assign(label=""), ANET)
    assert curve.ar_at(1) == pytest.approx(0.9)


def test_average_recall_hand_computed():
    gt = gt_table(("a", 0.0, 10.0, ""), ("a", 20.0, 30.0, ""))
    props = pred_table(
        ("a", 0.0, 10.0, "", 0.9),  # g1 exactly
        ("a", 40.0, 50.0, "", 0.8),  # nothing
        ("a", 20.0, 30.0 + 10 * (1 / 0.7 - 1), "", 0.7),  # g2 at tIoU 0.7
    )
    for scheme in ("per_video", "official"):
        result = average_recall(gt, props, ANET, scheme=scheme)
        # official with one video of 3 proposals: at AN k it uses int(3 * k / 3) = k of them
        assert result.ar_at(1) == pytest.approx(0.5) and result.ar_at(2) == pytest.approx(0.5)
        # from 3 proposals on: g2 counts at 0.5 .. 0.7 (5 of 10 thresholds)
        assert result.ar_at(3) == pytest.approx(0.75) and result.ar_at(100) == pytest.approx(0.75)
        # trapezoid over AN = 1..100: (AR1+AR2)/2 + (AR2+AR3)/2 + 97 steps of 0.75
        expected_auc = ((0.5 + 0.5) / 2 + (0.5 + 0.75) / 2 + 97 * 0.75) / 100
        assert result.auc == pytest.approx(expected_auc)


def test_official_ar_spends_an_average_budget_not_a_per_video_cut():
    """Videos with 1 and 9 proposals, each recalled by its first: the official budget at AN 1
    is 2 proposals in all, shared in proportion: int(1 * 0.2) = 0 for the first video and
    int(9 * 0.2) = 1 for the second, so AR@1 is 0.5 (the per-video top 1 would give 1.0)."""
    gt = gt_table(("a", 0.0, 10.0, ""), ("b", 0.0, 10.0, ""))
    rows = [("a", 0.0, 10.0, "", 0.9), ("b", 0.0, 10.0, "", 0.9)]
    rows += [("b", 50.0 + i, 51.0 + i, "", 0.5) for i in range(8)]  # b's 8 misses rank after
    props = pred_table(*rows)
    official = average_recall(gt, props, ANET)
    assert official.ar_at(1) == pytest.approx(0.5)
    assert official.ar_at(5) == pytest.approx(1.0)  # int(1 * 1.0) = 1: a uses its proposal
    assert average_recall(gt, props, ANET, scheme="per_video").ar_at(1) == 1.0


def test_official_ar_truncates_as_the_official_floats():
    """100 proposals in one video, the only hit at rank 29: officially AN 29 uses
    int(100 * 0.29) = int(28.999999999999996) = 28 proposals, so AR@29 is 0; rank 30 is in."""
    gt = gt_table(("a", 0.0, 10.0, ""))
    rows = [("a", 100.0 + i, 101.0 + i, "", 1.0 - i / 1000) for i in range(100)]
    rows[28] = ("a", 0.0, 10.0, "", rows[28][4])  # rank 29
    props = pred_table(*rows)
    official = average_recall(gt, props, ANET)
    assert official.ar_at(28) == 0.0 and official.ar_at(29) == 0.0 and official.ar_at(30) == 1.0
    assert average_recall(gt, props, ANET, scheme="per_video").ar_at(29) == 1.0


def test_official_ar_budget_counts_proposals_outside_the_ground_truth():
    """One video of the ground truth with 2 proposals (its hit second) and 198 proposals in a
    video without ground truth: P = 200 for V = 1 video, so the video keeps int(2 * 100 / 200)
    = 1 proposal and never reaches its hit. Without the other video it keeps both and AR@2 = 1.
    """
    gt = gt_table(("a", 0.0, 10.0, ""))
    own = [("a", 50.0, 60.0, "", 0.9), ("a", 0.0, 10.0, "", 0.8)]
    other = [("z", float(i), i + 1.0, "", 0.5) for i in range(198)]
    with_other = average_recall(gt, pred_table(*own, *other), ANET)
    np.testing.assert_array_equal(with_other.curve, 0.0)
    alone = average_recall(gt, pred_table(*own), ANET)
    assert alone.ar_at(1) == 0.0 and alone.ar_at(2) == 1.0 and alone.ar_at(100) == 1.0
    # the per-video scheme ignores videos without ground truth
    per_video = average_recall(gt, pred_table(*own, *other), ANET, scheme="per_video")
    assert per_video.ar_at(2) == 1.0


def test_video_with_ground_truth_and_no_proposals_counts_zero():
    gt = gt_table(("a", 0.0, 10.0, ""), ("b", 0.0, 10.0, ""))
    props = pred_table(("a", 0.0, 10.0, "", 0.9), ("z", 0.0, 10.0, "", 0.9))  # z: no gt
    for scheme in ("official", "per_video"):
        result = average_recall(gt, props, ANET, scheme=scheme)
        assert result.ar_at(1) == 0.5 and result.ar_at(100) == 0.5
    flat = ProposalResult(np.ones(100), np.arange(1, 101.0))
    assert flat.auc == pytest.approx(0.99)  # AN runs from 1, as official


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
    gt, pred = random_case(rng)  # unequal counts per video, and a video without ground truth
    props = pred.assign(label="")
    curve, an, auc = ref_ar_official(gt, props, ANET)
    result = average_recall(gt, props, ANET)
    np.testing.assert_allclose(result.curve, curve, rtol=0, atol=1e-12)
    np.testing.assert_allclose(result.an, an, rtol=0, atol=1e-12)
    assert result.auc == pytest.approx(auc, abs=1e-12)
    per_video = average_recall(gt, props, ANET, max_an=15, scheme="per_video")
    np.testing.assert_allclose(per_video.curve, ref_ar(gt, props, ANET, max_an=15))


@pytest.mark.parametrize("seed", range(8))
def test_video_weights_equal_evaluating_duplicated_videos(seed):
    """What the bootstrap computes (weights on matched predictions) equals the reference run
    on a dataset where each video is copied as often as it was drawn."""
    rng = np.random.default_rng(200 + seed)
    gt, pred = random_case(rng)  # with a video without ground truth
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
    counts = recall_counts(gt, props, ANET, max_an=10, videos=videos, scheme="per_video")
    np.testing.assert_allclose(
        counts.curve(weight).curve, ref_ar(dup_gt, dup_props, ANET, max_an=10)
    )
    official = recall_counts(gt, props, ANET, videos=videos).curve(weight)
    curve, an, _ = ref_ar_official(dup_gt, dup_props, ANET)
    np.testing.assert_allclose(official.curve, curve, rtol=0, atol=1e-12)
    np.testing.assert_allclose(official.an, an, rtol=0, atol=1e-12)
    # the vectorised draws (what the bootstrap uses) equal the one-by-one computation
    draws = np.vstack([weight, np.ones(len(videos)), weight[::-1]])
    for row, one in zip(draws, map_draws(matches, len(ANET), draws), strict=True):
        np.testing.assert_allclose(one, weighted_ap(matches, ANET, row).map, rtol=0, atol=1e-12)
    official_counts = recall_counts(gt, props, ANET, videos=videos)
    for row, one in zip(draws, official_counts.curves(draws), strict=True):
        np.testing.assert_array_equal(one.curve, official_counts.curve(row).curve)
