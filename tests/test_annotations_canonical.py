"""The canonical rules: background complement, clipping, dropping, probing join, output files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from tsp_pretrain.annotations import (
    FORMATS,
    ISSUES,
    AnnotationError,
    AnnotationRules,
    AnnotationSource,
    Report,
    background_segments,
    build_annotations,
    get_parser,
    probe_videos,
    write_annotations,
)
from tsp_pretrain.annotations.schema import (
    REPORT_COLUMNS,
    SEGMENT_COLUMNS,
    VIDEO_COLUMNS,
    load_label_list,
    normalise_subset,
)
from tsp_pretrain.video.manifest import Located
from tsp_pretrain.video.probe import VideoInfo, VideoProbeError

CLIP = 1.0  # clip_seconds used throughout, so lengths are easy to read


def fake_video_files(durations: dict[str, float | None]):
    """A (locate, probe) pair without files: None = unreadable, absent = missing."""

    def locate(video_id: str, filename: str | None) -> Located:
        if video_id in durations:
            return Located(f"{video_id}.mp4")
        return Located(None, "missing_video", "no video file found; download it")

    def probe(path: Path) -> VideoInfo:
        duration = durations[path.stem]
        if duration is None:
            raise VideoProbeError(f"{path}: empty file (0 bytes); re-download or re-encode it")
        return VideoInfo(duration, 30.0, round(duration * 30), 32, 32)

    return locate, probe


def write_activitynet(path: Path, database: dict, labels: list[str]) -> Path:
    taxonomy = [{"nodeId": 0, "nodeName": "Root", "parentId": None, "parentName": None}]
    taxonomy += [
        {"nodeId": i + 1, "nodeName": name, "parentId": 0, "parentName": "Root"}
        for i, name in enumerate(labels)
    ]
    path.write_text(
        json.dumps({"version": "VERSION 1.3", "taxonomy": taxonomy, "database": database})
    )
    return path


def video(subset: str, duration: float, *segments: tuple[float | None, float | None, str]) -> dict:
    return {
        "subset": subset,
        "duration": duration,
        "annotations": [{"segment": [s, e], "label": label} for s, e, label in segments],
    }


def build(
    tmp_path: Path,
    database: dict,
    durations: dict[str, float | None],
    *,
    labels: tuple[str, ...] = ("Jump", "Run"),
    min_background: float = 0.0,
    duration_tolerance: float = 1.0,
):
    json_path = write_activitynet(tmp_path / "anet.json", database, list(labels))
    locate, probe = fake_video_files(durations)
    return build_annotations(
        AnnotationSource("activitynet", json_path),
        tmp_path / "videos",
        AnnotationRules(CLIP, min_background, duration_tolerance),
        probe=probe,
        locate=locate,
        workers=2,
        progress=False,
    )


def spans(frame: pd.DataFrame) -> list[tuple[float, float]]:
    return list(zip(frame["t_start"].round(6), frame["t_end"].round(6), strict=True))


def issues(result, issue: str) -> pd.DataFrame:
    report = result.report.to_frame()
    return report[report["issue"] == issue]


# --- background complement ---------------------------------------------------------------------


def intervals(*rows: tuple[str, float, float]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["video_id", "t_start", "t_end"])


def test_background_is_complement_of_union_of_overlapping_actions():
    bg = background_segments(
        intervals(("a", 5, 10), ("a", 2, 6), ("a", 12, 13), ("a", 7, 9)),  # unsorted, nested
        pd.Series({"a": 20.0}),
    )
    assert spans(bg) == [(0, 2), (10, 12), (13, 20)]


def test_actions_touching_start_and_end_leave_no_edge_background():
    bg = background_segments(
        intervals(("a", 0, 4), ("a", 4, 6), ("a", 8, 10)), pd.Series({"a": 10.0})
    )
    assert spans(bg) == [(6, 8)]  # touching 4/4 leaves no zero-length gap either


def test_video_without_actions_is_one_background_segment_and_others_are_ignored():
    bg = background_segments(intervals(("b", 1, 2)), pd.Series({"a": 7.5}))
    assert bg["video_id"].tolist() == ["a"]
    assert spans(bg) == [(0, 7.5)]


def test_background_through_canonicalise_clips_and_drops_short_gaps(tmp_path):
    database = {
        "v1": video("training", 30, (-3, 4, "Jump"), (10.5, 12, "Run"), (13, 40, "Run")),
        "v2": video(
            "validation",
            9,
        ),
    }
    result = build(tmp_path, database, {"v1": 30.0, "v2": 9.0}, min_background=2.0)
    bg = result.segments[result.segments["region"] == "background"]
    # gaps of v1: [4, 10.5] kept, [12, 13] (1 s < min_background 2 s) dropped
    assert spans(bg[bg["video_id"] == "v1"]) == [(4, 10.5)]
    assert spans(bg[bg["video_id"] == "v2"]) == [(0, 9)]
    assert (bg["label_id"] == -1).all() and bg["label"].eq("").all()
    short = issues(result, "short_background")
    assert spans(short) == [(12, 13)]
    assert short["source"].iloc[0].endswith("anet.json:database/v1")
    fg = result.segments[result.segments["region"] == "foreground"]
    assert spans(fg) == [(0, 4), (10.5, 12), (13, 30)]


def test_background_shorter_than_one_clip_is_dropped_even_with_min_background_zero(tmp_path):
    database = {"v1": video("training", 10, (1.5, 5, "Jump"), (5.5, 10, "Run"))}
    result = build(tmp_path, database, {"v1": 10.0}, min_background=0.0)
    assert spans(issues(result, "short_background")) == [(5, 5.5)]  # 0.5 s < one clip
    assert spans(result.segments) == [(0, 1.5), (1.5, 5), (5.5, 10)]  # 1.5 s >= one clip: kept
    assert result.segments["region"].tolist() == ["background", "foreground", "foreground"]


def test_dropped_actions_still_occupy_time_in_the_background_rule(tmp_path):
    database = {"v1": video("training", 20, (2, 2.5, "Run"), (8, 12, "Swim"))}
    result = build(tmp_path, database, {"v1": 20.0})
    assert result.segments["region"].eq("background").all()
    assert spans(result.segments) == [(0, 2), (2.5, 8), (12, 20)]
    assert len(issues(result, "too_short")) == 1 and len(issues(result, "unknown_label")) == 1


# --- segment checks ---------------------------------------------------------------------------


def test_each_segment_issue_is_reported_with_its_action_and_source(tmp_path):
    database = {
        "v1": video(
            "training",
            20,
            (1, 5, "Jump"),  # 0 kept
            (None, 5, "Jump"),  # 1 invalid_time
            (7, 6, "Jump"),  # 2 inverted
            (25, 30, "Jump"),  # 3 outside_video (file is 20 s)
            (-4, -1, "Run"),  # 4 outside_video (negative)
            (2, 4, "Swim"),  # 5 unknown_label
            (1, 5, "Jump"),  # 6 duplicate_segment of 0
            (18, 26, "Run"),  # 7 clipped to [18, 20]
            (19.5, 22, "Run"),  # 8 clipped to [19.5, 20], then too_short
            (3, 3.5, "Run"),  # 9 too_short
        ),
    }
    result = build(tmp_path, database, {"v1": 20.0})
    report = result.report.to_frame()
    assert list(report.columns) == REPORT_COLUMNS
    got = {
        (row.issue, row.action, row.source.rsplit("/", 1)[1])
        for row in report.itertuples()
        if row.source.startswith(str(tmp_path / "anet.json") + ":database/v1/annotations/")
    }
    assert got == {
        ("invalid_time", "dropped", "1"),
        ("inverted", "dropped", "2"),
        ("outside_video", "dropped", "3"),
        ("outside_video", "dropped", "4"),
        ("unknown_label", "dropped", "5"),
        ("duplicate_segment", "dropped", "6"),
        ("clipped", "clipped", "7"),
        ("clipped", "clipped", "8"),
        ("too_short", "dropped", "8"),
        ("too_short", "dropped", "9"),
    }
    # report rows carry the times as written in the file, so users can find them
    assert spans(issues(result, "clipped")) == [(18, 26), (19.5, 22)]
    fg = result.segments[result.segments["region"] == "foreground"]
    assert spans(fg) == [(1, 5), (18, 20)]
    assert fg["label_id"].tolist() == [0, 1]
    counts = result.report.counts()
    assert set(counts) == set(ISSUES)
    assert counts["outside_video"] == 2 and counts["too_short"] == 2


def test_overlapping_actions_are_kept(tmp_path):
    database = {"v1": video("training", 20, (2, 8, "Jump"), (4, 10, "Run"), (4, 10, "Jump"))}
    result = build(tmp_path, database, {"v1": 20.0})
    fg = result.segments[result.segments["region"] == "foreground"]
    assert spans(fg) == [(2, 8), (4, 10), (4, 10)]
    assert sorted(fg["label"]) == ["Jump", "Jump", "Run"]


def test_every_raw_action_is_output_or_reported(tmp_path):
    database = {
        "a": video("training", 20, (1, 5, "Jump"), (7, 6, "Jump"), (2, 4, "Swim"), (3, 3.2, "Run")),
        "b": video("training", 20, (1, 5, "Jump"), (6, 9, "Run")),  # missing file
        "c": video("validation", 20, (18, 30, "Run")),
    }
    result = build(tmp_path, database, {"a": 20.0, "c": 20.0})
    report = result.report.to_frame()
    n_fg = int((result.segments["region"] == "foreground").sum())
    n_dropped = int((report["action"] == "dropped").sum()) - len(issues(result, "short_background"))
    skipped = issues(result, "missing_video")
    assert skipped["detail"].str.contains("2 action segment").all()
    assert n_fg + n_dropped + 2 == sum(len(v["annotations"]) for v in database.values())


# --- videos -----------------------------------------------------------------------------------


def test_missing_unreadable_and_mismatched_videos(tmp_path):
    database = {
        "ok": video("training", 10.0, (1, 5, "Jump")),
        "gone": video("training", 10.0, (1, 5, "Jump")),
        "broken": video("validation", 10.0, (1, 5, "Run")),
        "long": video("validation", 10.0, (1, 5, "Run")),
    }
    result = build(tmp_path, database, {"ok": 10.4, "broken": None, "long": 12.0})
    assert result.videos["video_id"].tolist() == ["long", "ok"]
    assert list(result.videos.columns) == VIDEO_COLUMNS
    assert result.videos.set_index("video_id").at["long", "duration"] == 12.0  # the file wins
    assert set(result.segments["video_id"]) == {"long", "ok"}
    assert issues(result, "missing_video")["video_id"].tolist() == ["gone"]
    unreadable = issues(result, "unreadable_video")
    assert unreadable["video_id"].tolist() == ["broken"]
    assert "empty file" in unreadable["detail"].iloc[0]
    mismatch = issues(result, "duration_mismatch")
    assert mismatch["video_id"].tolist() == ["long"]  # 0.4 s is within the 1 s tolerance
    assert (mismatch["action"] == "kept").all()


def test_probe_videos_gives_the_same_result_with_one_or_many_workers(tmp_path):
    durations = {f"v{i}": 5.0 + i for i in range(40)} | {"bad": None}
    locate, probe = fake_video_files(durations)
    videos = pd.DataFrame({"video_id": [*durations, "absent"], "filename": ""})
    one = probe_videos(videos, tmp_path, probe=probe, locate=locate, workers=1, progress=False)
    many = probe_videos(videos, tmp_path, probe=probe, locate=locate, workers=3, progress=False)
    pd.testing.assert_frame_equal(one, many)
    assert one["video_id"].tolist() == videos["video_id"].tolist()
    assert one.set_index("video_id").at["v3", "duration"] == 8.0
    assert one.set_index("video_id").at["bad", "problem"] == "unreadable_video"
    assert one.set_index("video_id").at["absent", "problem"] == "missing_video"
    assert one.set_index("video_id").at["v3", "filename"] == "v3.mp4"


def test_write_annotations_writes_the_documented_files(tmp_path):
    database = {
        "v1": video("training", 20, (2, 5, "Jump"), (30, 31, "Run")),
        "v2": video("testing", 20),
    }
    result = build(tmp_path, database, {"v1": 20.0, "v2": 15.0}, duration_tolerance=10.0)
    out = tmp_path / "out"
    write_annotations(result, out)
    videos = pd.read_csv(out / "videos.csv")
    segments = pd.read_csv(out / "segments.csv", keep_default_na=False)
    assert list(videos.columns) == VIDEO_COLUMNS
    assert list(segments.columns) == SEGMENT_COLUMNS
    assert videos["video_id"].tolist() == ["v1", "v2"]
    # the unlabelled test video is listed (features are extracted for it) but has no segments
    assert set(segments["video_id"]) == {"v1"}
    assert segments.sort_values(["video_id", "t_start"]).index.tolist() == segments.index.tolist()
    assert json.loads((out / "labels.json").read_text()) == ["Jump", "Run"]
    report_csv = pd.read_csv(out / "report.csv")
    assert list(report_csv.columns) == REPORT_COLUMNS
    assert report_csv["issue"].tolist() == ["outside_video"]
    summary = json.loads((out / "report.json").read_text())
    assert summary["counts"]["outside_video"] == 1 and set(summary["counts"]) == set(ISSUES)
    assert summary["parameters"]["clip_seconds"] == CLIP
    assert summary["parameters"]["format"] == "activitynet"
    assert summary["totals"]["videos"] == 2


def test_the_log_line_is_a_sentence_not_a_dict(tmp_path, caplog):
    database = {
        "v1": video("training", 20, (2, 5, "Jump"), (30, 31, "Run")),
        "v2": video("testing", 20),
    }
    with caplog.at_level("INFO", logger="tsp_pretrain.annotations.canonical"):
        build(tmp_path, database, {"v1": 20.0, "v2": 15.0}, duration_tolerance=10.0)
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("annotations:")]
    assert line == (
        "annotations: 2 videos with a usable file (testing 1, training 1), 1 action segment, "
        "2 background segments, 2 labels; report.csv rows per issue: outside_video 1"
    )
    assert "{" not in line


# --- registry, parameters, small helpers ---------------------------------------------------------


def test_registry_lists_the_three_formats_and_rejects_unknown_names():
    assert set(FORMATS) == {"activitynet", "tsp_csv", "thumos14"}
    with pytest.raises(ValueError, match="activitynet, thumos14, tsp_csv"):
        get_parser("kinetics")
    with pytest.raises(ValueError, match="unknown annotation format 'anet'"):
        build_annotations(AnnotationSource("anet", "x.json"), "videos", AnnotationRules(1, 0, 1))


def test_empty_input_and_no_readable_video_are_errors_not_empty_tables(tmp_path):
    with pytest.raises(AnnotationError, match=r"anet\.json: no usable videos"):
        build(tmp_path, {}, {})
    with pytest.raises(AnnotationError, match=r"none of the 2 annotated videos .*missing_video"):
        build(tmp_path, {"a": video("training", 5), "b": video("training", 5)}, {})


@pytest.mark.parametrize(
    ("clip_seconds", "min_background", "workers"),
    [(0, 0, 1), (1, -1, 1), (1, 0, 0), (math.nan, 0, 1)],
)
def test_build_rejects_bad_parameters(tmp_path, clip_seconds, min_background, workers):
    with pytest.raises(ValueError, match="must be"):
        build_annotations(
            AnnotationSource("activitynet", tmp_path / "x.json"),
            tmp_path,
            AnnotationRules(clip_seconds, min_background, duration_tolerance=1),
            workers=workers,
        )


def test_report_rejects_unknown_issue_and_action():
    report = Report()
    with pytest.raises(ValueError, match="unknown report issue"):
        report.add(video_id="v", issue="typo", action="dropped", detail="", source="f:1")
    with pytest.raises(ValueError, match="unknown report action"):
        report.add(video_id="v", issue="clipped", action="typo", detail="", source="f:1")
    assert report.to_frame().empty and list(report.to_frame().columns) == REPORT_COLUMNS


def test_label_list_and_subset_helpers(tmp_path):
    good = tmp_path / "labels.json"
    good.write_text('["A", "B"]')
    assert load_label_list(good) == ["A", "B"]
    bad = tmp_path / "bad.json"
    bad.write_text('{"A": 0}')
    with pytest.raises(AnnotationError, match=r"bad\.json: expected a list"):
        load_label_list(bad)
    with pytest.raises(AnnotationError, match="listed twice"):
        load_label_list(["A", "A"])
    assert normalise_subset("Validation", "x") == "validation"
    assert normalise_subset("test", "x") == "testing"
    with pytest.raises(AnnotationError, match="f:3: unknown subset 'dev'"):
        normalise_subset("dev", "f:3")
