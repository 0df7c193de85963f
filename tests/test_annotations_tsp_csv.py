"""Official TSP ground-truth CSV parsing: subsets, No-action rows, label maps, bad rows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tsp_pretrain.annotations import (
    AnnotationError,
    AnnotationRules,
    AnnotationSource,
    build_annotations,
)
from tsp_pretrain.annotations.tsp_csv import parse_tsp_csv
from tsp_pretrain.video.probe import VideoInfo

HEADER = (
    "video-name,t-start,t-end,action-label,video-duration,filename,fps,video-frames,"
    "temporal-region-label"
)
TRAIN = f"""{HEADER}
v_a,1.0,5.0,Long jump,30.0,v_a.mp4,30,900,Action
v_a,5.0,12.0,,30.0,v_a.mp4,30,900,No action
v_a,12.0,20.0,Zumba,30.0,v_a.mp4,30,900,Action
v_b,0.0,40.0,,40.0,v_b.mp4,30,1200,No action
"""
VALID = f"""{HEADER}
v_c,2.0,9.0,Zumba,20.0,v_c.mp4,30,600,Action
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_mapping_of_subsets_reads_action_rows_and_keeps_background_only_videos(tmp_path):
    train, valid = write(tmp_path, "train.csv", TRAIN), write(tmp_path, "valid.csv", VALID)
    raw = parse_tsp_csv({"training": train, "validation": valid})
    videos = raw.videos.set_index("video_id")
    assert videos["subset"].to_dict() == {"v_a": "training", "v_b": "training", "v_c": "validation"}
    assert videos.at["v_b", "filename"] == "v_b.mp4"
    assert videos.at["v_b", "annotated_duration"] == 40.0
    assert raw.labels == ["Long jump", "Zumba"]
    assert raw.segments["label"].tolist() == ["Long jump", "Zumba", "Zumba"]
    assert raw.segments["source"].tolist() == [f"{train}:2", f"{train}:4", f"{valid}:2"]
    assert raw.report.parameters["ignored_no_action_rows"] == 2


def test_single_csv_needs_a_subset(tmp_path):
    train = write(tmp_path, "train.csv", TRAIN)
    raw = parse_tsp_csv(train, subset="train")
    assert set(raw.videos["subset"]) == {"training"}
    with pytest.raises(AnnotationError, match="pass subset="):
        parse_tsp_csv(train)
    with pytest.raises(AnnotationError, match="not both"):
        parse_tsp_csv({"training": train}, subset="training")


def test_label_mapping_json_gives_ids_and_drops_other_labels(tmp_path):
    train = write(tmp_path, "train.csv", TRAIN)
    mapping = write(tmp_path, "labels.json", '["Zumba", "Archery"]')
    durations = {"v_a.mp4": 30.0, "v_b.mp4": 40.0}
    for name in durations:
        (tmp_path / name).touch()  # the default locator finds the CSV's filename

    def probe(path: Path) -> VideoInfo:
        return VideoInfo(durations[path.name], 30.0, 900, 32, 32)

    result = build_annotations(
        AnnotationSource("tsp_csv", train, subset="training", labels=mapping),
        tmp_path,
        AnnotationRules(clip_seconds=16 / 15, min_background=5.0, duration_tolerance=1.0),
        probe=probe,
        workers=1,
        progress=False,
    )
    assert result.labels == ["Zumba", "Archery"]
    fg = result.segments[result.segments["region"] == "foreground"]
    assert fg[["label", "label_id"]].values.tolist() == [["Zumba", 0]]
    report = result.report.to_frame()
    assert report[["issue", "label", "t_start", "t_end", "source"]].values.tolist() == [
        ["unknown_label", "Long jump", 1.0, 5.0, f"{train}:2"],
        # the dropped Long jump still is action time: the gap before it is [0, 1], too short
        ["short_background", "", 0.0, 1.0, f"{train}:2"],
    ]
    # the released No-action rows are not used: background is recomputed from the actions
    bg = result.segments[result.segments["region"] == "background"]
    assert bg[["video_id", "t_start", "t_end"]].values.tolist() == [
        ["v_a", 5.0, 12.0],
        ["v_a", 20.0, 30.0],
        ["v_b", 0.0, 40.0],
    ]


