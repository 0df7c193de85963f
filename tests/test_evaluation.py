"""Tests of the feature-quality probes (tsp_pretrain.evaluation) on synthetic numpy features."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, balanced_accuracy_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from synthetic_features import NUM_CLIPS, clips_of, make_dataset, segments_of

from tsp_pretrain.config import DatasetParams, EvaluateParams, Params
from tsp_pretrain.evaluation import (
    MIN_VIDEOS_FOR_VERDICT,
    Difference,
    EvaluationError,
    EvaluationSpec,
    align_per_video,
    bootstrap_mean,
    compare_encoders,
    describe,
    difference_sign,
    evaluate_encoder,
    label_clips,
    log_differences,
    paired_bootstrap,
    paired_bootstrap_tables,
    plot_timelines,
    roc_table,
    separability_differences,
)
from tsp_pretrain.evaluation.probes import foreground_metrics, roc_points

# ---------------------------------------------------------------- helpers


def spec(**kwargs) -> EvaluationSpec:
    """The synthetic datasets' spec (training / validation videos, the 0.5 clip rule), with a
    short bootstrap."""
    defaults = {"train_subset": "training", "valid_subset": "validation", "fg_threshold": 0.5}
    return EvaluationSpec(**(defaults | {"seed": 0, "n_bootstrap": 200} | kwargs))


def evaluate(data: dict, features_source: str = "features", **kwargs) -> object:
    return evaluate_encoder(
        data["features"],
        data["clips"],
        data["segments"],
        data["videos"],
        spec(**kwargs),
        features_source=features_source,
    )


def test_spec_from_params_takes_the_target_subsets_and_the_evaluate_section() -> None:
    target = DatasetParams(
        format="activitynet",
        annotations="a.json",
        videos="videos",
        train_subset="train",
        valid_subset="val",
    )
    params = Params(
        seed=3,
        datasets={"target": target},
        evaluate=EvaluateParams(fg_threshold=0.4, n_bootstrap=500),
    )
    assert EvaluationSpec.from_params(params) == spec(
        train_subset="train", valid_subset="val", fg_threshold=0.4, seed=3, n_bootstrap=500
    )
    # no default of its own: the stages' draws are the config's default
    assert EvaluationSpec.from_params(Params(datasets={"target": target})).n_bootstrap == (
        EvaluateParams.model_fields["n_bootstrap"].default
    )


# ---------------------------------------------------------------- clip labels


def test_exactly_half_covered_clip_is_foreground() -> None:
    # [0.1, 0.3] half covered by [0.2, 5] is 0.1 / 0.2 only up to float rounding.
    clips = clips_of([("a", 0.0, 1.0), ("c", 0.1, 0.3), ("b", 0.0, 1.0)])
    segments = segments_of([("a", 0.5, 3.0, 0), ("c", 0.2, 5.0, 0), ("b", 0.5001, 3.0, 1)])
    out = label_clips(clips, segments)
    assert out["fg_fraction"].tolist()[0] == pytest.approx(0.5)
    assert out["region"].tolist() == ["foreground", "foreground", "background"]
    assert out["label_id"].tolist() == [0, 0, -1]
    assert out["label"].tolist() == ["class0", "class0", ""]


def test_overlapping_segments_count_once() -> None:
    # [0, 0.6] and [0.4, 1.0] cover 1.0 s of the 2 s clip (a sum of lengths would say 1.2 s).
    clips = clips_of([("a", 0.0, 2.0)])
    segments = segments_of([("a", 0.0, 0.6, 0), ("a", 0.4, 1.0, 1)])
    out = label_clips(clips, segments, threshold=0.55)
    assert out["fg_fraction"].iloc[0] == pytest.approx(0.5)
    assert out["region"].iloc[0] == "background"


def test_clip_partly_outside_segment_and_video() -> None:
    # A 10 s video whose last window [9, 11] runs past the end: the outside second is background.
    clips = clips_of([("a", 9.0, 11.0), ("b", 9.0, 11.0), ("c", 7.0, 9.0)])
    segments = segments_of([("a", 8.0, 10.0, 0), ("b", 9.5, 10.0, 0), ("c", 8.5, 12.0, 0)])
    out = label_clips(clips, segments)
    assert out["fg_fraction"].tolist() == pytest.approx([0.5, 0.25, 0.25])
    assert out["region"].tolist() == ["foreground", "background", "background"]


def test_action_label_is_largest_overlap_ties_to_lowest_id() -> None:
    clips = clips_of([("a", 0.0, 4.0), ("a", 4.0, 8.0)])
    segments = segments_of(
        [("a", 0.0, 1.5, 2), ("a", 1.5, 4.0, 1), ("a", 4.0, 6.0, 3), ("a", 6.0, 8.0, 0)]
    )
    out = label_clips(clips, segments)
    assert out["label_id"].tolist() == [1, 0]
    assert out["label"].tolist() == ["class1", "class0"]


def test_background_segments_and_unannotated_videos_give_background() -> None:
    clips = clips_of([("a", 0.0, 1.0), ("z", 0.0, 1.0)])
    segments = segments_of([("a", 0.0, 0.4, 0)])
    background = pd.DataFrame([("a", 0.4, 1.0, np.nan, -1, "background")], columns=segments.columns)
    out = label_clips(clips, pd.concat([segments, background]), threshold=0.3)
    assert out["fg_fraction"].tolist() == pytest.approx([0.4, 0.0])
    assert out["region"].tolist() == ["foreground", "background"]
    assert out["label_id"].tolist() == [0, -1]


@pytest.mark.parametrize(
    ("clip_rows", "segment_rows", "threshold", "message"),
    [
        ([("a", 0.0, 1.0)], [("a", 0.0, 1.0, 0)], 0.0, "threshold"),
        ([("a", 1.0, 1.0)], [("a", 0.0, 1.0, 0)], 0.5, "'a'"),
        ([("a", 0.0, 1.0)], [("a", 0.0, 1.0, -1)], 0.5, "without a class"),
    ],
)
def test_label_errors(clip_rows, segment_rows, threshold, message) -> None:
    with pytest.raises(EvaluationError, match=message):
        label_clips(clips_of(clip_rows), segments_of(segment_rows), threshold)


def test_label_missing_column_is_named() -> None:
    clips = clips_of([("a", 0.0, 1.0)]).drop(columns="t_end")
    with pytest.raises(EvaluationError, match="t_end"):
        label_clips(clips, segments_of([("a", 0.0, 1.0, 0)]))


# ---------------------------------------------------------------- metrics


def test_foreground_metrics_hand_computed_case() -> None:
    y = np.array([0, 0, 1, 1])
    s = np.array([-2.0, -0.1, -0.4, 3.0])  # log-odds; > 0 predicts foreground
    metrics = foreground_metrics(y, s)
    assert metrics["fg_auc"] == pytest.approx(0.75)
    assert metrics["fg_ap"] == pytest.approx(0.5 * 1.0 + 0.5 * 2 / 3)
    assert metrics["fg_balanced_acc"] == pytest.approx(0.75)


def test_pooled_metrics_equal_sklearn_pipeline() -> None:
    data = make_dataset(noise=1.0)
    result = evaluate(data)
    labelled = label_clips(data["clips"], data["segments"]).sort_values(["video_id", "clip_index"])
    train = labelled["video_id"].str.startswith("t").to_numpy()
    x = np.concatenate([data["features"][v] for v in sorted(data["features"])])
    y = (labelled["region"] == "foreground").to_numpy()
    probe = make_pipeline(
        StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=2000)
    ).fit(x[train], y[train])
    score = probe.decision_function(x[~train])
    assert result.metrics["fg_auc"] == pytest.approx(roc_auc_score(y[~train], score))
    assert result.metrics["fg_ap"] == pytest.approx(average_precision_score(y[~train], score))
    assert result.metrics["fg_balanced_acc"] == pytest.approx(
        balanced_accuracy_score(y[~train], probe.predict(x[~train]))
    )
    assert result.scores["fg_logit"].to_numpy() == pytest.approx(score)
    assert result.scores["fg_score"].to_numpy() == pytest.approx(
        probe.predict_proba(x[~train])[:, 1]
    )
    assert 0.0 <= result.metrics["action_top1"] <= 1.0
    assert result.counts["num_valid_clips"] == 8 * NUM_CLIPS


def test_within_video_auc_perfect_while_pooled_auc_suffers_from_video_offsets() -> None:
    # The fg/bg direction is consistent inside each video, but per-video offsets (std 3) dwarf it.
    data = make_dataset(
        num_train=30, num_valid=30, offset_scale=3.0, separation=1.0, noise=0.01, class_signal=0.0
    )
    result = evaluate(data)
    assert result.metrics["within_video_auc"] == pytest.approx(1.0)
    assert (result.per_video_auc["auc"] == 1.0).all()
    assert result.metrics["fg_auc"] < 0.85
    assert result.metrics["num_valid_videos_within"] == 30


def test_action_probe_reads_the_class() -> None:
    result = evaluate(make_dataset(noise=0.3))
    assert result.metrics["action_top1"] > 0.9


# ---------------------------------------------------------------- bootstrap


def test_bootstrap_contains_mean_and_is_deterministic() -> None:
    values = np.random.default_rng(1).uniform(0.4, 0.9, size=25)
    first = bootstrap_mean(values, n_bootstrap=500, seed=3)
    again = bootstrap_mean(values, n_bootstrap=500, seed=3)
    other = bootstrap_mean(values, n_bootstrap=500, seed=4)
    assert first.low < first.mean < first.high
    assert first.mean == pytest.approx(values.mean())
    assert first == again
    assert (other.low, other.high) != (first.low, first.high)
    assert first.num_videos == 25


def test_bootstrap_interval_narrows_with_more_videos() -> None:
    rng = np.random.default_rng(0)
    few = bootstrap_mean(rng.normal(size=10), n_bootstrap=500, seed=0)
    many = bootstrap_mean(rng.normal(size=1000), n_bootstrap=500, seed=0)
    assert many.high - many.low < few.high - few.low


def test_paired_bootstrap_detects_clear_improvement() -> None:
    rng = np.random.default_rng(0)
    b = rng.uniform(0.5, 0.8, size=30)
    a = b + 0.05 + rng.normal(0.0, 0.02, size=30)
    result = paired_bootstrap(a, b, n_bootstrap=1000, seed=0)
    assert result.low > 0.0
    assert result.mean == pytest.approx(np.mean(a - b))


def test_paired_bootstrap_contains_zero_for_equal_encoders() -> None:
    rng = np.random.default_rng(0)
    b = rng.uniform(0.5, 0.8, size=30)
    noise = rng.normal(0.0, 0.02, size=15)
    a = b + np.concatenate([noise, -noise])  # zero-mean noise
    result = paired_bootstrap(a, b, n_bootstrap=1000, seed=0)
    assert result.low < 0.0 < result.high


def test_paired_tables_align_by_video_id() -> None:
    a = pd.DataFrame({"video_id": ["x", "y", "z"], "auc": [0.9, 0.8, 0.7]})
    b = pd.DataFrame({"video_id": ["z", "x", "y"], "auc": [0.6, 0.8, 0.7]})
    joined = align_per_video(a, b)
    assert joined["video_id"].tolist() == ["x", "y", "z"]
    assert joined["a"].to_numpy() - joined["b"].to_numpy() == pytest.approx([0.1, 0.1, 0.1])
    result = paired_bootstrap_tables(a, b, n_bootstrap=100, seed=0)
    assert result.mean == pytest.approx(0.1)


def test_paired_tables_with_different_videos_fail() -> None:
    a = pd.DataFrame({"video_id": ["x", "y"], "auc": [0.9, 0.8]})
    b = pd.DataFrame({"video_id": ["x", "w"], "auc": [0.9, 0.8]})
    with pytest.raises(EvaluationError, match=r"different videos.*'y'.*'w'"):
        paired_bootstrap_tables(a, b, n_bootstrap=10, seed=0)
    with pytest.raises(EvaluationError, match="more than once"):
        align_per_video(pd.concat([a, a]), a)


# ---------------------------------------------------------------- input errors


def test_no_training_background_clip() -> None:
    data = make_dataset()
    train_ids = data["videos"].loc[data["videos"]["subset"] == "training", "video_id"]
    whole = segments_of([(v, 0.0, float(NUM_CLIPS), 0) for v in train_ids])
    data["segments"] = pd.concat([data["segments"], whole])
    with pytest.raises(EvaluationError, match="no background clip"):
        evaluate(data)


def test_no_validation_video_with_both_regions() -> None:
    data = make_dataset(num_valid=4)
    seg = data["segments"]
    valid = ["v012", "v013", "v014", "v015"]
    whole = segments_of([(v, 0.0, float(NUM_CLIPS), 0) for v in valid[:2]])
    data["segments"] = pd.concat([seg[~seg["video_id"].isin(valid)], whole])
    with pytest.raises(EvaluationError, match="none of 4 has both"):
        evaluate(data)


def test_feature_length_mismatch_names_the_video() -> None:
    data = make_dataset()
    data["features"]["v013"] = data["features"]["v013"][:-1]
    with pytest.raises(EvaluationError, match=r"'v013' have 19 rows .* 20 clips"):
        evaluate(data, features_source="features/trained")


def test_missing_features_name_the_video() -> None:
    data = make_dataset()
    del data["features"]["t003"]
    with pytest.raises(EvaluationError, match=r"features/trained: no features for video 't003'"):
        evaluate(data, features_source="features/trained")


def test_unknown_subset_lists_the_known_ones() -> None:
    with pytest.raises(EvaluationError, match=r"'val'.*\['training', 'validation'\]"):
        evaluate(make_dataset(), valid_subset="val")


# ---------------------------------------------------------------- comparison and outputs


def test_compare_encoders_report() -> None:
    good = make_dataset(noise=0.3, seed=0)
    bad = make_dataset(noise=3.0, seed=0)  # same clips and labels, noisier features
    trained, initial = evaluate(good), evaluate(bad)
    report = compare_encoders(trained, initial, n_bootstrap=300, seed=0)
    json.dumps(report)  # serialisable
    assert set(report) >= {"trained", "initial", "trained_minus_initial", "clip_rule", "counts"}
    assert set(report["trained"]) == {
        "fg_auc", "fg_ap", "fg_balanced_acc", "within_video_auc", "within_video_auc_ci_low",
        "within_video_auc_ci_high", "num_valid_videos_within", "action_top1",
    }  # fmt: skip
    diff = report["trained_minus_initial"]
    assert diff["ci_low"] > 0.0
    assert diff["within_video_auc"] == pytest.approx(
        trained.metrics["within_video_auc"] - initial.metrics["within_video_auc"], abs=1e-4
    )
    floats = [v for section in report.values() if isinstance(section, dict)
              for v in section.values() if isinstance(v, float)]  # fmt: skip
    assert floats and all(round(v, 4) == v for v in floats)


# ---------------------------------------------------------------- verdicts and warnings

MIN = MIN_VIDEOS_FOR_VERDICT


@pytest.mark.parametrize(
    ("low", "high", "n", "sign"),
    [
        (0.01, 0.2, MIN, "above"),
        (-0.2, -0.01, MIN, "below"),
        (-0.01, 0.2, MIN, "contains"),
        (0.0, 0.2, MIN, "contains"),  # touching zero is not above it
        (0.3, 0.5, MIN - 1, "too_few"),  # however clear the interval looks
        (-0.5, -0.3, 3, "too_few"),
    ],
)
def test_difference_sign_gives_no_verdict_below_the_minimum(low, high, n, sign) -> None:
    assert difference_sign(low, high, n) == sign


def test_the_minimum_is_in_the_measured_range() -> None:
    # bench/interval_coverage.py --small-samples: coverage >= 0.90 from 12 videos on; the demo
    # (21 and 24 validation videos) must keep its verdicts
    assert 10 < MIN <= 21


def test_describe_states_n_and_the_word() -> None:
    d = Difference("within-video AUC", 0.9, 0.8, 0.1, 0.05, 0.15, 21)
    assert describe(d) == (
        "within-video AUC: trained - initial +0.1000 [+0.0500, +0.1500] over 21 videos: helped"
    )
    few = Difference("within-video AUC", 0.9, 0.8, 0.1, 0.05, 0.15, 3)
    assert few.word == "too few videos to tell"
    assert describe(few).endswith(f"over 3 videos: too few videos to tell: n=3 < {MIN}")


def test_trained_worse_than_initial_warns_naming_the_training_keys(caplog) -> None:
    good = evaluate(make_dataset(noise=0.3, seed=0))
    bad = evaluate(make_dataset(noise=3.0, seed=0))
    worse = compare_encoders(bad, good, n_bootstrap=300, seed=0)  # trained = the bad one
    (difference,) = separability_differences(worse)
    assert difference.trained == worse["trained"]["within_video_auc"]
    assert difference.num_videos == worse["trained_minus_initial"]["num_videos"]
    with caplog.at_level("INFO", logger="tsp_pretrain.evaluation.verdict"):
        log_differences([difference])
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1, caplog.text
    text = warnings[0].getMessage()
    assert "THE TRAINED ENCODER IS WORSE THAN THE INITIAL ONE: within-video AUC" in text
    for key in ("lr_backbone", "lr_heads", "warmup_epochs", "epochs", "batch_size"):
        assert f"train.{key}" in text
    assert f"over {difference.num_videos} videos" in caplog.text
    caplog.clear()
    better = compare_encoders(good, bad, n_bootstrap=300, seed=0)
    with caplog.at_level("INFO", logger="tsp_pretrain.evaluation.verdict"):
        log_differences(separability_differences(better))
    assert [r.levelname for r in caplog.records] == ["INFO"]


def test_compare_encoders_rejects_different_clips() -> None:
    a = evaluate(make_dataset(seed=0))
    b = evaluate(make_dataset(seed=1))
    with pytest.raises(EvaluationError, match="different clips"):
        compare_encoders(a, b, n_bootstrap=10, seed=0)


def test_roc_points_are_thinned_keeping_the_ends() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=3000)
    roc = roc_points(y, rng.normal(size=3000) + y, max_points=200)
    assert 100 < len(roc) <= 200
    assert roc.iloc[0].tolist() == [0.0, 0.0]
    assert roc.iloc[-1].tolist() == [1.0, 1.0]
    assert roc["fpr"].is_monotonic_increasing


def test_roc_table_rows_per_encoder() -> None:
    result = evaluate(make_dataset())
    table = roc_table({"trained": result.roc, "initial": result.roc})
    assert table.columns.tolist() == ["encoder", "fpr", "tpr"]
    counts = table["encoder"].value_counts().to_dict()
    assert counts == {"trained": len(result.roc), "initial": len(result.roc)}


def test_plot_timelines_writes_png(tmp_path) -> None:
    data = make_dataset()
    good, noisy = evaluate(data), evaluate(make_dataset(noise=2.0))
    path = tmp_path / "plots" / "timelines.png"
    chosen = plot_timelines(
        {"trained": good.scores, "initial": noisy.scores}, data["segments"], path, num_videos=4
    )
    assert chosen == ["v012", "v013", "v014", "v015"]
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
