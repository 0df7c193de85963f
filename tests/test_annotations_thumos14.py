"""THUMOS14 per-class txt parsing: subsets, Ambiguous handling, CliffDiving/Diving, bad lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from tsp_pretrain.annotations import (
    AnnotationError,
    AnnotationRules,
    AnnotationSource,
    build_annotations,
)
from tsp_pretrain.annotations.thumos14 import parse_thumos14
from tsp_pretrain.video.manifest import Located
from tsp_pretrain.video.probe import VideoInfo

FILES = {
    "annotation_val/CliffDiving_val.txt": "video_validation_0000001 10.0 14.5\n",
    "annotation_val/Diving_val.txt": (
        "video_validation_0000001 10.0 14.5\nvideo_validation_0000001  30.2  33.0 \n"
    ),
    "annotation_val/Ambiguous_val.txt": (
        "video_validation_0000001 20.0 25.0\n"
        "video_validation_0000001 32.0 34.0\n"
        "video_validation_0000002 0.0 5.0\n"
    ),
    "annotation_test/LongJump_test.txt": "\nvideo_test_0000004 3.0 8.0\n",
    "annotation_test/detclasslist.txt": "1 Whatever\n",  # not <Class>_<split>.txt: ignored
}


def write_folder(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "th14" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "th14"


def test_parse_reads_subsets_labels_and_sources_recursively(tmp_path):
    folder = write_folder(tmp_path, FILES)
    raw = parse_thumos14(folder)
    assert raw.labels == ["CliffDiving", "Diving", "LongJump"]  # Ambiguous is not a class
    videos = raw.videos.set_index("video_id")
    assert videos["subset"].to_dict() == {
        "video_validation_0000001": "validation",
        "video_validation_0000002": "validation",
        "video_test_0000004": "testing",
    }
    assert videos["annotated_duration"].isna().all()  # THUMOS has none: the probe decides
    jump = raw.segments[raw.segments["label"] == "LongJump"]
    assert jump["source"].tolist() == [f"{folder}/annotation_test/LongJump_test.txt:2"]
    assert raw.segments.loc[raw.segments["label"] == "Ambiguous", "excluded"].all()
    assert not raw.segments.loc[raw.segments["label"] != "Ambiguous", "excluded"].any()


def test_ambiguous_is_neither_foreground_nor_background_and_is_reported(tmp_path):
    folder = write_folder(tmp_path, FILES)
    durations = {
        "video_validation_0000001": 40.0,
        "video_validation_0000002": 10.0,
        "video_test_0000004": 12.0,
    }

    def probe(path: Path) -> VideoInfo:
        return VideoInfo(durations[path.stem], 30.0, 300, 32, 32)

    result = build_annotations(
        AnnotationSource("thumos14", folder),
        tmp_path,
        AnnotationRules(clip_seconds=16 / 15, min_background=16 / 15, duration_tolerance=1.0),
        probe=probe,
        locate=lambda v, f: Located(f"{v}.mp4"),
        progress=False,
    )
    seg = result.segments[result.segments["video_id"] == "video_validation_0000001"]
    rows = seg[["t_start", "t_end", "label", "region"]].values.tolist()
    assert rows == [
        [0.0, 10.0, "", "background"],
        [10.0, 14.5, "CliffDiving", "foreground"],  # CliffDiving is also Diving: both kept
        [10.0, 14.5, "Diving", "foreground"],
        [14.5, 20.0, "", "background"],
        [25.0, 30.2, "", "background"],  # [20, 25] ambiguous: not background
        [30.2, 33.0, "Diving", "foreground"],
        # [33, 34] ambiguous; background resumes after it
        [34.0, 40.0, "", "background"],
    ]
    assert "Ambiguous" not in set(result.segments["label"])
    only_ambiguous = result.segments[result.segments["video_id"] == "video_validation_0000002"]
    assert only_ambiguous[["t_start", "t_end", "region"]].values.tolist() == [
        [5.0, 10.0, "background"]
    ]
    report = result.report.to_frame()
    ambiguous = report[report["issue"] == "ambiguous"]
    assert len(ambiguous) == 3 and (ambiguous["action"] == "excluded").all()
    overlap = report[report["issue"] == "overlaps_ambiguous"]
    assert overlap[["t_start", "t_end", "label", "action"]].values.tolist() == [
        [30.2, 33.0, "Diving", "kept"]
    ]
    assert overlap["detail"].iloc[0].startswith("overlaps the ambiguous segment [32.0, 34.0]")


def test_video_in_val_and_test_files_is_skipped(tmp_path):
    folder = write_folder(
        tmp_path, {"Diving_val.txt": "vid 1 5\nother 1 5\n", "Diving_test.txt": "vid 2 6\n"}
    )
    raw = parse_thumos14(folder)
    report = raw.report.to_frame()
    assert report[["video_id", "issue", "action"]].values.tolist() == [
        ["vid", "duplicate_video", "skipped"]
    ]
    assert "testing" in report["detail"].iloc[0] and "validation" in report["detail"].iloc[0]
    assert raw.videos["video_id"].tolist() == ["other"]
    assert raw.segments["video_id"].tolist() == ["other"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("vid 1.0 2.0\nvid 3.0 four\n", r"Diving_val\.txt:2: start/end '3\.0' 'four' are not"),
        ("vid 1.0\n", r"Diving_val\.txt:1: expected 'video_name start end'"),
        ("vid 1.0 2.0 3.0\n", r"Diving_val\.txt:1: expected 'video_name start end'"),
    ],
)
def test_malformed_lines_fail_naming_file_and_line(tmp_path, text, message):
    folder = write_folder(tmp_path, {"Diving_val.txt": text})
    with pytest.raises(AnnotationError, match=message):
        parse_thumos14(folder)


def test_folder_errors(tmp_path):
    with pytest.raises(AnnotationError, match="not a folder"):
        parse_thumos14(tmp_path / "absent")
    (tmp_path / "readme.txt").write_text("hello\n")
    with pytest.raises(AnnotationError, match=r"no <ClassName>_val\.txt"):
        parse_thumos14(tmp_path)
    with pytest.raises(AnnotationError, match="no subset"):
        parse_thumos14(tmp_path, subset="validation")
