"""The localization read-out, prediction files, ground-truth sources and the scoring command."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from synthetic_features import make_dataset

from tsp_pretrain.config import LocalizeParams
from tsp_pretrain.evaluation import MIN_VIDEOS_FOR_VERDICT, EvaluationSpec, log_differences
from tsp_pretrain.evaluation.errors import EvaluationError
from tsp_pretrain.localization import (
    localization_differences,
    match,
    prepare_predictions,
    read_blocked,
    read_ground_truth,
    read_out_encoder,
    read_predictions,
    tiou_thresholds,
    write_predictions,
)
from tsp_pretrain.localization.nms import hard_nms, soft_nms
from tsp_pretrain.localization.readout import clip_runs, run_score, video_proposals
from tsp_pretrain.localization.score import main as score_main
from tsp_pretrain.localization.scoring import bootstrap, bootstrap_samples, comparison_report

ANET = tiou_thresholds("activitynet")
#: The synthetic datasets' probes: training / validation videos, the 0.5 clip rule.
SPEC = EvaluationSpec(
    train_subset="training", valid_subset="validation", fg_threshold=0.5, seed=0, n_bootstrap=200
)

ANET_GT = {
    "version": "VERSION 1.3",
    "taxonomy": [],
    "database": {
        "vid1": {
            "subset": "validation",
            "duration": 60.0,
            "annotations": [
                {"segment": [10.0, 20.0], "label": "Long jump"},
                {"segment": [30.0, 40.0], "label": "Archery"},
            ],
        },
        "vid2": {
            "subset": "validation",
            "duration": 30.0,
            "annotations": [{"segment": [0.0, 5.0], "label": "Long jump"}],
        },
        "vid3": {"subset": "training", "duration": 30.0, "annotations": []},
        "vid4": {"subset": "testing", "duration": 30.0, "annotations": []},
    },
}


def write(path, data) -> str:
    path.write_text(json.dumps(data))
    return str(path)


# --- the read-out ------------------------------------------------------------------------------


def test_clip_runs_over_thresholds():
    values = np.array([0.1, 0.6, 0.8, 0.6, 0.1, 0.9, 0.2])
    assert clip_runs(values, [0.5]) == [(1, 3), (5, 5)]
    assert clip_runs(values, [0.5, 0.7]) == [(1, 3), (2, 2), (5, 5)]
    assert clip_runs(values, [0.95]) == []


def test_contrast_score_prefers_the_run_that_fits_the_step():
    values = np.array([0.0] * 5 + [1.0] * 5 + [0.0] * 5)
    params = LocalizeParams()
    exact = run_score(values, 5, 9, params)
    wide = run_score(values, 3, 11, params)
    narrow = run_score(values, 6, 8, params)
    assert exact == 1.0 and wide < exact and narrow < exact
    assert run_score(values, 6, 8, LocalizeParams(score="inner")) == 1.0  # inner cannot tell


def test_soft_and_hard_nms_hand_cases():
    segments = np.array([[0.0, 10.0], [1.0, 11.0], [20.0, 30.0]])
    scores = np.array([0.9, 0.8, 0.5])
    keep, kept = hard_nms(segments, scores, threshold=0.5, max_keep=10)
    assert keep.tolist() == [0, 2] and kept.tolist() == [0.9, 0.5]
    keep, kept = soft_nms(segments, scores, sigma=0.5, max_keep=10)
    decayed = 0.8 * np.exp(-((9 / 11) ** 2) / 0.5)
    assert keep.tolist() == [0, 2, 1]
    np.testing.assert_allclose(kept, [0.9, 0.5, decayed])
    assert soft_nms(segments, scores, sigma=0.5, max_keep=2)[0].tolist() == [0, 2]


def test_video_proposals_recover_a_clean_step():
    centres = np.arange(40) * 0.5 + 0.5  # clips every 0.5 s
    actionness = np.where((centres > 5) & (centres < 12), 0.95, 0.05)
    props = video_proposals(centres, 0.5, actionness, 20.5, LocalizeParams(smoothing=0.0))
    best = props.iloc[0]
    assert (best.t_start, best.t_end) == (5.25, 11.75)  # centres 5.5 .. 11.5, +- hop / 2
    assert props["score"].is_monotonic_decreasing and len(props) <= 100
    assert (props["t_start"] >= 0).all() and (props["t_end"] <= 20.5).all()


def test_read_out_finds_planted_actions_and_fits_nothing_on_validation():
    data = make_dataset(num_train=16, num_valid=8, separation=3.0, noise=0.3)
    labels = ["class0", "class1", "class2"]
    args = (data["features"], data["clips"], data["segments"], data["videos"], labels)
    readout = read_out_encoder(*args, LocalizeParams(smoothing=0.0), SPEC)
    valid = sorted(data["videos"].query("subset == 'validation'")["video_id"])
    assert sorted(readout.clips["video_id"].unique()) == valid
    assert set(readout.detections["label"]) <= set(labels)
    truth = data["segments"][data["segments"]["video_id"].isin(valid)]
    gt = pd.DataFrame(
        {
            "video_id": truth["video_id"],
            "t_start": truth["t_start"],
            "t_end": truth["t_end"],
            "label": truth["label"],
        }
    )
    from tsp_pretrain.localization.ground_truth import GroundTruth

    matched = match(
        GroundTruth(valid, gt, "synthetic"), readout.detections, readout.proposals, thresholds=ANET
    )
    metrics = matched.scores().metrics()
    assert metrics["map_50"] > 0.9 and metrics["ar_100"] > 0.9, metrics
    # Changing only the validation features' *labels* cannot change the read-out: nothing is
    # fit on validation videos.
    relabelled = data["segments"].copy()
    relabelled.loc[relabelled["video_id"].isin(valid), "label_id"] = 0
    again = read_out_encoder(
        data["features"],
        data["clips"],
        relabelled,
        data["videos"],
        labels,
        LocalizeParams(smoothing=0.0),
        SPEC,
    )
    pd.testing.assert_frame_equal(again.detections, readout.detections)
    # noise features: the read-out is much worse
    noisy = make_dataset(num_train=16, num_valid=8, separation=0.0, class_signal=0.0)
    bad = read_out_encoder(
        noisy["features"],
        noisy["clips"],
        noisy["segments"],
        noisy["videos"],
        labels,
        LocalizeParams(smoothing=0.0),
        SPEC,
    )
    worse = (
        match(GroundTruth(valid, gt, "synthetic"), bad.detections, bad.proposals, thresholds=ANET)
        .scores()
        .metrics()
    )
    assert worse["average_map"] < metrics["average_map"] - 0.3


# --- files ------------------------------------------------------------------------------------


def test_prediction_files_round_trip_and_other_layouts(tmp_path):
    table = pd.DataFrame(
        {
            "video_id": ["b", "a", "a"],
            "t_start": [1.0, 2.0, 0.5],
            "t_end": [3.0, 4.12345, 9.0],
            "label": ["run", "jump", "run"],
            "score": [0.5, 0.25, 0.75],
        }
    )
    path = tmp_path / "det.json"
    write_predictions(path, table, proposals=False, details="test", videos=["a", "b", "c"])
    doc = json.loads(path.read_text())
    assert doc["version"] == "VERSION 1.3" and doc["external_data"]["used"] is False
    assert list(doc["results"]) == ["a", "b", "c"] and doc["results"]["c"] == []
    assert doc["results"]["a"][0] == {"label": "run", "score": 0.75, "segment": [0.5, 9.0]}
    back = read_predictions(path)
    assert len(back) == 3 and back.loc[back["video_id"] == "a", "t_end"].max() == 9.0
    assert 4.123 in back["t_end"].tolist()  # segments rounded to 3 decimals

    bare = write(tmp_path / "af.json", {"a": [{"label": 1, "score": 0.5, "segment": [0, 1]}]})
    with pytest.raises(EvaluationError, match="--labels"):
        read_predictions(bare)
    assert read_predictions(bare, ["jump", "run"])["label"].tolist() == ["run"]

    csv = tmp_path / "af.csv"
    csv.write_text("video-id,t-start,t-end,label,score\n0042,1.0,2.0,jump,0.3\n")
    got = read_predictions(csv)
    assert got["video_id"].tolist() == ["0042"] and got["label"].tolist() == ["jump"]

    broken = write(tmp_path / "bad.json", {"results": {"a": [{"segment": [0, 1]}]}})
    with pytest.raises(EvaluationError, match=r"bad.json:results/a/0.*score"):
        read_predictions(broken)


def test_ground_truth_sources_agree(tmp_path):
    anet = read_ground_truth(write(tmp_path / "gt.json", ANET_GT), "validation")
    assert anet.videos == ["vid1", "vid2"] and len(anet.segments) == 3
    thumos = tmp_path / "thumos"
    thumos.mkdir()
    (thumos / "LongJump_val.txt").write_text("video_validation_1 10.0 20.0\n")
    (thumos / "Ambiguous_val.txt").write_text("video_validation_1 30.0 31.0\n")
    (thumos / "LongJump_test.txt").write_text("video_test_9 1.0 2.0\n")
    gt = read_ground_truth(thumos, "val")
    assert gt.videos == ["video_validation_1"]
    assert gt.segments[["t_start", "t_end", "label"]].values.tolist() == [[10.0, 20.0, "LongJump"]]
    assert read_ground_truth(thumos, "test").videos == ["video_test_9"]
    with pytest.raises(EvaluationError, match="subset 'training'"):
        read_ground_truth(thumos, "training")
    blocked = write(tmp_path / "blocked.json", ["vid2"])
    assert anet.without(read_blocked(blocked)).videos == ["vid1"]


def test_canonical_annotations_folder_is_ground_truth(tmp_path):
    folder = tmp_path / "ann"
    folder.mkdir()
    (folder / "videos.csv").write_text(
        "video_id,filename,subset,duration,fps,num_frames\n"
        "a,a.mp4,validation,30.0,30.0,900\nb,b.mp4,validation,30.0,30.0,900\n"
        "t,t.mp4,training,30.0,30.0,900\n"
    )
    (folder / "segments.csv").write_text(
        "video_id,t_start,t_end,label,label_id,region\n"
        "a,0.0,5.0,,-1,background\na,5.0,9.0,jump,0,foreground\nt,1.0,2.0,jump,0,foreground\n"
    )
    (folder / "labels.json").write_text('["jump"]')
    gt = read_ground_truth(folder, "validation")
    assert gt.videos == ["a", "b"]  # b has no action: its predictions are false positives
    assert gt.segments.values.tolist() == [["a", 5.0, 9.0, "jump"]]


def test_scoring_rules_blocked_outside_and_unknown_labels():
    from tsp_pretrain.localization.ground_truth import GroundTruth

    gt = GroundTruth(
        ["a", "b"],
        pd.DataFrame([("a", 0.0, 10.0, "jump")], columns=["video_id", "t_start", "t_end", "label"]),
        "x",
    )
    pred = pd.DataFrame(
        [
            ("a", 0.0, 10.0, "jump", 0.5),
            ("test1", 0.0, 10.0, "jump", 0.9),
            ("b", 0.0, 10.0, "swim", 0.8),
            ("c", 0.0, 1.0, "jump", 0.95),
        ],
        columns=["video_id", "t_start", "t_end", "label", "score"],
    )
    kept = prepare_predictions(pred, gt, blocked=["c"])
    assert sorted(kept.table["video_id"]) == ["a", "test1"]
    assert any("blocked" in n for n in kept.notes) and any("swim" in n for n in kept.notes)
    assert any("false positives" in n for n in kept.notes)
    m = match(gt, kept.table, None, thresholds=ANET).scores().metrics()
    assert m["average_map"] == 0.5  # the outside video's prediction ranks first, a false positive
    ignored = prepare_predictions(pred, gt, blocked=["c"], ignore_outside=True)
    assert match(gt, ignored.table, None, thresholds=ANET).scores().metrics()["average_map"] == 1


def _good_and_bad_readouts(num_valid: int = 12) -> dict:
    """A read-out of clean and of noisy features of the same videos, matched."""
    data = make_dataset(num_train=16, num_valid=num_valid, separation=3.0, noise=0.3)
    noisy = make_dataset(
        num_train=16, num_valid=num_valid, separation=0.5, noise=1.0, class_signal=0.5
    )
    from tsp_pretrain.localization.ground_truth import GroundTruth

    labels = ["class0", "class1", "class2"]
    valid = sorted(data["videos"].query("subset == 'validation'")["video_id"])
    seg = data["segments"][data["segments"]["video_id"].isin(valid)]
    gt = GroundTruth(valid, seg[["video_id", "t_start", "t_end", "label"]], "synthetic")
    matched = {}
    for name, d in (("good", data), ("bad", noisy)):
        r = read_out_encoder(
            d["features"], d["clips"], d["segments"], d["videos"], labels, LocalizeParams(), SPEC
        )
        matched[name] = match(gt, r.detections, r.proposals, thresholds=ANET, videos=valid)
    return matched


def test_bootstrap_pairs_the_draws_and_reports_intervals():
    matched = _good_and_bad_readouts()
    report = comparison_report(matched, n_bootstrap=300, seed=0)
    diff = report["good_minus_bad"]
    assert diff["average_map"] == pytest.approx(
        report["good"]["average_map"] - report["bad"]["average_map"], abs=2e-4
    )
    assert diff["average_map_ci_low"] > 0, diff  # a clear difference is detected
    for name in ("good", "bad"):
        r = report[name]
        assert set(r) >= {"map_50", "map_75", "map_95", "ar_1", "ar_5", "ar_10", "ar_100", "ar_auc"}
        assert r["average_map_ci_low"] <= r["average_map_ci_high"]
    # equal prediction sets: the paired difference is exactly zero on every draw
    (_, _, same) = bootstrap([matched["good"], matched["good"]], n_bootstrap=50, seed=1)
    assert same["average_map"].low == same["average_map"].high == 0.0


def test_a_trained_encoder_worse_than_the_initial_one_is_warned_about(caplog):
    n = MIN_VIDEOS_FOR_VERDICT  # enough for a verdict
    matched = _good_and_bad_readouts(n)
    report = comparison_report(
        {"trained": matched["bad"], "initial": matched["good"]}, n_bootstrap=300, seed=0
    )
    differences = localization_differences(report)
    assert [d.label for d in differences] == ["average mAP", "AR AUC"]
    d = differences[0]
    assert (d.trained, d.initial) == (
        report["trained"]["average_map"],
        report["initial"]["average_map"],
    )
    diff = report["trained_minus_initial"]
    assert (d.mean, d.low, d.high, d.num_videos) == (
        diff["average_map"],
        diff["average_map_ci_low"],
        diff["average_map_ci_high"],
        n,
    )
    assert d.word == "hurt" and d.high < 0
    with caplog.at_level("INFO", logger="tsp_pretrain.evaluation.verdict"):
        log_differences(differences)
    assert "average mAP: trained - initial" in caplog.text
    assert f"over {n} videos: hurt" in caplog.text
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("WORSE THAN THE INITIAL ONE: average mAP" in w for w in warned), caplog.text
    assert all("train.lr_backbone" in w and "train.warmup_epochs" in w for w in warned)


# --- the command ------------------------------------------------------------------------------


def test_score_command_on_an_external_file(tmp_path, capsys):
    gt = write(tmp_path / "gt.json", ANET_GT)
    preds = write(
        tmp_path / "opentad.json",
        {
            "version": "1.3",
            "results": {
                "vid1": [
                    {"label": "Long jump", "score": 0.9, "segment": [10.0, 20.0]},
                    {"label": "Archery", "score": 0.8, "segment": [30.0, 40.0]},
                ],
                "vid2": [{"label": "Long jump", "score": 0.3, "segment": [0.0, 5.0]}],
                "vid4": [{"label": "Long jump", "score": 0.95, "segment": [0.0, 5.0]}],
            },
        },
    )
    out = tmp_path / "scores.json"
    score_main(["--ground-truth", gt, "--predictions", preds, "--json", str(out)])
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    # vid4 (a test video) ranks first in Long jump: precision 0, 1/2, 2/3 at recall 0, 1/2, 1;
    # interpolated (best precision at this recall or more): 2/3 at 1/2 and at 1 -> AP 2/3
    assert result["ap_by_class"]["Archery"]["ap@0.5"] == 1.0
    assert result["ap_by_class"]["Long jump"]["ap@0.5"] == pytest.approx(2 / 3, abs=1e-4)
    assert "false positives" in printed and "average mAP" in printed and "AR@100" in printed
    blocked = write(tmp_path / "blocked.json", ["vid4"])
    score_main(
        [
            "--ground-truth",
            gt,
            "--predictions",
            preds,
            "--blocked",
            blocked,
            "--json",
            str(out),
            "--n-bootstrap",
            "50",
        ]
    )
    result = json.loads(out.read_text())
    assert result["metrics"]["average_map"] == 1.0 and result["blocked_videos"] == 1
    assert result["ci95"]["average_map"] == [1.0, 1.0]
    score_main(
        ["--ground-truth", gt, "--predictions", preds, "--proposals-only", "--json", str(out)]
    )
    assert "average_map" not in json.loads(out.read_text())["metrics"]
    props = write(
        tmp_path / "props.json", {"results": {"vid1": [{"score": 1, "segment": [10, 20]}]}}
    )
    score_main(
        ["--ground-truth", gt, "--predictions", preds, "--proposals", props, "--json", str(out)]
    )
    metrics = json.loads(out.read_text())["metrics"]
    assert metrics["ar_100"] == pytest.approx(
        1 / 3, abs=1e-4
    )  # one of three segments, from the file
    assert metrics["average_map"] < 1  # detections still scored from --predictions


def test_score_command_reports_user_errors_without_traceback(tmp_path):
    import subprocess
    import sys

    argv = [sys.executable, "-m", "tsp_pretrain.localization.score"]
    missing = subprocess.run(
        [*argv, "--ground-truth", str(tmp_path / "nope.json"), "--predictions", "x.json"],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 1 and "nope.json: ground truth not found" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_bootstrap_discards_draws_without_ground_truth():
    from tsp_pretrain.localization.ground_truth import GroundTruth

    segs = pd.DataFrame(
        [("a", 0.0, 10.0, "jump")], columns=["video_id", "t_start", "t_end", "label"]
    )
    gt = GroundTruth(["a", "empty"], segs, "x")
    pred = pd.DataFrame(
        [("a", 0.0, 10.0, "jump", 0.9), ("empty", 0.0, 5.0, "jump", 0.95)],
        columns=["video_id", "t_start", "t_end", "label", "score"],
    )
    matched = match(gt, pred, pred.assign(label=""), thresholds=ANET)
    (intervals,) = bootstrap([matched], n_bootstrap=200, seed=0)
    # a quarter of the draws hold only the empty video: they are left out, nothing is NaN;
    # draws with the empty video rank its false positive first (AP 1/2), draws without: AP 1
    assert all(np.isfinite([i.low, i.high]).all() for i in intervals.values())
    drawn = bootstrap_samples([matched], n_bootstrap=200, seed=0)
    values = drawn.samples[0]["average_map"]
    assert 120 < drawn.num_draws < 180 and set(values) == {0.5, 1.0}
    # the interval is the draws' spread (1/2 .. 1) around the observed value
    centre = intervals["average_map"].mean - values.mean()
    assert intervals["average_map"].low == pytest.approx(0.5 + centre)
    assert intervals["average_map"].high == pytest.approx(1.0 + centre)


def test_bootstrap_keeps_only_draws_holding_every_class():
    """A class with one instance, never detected (AP 0), beside a class always detected (AP 1):
    mAP is 0.5 on every draw that holds both classes. A draw without the rare video would score
    1.0, and counting such draws would push the interval up."""
    from tsp_pretrain.localization.ground_truth import GroundTruth

    videos = [f"v{i}" for i in range(8)]
    rows = [(v, 0.0, 10.0, "common") for v in videos] + [("v0", 20.0, 30.0, "rare")]
    segs = pd.DataFrame(rows, columns=["video_id", "t_start", "t_end", "label"])
    pred = segs[segs["label"] == "common"].assign(score=0.9)
    matched = match(GroundTruth(videos, segs, "x"), pred, None, thresholds=ANET)
    (intervals,) = bootstrap([matched], n_bootstrap=300, seed=0)
    assert intervals["average_map"].mean == 0.5
    assert intervals["average_map"].low == intervals["average_map"].high == 0.5
