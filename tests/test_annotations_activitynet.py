"""ActivityNet v1.3 JSON parsing: labels, subsets, sources, duplicates and malformed files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tsp_pretrain.annotations import (
    AnnotationError,
    AnnotationRules,
    AnnotationSource,
    build_annotations,
)
from tsp_pretrain.annotations.activitynet import parse_activitynet
from tsp_pretrain.video.manifest import Located
from tsp_pretrain.video.probe import VideoInfo

TAXONOMY = [
    {"nodeId": 0, "nodeName": "Root", "parentId": None, "parentName": None},
    {"nodeId": 1, "nodeName": "Sports", "parentId": 0, "parentName": "Root"},
    {"nodeId": 2, "nodeName": "Long jump", "parentId": 1, "parentName": "Sports"},
    {"nodeId": 3, "nodeName": "High jump", "parentId": 1, "parentName": "Sports"},
    {"nodeId": 4, "nodeName": "Cooking", "parentId": 0, "parentName": "Root"},
]
DATABASE = {
    "abc": {
        "duration": 82.73,
        "subset": "training",
        "resolution": "1280x720",
        "url": "u",
        "annotations": [
            {"segment": [1.5, 20.0], "label": "Long jump"},
            {"segment": [30.0, 40.0], "label": "Cooking"},
        ],
    },
    "def": {"duration": 50.0, "subset": "validation", "annotations": []},
    "ghi": {"duration": 60.0, "subset": "testing", "annotations": []},
}


def write(tmp_path: Path, text: str, name: str = "anet.json") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def anet(tmp_path: Path, database: dict | None = None, **top) -> Path:
    data = {"version": "VERSION 1.3", "taxonomy": TAXONOMY, "database": database or DATABASE}
    return write(tmp_path, json.dumps(data | top))


def test_parse_reads_videos_segments_and_taxonomy_leaves(tmp_path):
    path = anet(tmp_path)
    raw = parse_activitynet(path)
    # leaves only ("Sports" is a parent), sorted by name; "Cooking" is a leaf directly under Root
    assert raw.labels == ["Cooking", "High jump", "Long jump"]
    videos = raw.videos.set_index("video_id")
    assert videos["subset"].to_dict() == {"abc": "training", "def": "validation", "ghi": "testing"}
    assert videos["labelled"].to_dict() == {"abc": True, "def": True, "ghi": False}
    assert videos.at["abc", "annotated_duration"] == 82.73
    assert raw.segments["label"].tolist() == ["Long jump", "Cooking"]
    assert raw.segments["t_start"].tolist() == [1.5, 30.0]
    assert raw.segments["source"].tolist() == [
        f"{path}:database/abc/annotations/0",
        f"{path}:database/abc/annotations/1",
    ]
    assert not raw.segments["excluded"].any()


def test_explicit_labels_replace_the_taxonomy(tmp_path):
    path = anet(tmp_path)
    assert parse_activitynet(path, labels=["Long jump"]).labels == ["Long jump"]
    label_file = write(tmp_path, '["Long jump", "Cooking"]', "labels.json")
    raw = parse_activitynet(path, labels=label_file)
    assert raw.labels == ["Long jump", "Cooking"]  # the file's order is the label_id order
    assert raw.report.parameters["label_source"] == str(label_file)


def test_without_taxonomy_the_labels_used_are_the_map_and_subsets_are_normalised(tmp_path):
    data = {
        "database": {
            "x": {
                "subset": "Validation",
                "annotations": [
                    {"segment": [1, 2], "label": "B"},
                    {"segment": [3, 4], "label": "A"},
                ],
            },
            "y": {"subset": "Test", "annotations": []},
        }
    }
    raw = parse_activitynet(write(tmp_path, json.dumps(data)))
    assert raw.labels == ["A", "B"]
    assert raw.videos["subset"].tolist() == ["validation", "testing"]
    assert raw.videos["annotated_duration"].isna().all()  # no duration key: unknown, not 0


def test_test_videos_get_no_background_but_labelled_empty_videos_do(tmp_path):
    def probe(path: Path) -> VideoInfo:
        return VideoInfo(50.0, 30.0, 1500, 32, 32)

    result = build_annotations(
        AnnotationSource("activitynet", anet(tmp_path)),
        tmp_path,
        AnnotationRules(clip_seconds=1.0, min_background=0.0, duration_tolerance=100.0),
        probe=probe,
        locate=lambda v, f: Located(f"v_{v}.mp4"),
        progress=False,
    )
    assert sorted(result.videos["video_id"]) == ["abc", "def", "ghi"]
    assert "ghi" not in set(result.segments["video_id"])
    empty = result.segments[result.segments["video_id"] == "def"]
    assert empty[["t_start", "t_end", "region"]].values.tolist() == [[0.0, 50.0, "background"]]
    assert result.videos.set_index("video_id").at["abc", "filename"] == "v_abc.mp4"


def test_duplicate_video_ids_identical_are_merged_different_are_skipped(tmp_path):
    entry = json.dumps(DATABASE["def"])
    other = json.dumps(DATABASE["abc"])
    text = (
        f'{{"taxonomy": {json.dumps(TAXONOMY)}, "database": {{"def": {entry}, '
        f'"def": {entry}, "abc": {other}, "abc": {entry}}}}}'
    )
    raw = parse_activitynet(write(tmp_path, text))
    report = raw.report.to_frame().set_index("video_id")
    assert report.at["def", "issue"] == "duplicate_video"
    assert report.at["def", "action"] == "merged"
    assert report.at["abc", "action"] == "skipped"
    assert raw.videos["video_id"].tolist() == ["def"]
    assert raw.segments.empty


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"database": {"a": ', r"anet\.json: line 1, column \d+: not valid JSON"),
        ("[1, 2]", r'anet\.json: no "database" object'),
        ('{"taxonomy": []}', r'anet\.json: no "database" object'),
        (
            '{"database": {"a": {"annotations": []}}}',
            r'anet\.json:database/a: each video needs a "subset"',
        ),
        (
            '{"database": {"a": {"subset": "training", "annotations": [{"label": "x"}]}}}',
            r'anet\.json:database/a/annotations/0: an annotation needs "segment" and "label"',
        ),
        (
            '{"database": {"a": {"subset": "training", "annotations": '
            '[{"segment": [1], "label": "x"}]}}}',
            r"anet\.json:database/a/annotations/0/segment: expected \[start, end\]",
        ),
        (
            '{"database": {"a": {"subset": "training", "annotations": '
            '[{"segment": ["one", 2], "label": "x"}]}}}',
            r"anet\.json:database/a/annotations/0/segment: 'one' is not a number",
        ),
        ('{"database": {"a": {"subset": "dev"}}}', r"anet\.json:database/a: unknown subset 'dev'"),
        (
            '{"taxonomy": [{"nodeName": "x"}], "database": {}}',
            r"anet\.json: taxonomy: every node needs nodeId",
        ),
        (
            '{"database": {"a": {"subset": "training", "subset": "testing"}}}',
            r"anet\.json: keys \['subset'\] appear twice",
        ),
    ],
)
def test_malformed_files_fail_naming_file_place_and_fix(tmp_path, text, message):
    with pytest.raises(AnnotationError, match=message):
        parse_activitynet(write(tmp_path, text))


def test_missing_file_and_misused_arguments(tmp_path):
    with pytest.raises(
        AnnotationError, match=re.escape(f"{tmp_path / 'nope.json'}: annotation file not found")
    ):
        parse_activitynet(tmp_path / "nope.json")
    with pytest.raises(AnnotationError, match="no subset"):
        parse_activitynet(anet(tmp_path), subset="training")