def test_duplicate_video_rows_disagreeing_are_reported(tmp_path):
    text = f"""{HEADER}
v_a,1.0,5.0,Zumba,30.0,v_a.mp4,30,900,Action
v_a,8.0,9.0,Zumba,31.5,v_a.mp4,30,900,Action
"""
    raw = parse_tsp_csv(
        {
            "training": write(tmp_path, "t.csv", text),
            "validation": write(tmp_path, "v.csv", VALID.replace("v_c", "v_x")),
            "testing": write(tmp_path, "x.csv", VALID.replace("v_c", "v_x")),
        }
    )
    report = raw.report.to_frame().set_index("video_id")
    # durations disagree: reported, kept (the file's duration is used anyway)
    assert report.at["v_a", "action"] == "kept"
    assert "31.5" in report.at["v_a", "detail"]
    assert report.at["v_a", "source"].endswith("t.csv:2")
    # same id in the validation and the test table: which split is unknowable -> skipped
    assert report.at["v_x", "issue"] == "duplicate_video"
    assert report.at["v_x", "action"] == "skipped"
    assert raw.videos["video_id"].tolist() == ["v_a"]
    assert set(raw.segments["video_id"]) == {"v_a"}


def test_empty_time_is_reported_later_and_blank_lines_keep_line_numbers(tmp_path):
    text = f"""{HEADER}
v_a,1.0,5.0,Zumba,30.0,v_a.mp4,30,900,Action

v_a,,9.0,Zumba,30.0,v_a.mp4,30,900,Action
"""
    path = write(tmp_path, "t.csv", text)
    raw = parse_tsp_csv(path, subset="training")
    assert raw.segments["source"].tolist() == [f"{path}:2", f"{path}:4"]
    assert raw.segments["t_start"].isna().tolist() == [False, True]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "video-name,t-start,t-end\nv_a,1,2\n",
            r"t\.csv: line 1: missing column\(s\) "
            r"\['action-label', 'temporal-region-label'\]",
        ),
        (
            f"{HEADER}\nv_a,1.0,5.0,Zumba,30,v_a.mp4,30,900,Action\n"
            "v_a,one,5.0,Zumba,30,v_a.mp4,30,900,Action\n",
            r"t\.csv:3: t-start 'one' is not a number of seconds",
        ),
        (
            f"{HEADER}\nv_a,1.0,5.0,Zumba,30,v_a.mp4,30,900,Foreground\n",
            r"t\.csv:2: temporal-region-label 'Foreground'; use 'Action' or 'No action'",
        ),
        (f"{HEADER}\n,1.0,5.0,Zumba,30,v_a.mp4,30,900,Action\n", r"t\.csv:2: empty video-name"),
        ("", r"t\.csv: empty file"),
        (
            f"{HEADER}\nv_a,1.0,5.0,Zumba,30,v_a.mp4,30,900,Action,extra,more\n",
            r"t\.csv:2: 11 fields but the header has 9",
        ),
    ],
)
def test_malformed_csv_fails_naming_file_line_and_fix(tmp_path, text, message):
    with pytest.raises(AnnotationError, match=message):
        parse_tsp_csv(write(tmp_path, "t.csv", text), subset="training")


def test_missing_csv_and_unknown_subset_key(tmp_path):
    with pytest.raises(
        AnnotationError, match=re.escape(f"{tmp_path / 'no.csv'}: annotation file not found")
    ):
        parse_tsp_csv(tmp_path / "no.csv", subset="training")
    with pytest.raises(AnnotationError, match="unknown subset 'dev'"):
        parse_tsp_csv({"dev": write(tmp_path, "t.csv", TRAIN)})
