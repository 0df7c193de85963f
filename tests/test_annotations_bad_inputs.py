"""Inputs users get wrong: subfolder layouts, missing videos, wrong label maps, other extensions,
byte-order marks, files given for folders (and the reverse), zero-length segments."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tsp_pretrain.annotations import (
    AnnotationError,
    AnnotationRules,
    AnnotationSource,
    build_annotations,
    check_annotations,
    check_file_naming,
    format_summary,
)
from tsp_pretrain.annotations.schema import load_label_list
from tsp_pretrain.annotations.thumos14 import parse_thumos14
from tsp_pretrain.annotations.tsp_csv import parse_tsp_csv
from tsp_pretrain.config import ConfigError, DatasetParams
from tsp_pretrain.video.probe import VideoInfo

BOM = "\ufeff"
TSP_HEADER = "video-name,t-start,t-end,action-label,video-duration,filename,temporal-region-label"


def probe(path: Path) -> VideoInfo:
    """Every listed file is a 10 s video (no real decoding needed to test the bookkeeping)."""
    return VideoInfo(10.0, 30.0, 300, 32, 32)


def tsp_dataset(root: Path, n_train: int = 3, n_valid: int = 4) -> Path:
    """Official layout: videos/train/v_t<i>.mp4 and videos/valid/v_v<i>.mp4 (empty files)."""
    database = {}
    for folder, subset, prefix, n in (
        ("train", "training", "t", n_train),
        ("valid", "validation", "v", n_valid),
    ):
        (root / "videos" / folder).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            (root / "videos" / folder / f"v_{prefix}{i}.mp4").touch()
            database[f"{prefix}{i}"] = {
                "subset": subset,
                "duration": 10.0,
                "annotations": [{"segment": [2.0, 6.0], "label": "Jump"}],
            }
    (root / "anet.json").write_text(json.dumps({"database": database}))
    return root / "anet.json"


def build(annotations: Path, videos: Path, fmt: str = "activitynet", **source):
    return build_annotations(
        AnnotationSource(fmt, annotations, **source),
        videos,
        AnnotationRules(clip_seconds=1.0, min_background=0.0, duration_tolerance=1.0),
        probe=probe,
        workers=1,
        progress=False,
    )


# --- B2/B3: subfolders, missing videos, the summary that fails -----------------------------------


def test_videos_in_subfolders_are_found_from_the_parent_folder(tmp_path):
    result = build(tsp_dataset(tmp_path), tmp_path / "videos")
    assert len(result.videos) == 7
    assert result.videos.set_index("video_id").at["v0", "filename"] == "valid/v_v0.mp4"
    check_annotations(result, max_missing_fraction=0.5, videos_dir=tmp_path / "videos")
    assert result.totals()["subsets"]["validation"] == {
        "annotated": 4,
        "found": 4,
        "missing": 0,
        "unreadable": 0,
        "foreground_segments": 4,
        "labelled": True,
    }


def test_pointing_at_train_fails_naming_the_missing_subset_and_the_sibling_folder(tmp_path):
    result = build(tsp_dataset(tmp_path), tmp_path / "videos" / "train")
    block = format_summary(result.summary, "title")
    assert "validation" in block and block.splitlines()[0].startswith("=====")
    assert result.totals()["subsets"]["validation"]["missing"] == 4
    with pytest.raises(AnnotationError) as err:
        check_annotations(result, max_missing_fraction=0.5, videos_dir=tmp_path / "videos/train")
    message = str(err.value)
    assert "0 of 4 validation videos found under" in message
    assert f"sibling folder: {tmp_path / 'videos' / 'valid'} (4)" in message
    assert "training" not in message  # the training subset is fine


def test_max_missing_fraction_decides(tmp_path):
    annotations = tsp_dataset(tmp_path, n_train=4, n_valid=1)
    for i in range(3):
        (tmp_path / "videos" / "train" / f"v_t{i}.mp4").unlink()  # 3 of 4 training missing
    result = build(annotations, tmp_path / "videos")
    with pytest.raises(AnnotationError, match=r"1 of 4 training videos .*3 missing"):
        check_annotations(result, max_missing_fraction=0.5, videos_dir=tmp_path / "videos")
    check_annotations(result, max_missing_fraction=0.75, videos_dir=tmp_path / "videos")


def test_a_wrong_label_file_leaving_no_foreground_fails_naming_the_labels(tmp_path):
    annotations = tsp_dataset(tmp_path)
    labels = tmp_path / "labels.json"
    labels.write_text('["Zumba", "Archery"]')  # the map of another dataset
    result = build(annotations, tmp_path / "videos", labels=labels)
    with pytest.raises(AnnotationError) as err:
        check_annotations(result, max_missing_fraction=0.5, videos_dir=tmp_path / "videos")
    message = str(err.value)
    assert "training: no foreground segment in 3 video(s)" in message
    assert "validation: no foreground segment in 4 video(s)" in message
    assert "labels missing from the label map" in message


def test_the_annotation_report_holds_the_subset_summary(tmp_path):
    from tsp_pretrain.annotations import write_annotations

    result = build(tsp_dataset(tmp_path), tmp_path / "videos" / "train")
    write_annotations(result, tmp_path / "out")
    totals = json.loads((tmp_path / "out" / "report.json").read_text())["totals"]
    assert totals["subsets"]["training"]["found"] == 3
    assert totals["subsets"]["validation"]["missing"] == 4


# --- B4: tsp_csv file names with another extension ---------------------------------------------


def test_tsp_csv_finds_a_video_downloaded_with_another_extension(tmp_path):
    csv = tmp_path / "train.csv"
    csv.write_text(f"{TSP_HEADER}\nv_a,1.0,5.0,Jump,10.0,v_a.mp4,Action\n")
    (tmp_path / "videos" / "train").mkdir(parents=True)
    (tmp_path / "videos" / "train" / "v_a.mkv").touch()
    result = build(csv, tmp_path / "videos", "tsp_csv", subset="training")
    assert result.videos["filename"].tolist() == ["train/v_a.mkv"]


# --- B5: byte-order marks -----------------------------------------------------------------------


def test_byte_order_marks_are_tolerated_in_every_format(tmp_path):
    csv = tmp_path / "train.csv"
    csv.write_text(f"{BOM}{TSP_HEADER}\nv_a,1.0,5.0,Jump,10.0,v_a.mp4,Action\n")
    assert parse_tsp_csv(csv, subset="training").videos["video_id"].tolist() == ["v_a"]

    (tmp_path / "th").mkdir()
    (tmp_path / "th" / "Jump_val.txt").write_text(f"{BOM}video_validation_1 1.0 2.0\n")
    assert parse_thumos14(tmp_path / "th").videos["video_id"].tolist() == ["video_validation_1"]

    annotations = tsp_dataset(tmp_path / "anet", n_train=1, n_valid=1)
    annotations.write_text(BOM + annotations.read_text())
    assert len(build(annotations, tmp_path / "anet" / "videos").videos) == 2

    labels = tmp_path / "labels.json"
    labels.write_text(f'{BOM}["Jump"]')
    assert load_label_list(labels) == ["Jump"]


# --- B6: a file for a folder or the reverse; zero-length segments --------------------------------


def test_a_file_for_a_folder_or_the_reverse_names_the_param(tmp_path):
    (tmp_path / "anet.json").write_text("{}")
    (tmp_path / "csvs").mkdir()
    anet_folder = DatasetParams(format="activitynet", annotations=str(tmp_path), videos="v")
    with pytest.raises(ConfigError, match=r"datasets\.target\.annotations = .* is a folder; "):
        anet_folder.check_paths("target")
    tsp_file = DatasetParams(
        format="tsp_csv",
        annotations=str(tmp_path / "anet.json"),
        videos="v",
        csv_files={"training": "train.csv"},
    )
    with pytest.raises(ConfigError, match=r"datasets\.x\.annotations = .* is a file; expected"):
        tsp_file.check_paths("x")
    labels_dir = DatasetParams(
        format="activitynet",
        annotations=str(tmp_path / "anet.json"),
        videos="v",
        labels=str(tmp_path / "csvs"),
    )
    with pytest.raises(ConfigError, match=r"datasets\.x\.labels = .* is a folder; expected a JSON"):
        labels_dir.check_paths("x")
    # the parsers themselves never end in a raw IsADirectoryError / NotADirectoryError
    with pytest.raises(AnnotationError, match="not a file; expected the ActivityNet JSON"):
        build(tmp_path / "csvs", tmp_path)
    with pytest.raises(AnnotationError, match="not a file"):
        parse_tsp_csv(tmp_path / "anet.json" / "train.csv", subset="training")
    with pytest.raises(AnnotationError, match="not a file"):
        load_label_list(tmp_path / "csvs")


def test_zero_length_segments_get_their_own_message(tmp_path):
    annotations = tsp_dataset(tmp_path, n_train=1, n_valid=1)
    data = json.loads(annotations.read_text())
    data["database"]["t0"]["annotations"] += [
        {"segment": [3.0, 3.0], "label": "Jump"},
        {"segment": [5.0, 4.0], "label": "Jump"},
    ]
    annotations.write_text(json.dumps(data))
    report = build(annotations, tmp_path / "videos").report.to_frame().set_index("issue")
    assert report.at["zero_length", "t_start"] == 3.0
    assert "start == end" in report.at["zero_length", "detail"]
    assert "swap" not in report.at["zero_length", "detail"]
    assert report.at["inverted", "t_start"] == 5.0


# --- B7: video files named both v_<id> and <id> -------------------------------------------------


def test_files_named_both_with_and_without_v_are_refused_with_the_renaming(tmp_path):
    annotations = tsp_dataset(tmp_path, n_train=3, n_valid=4)
    train = tmp_path / "videos" / "train"
    (train / "v_t0.mp4").rename(train / "t0.mp4")  # 6 files v_<id>, 1 file <id>
    with pytest.raises(AnnotationError) as caught:
        build(annotations, tmp_path / "videos")
    message = str(caught.value)
    assert (
        "named in 2 ways: 6 as v_<id> (e.g. train/v_t1.mp4, train/v_t2.mp4, valid/v_v0.mp4, ...)"
        in message
    )
    assert "1 as <id> (e.g. train/t0.mp4)" in message
    assert "all or none carry v_" in message
    assert "train/t0.mp4 -> train/v_t0.mp4" in message  # the minority renamed to the majority
    # renamed as the message says, the same folder builds
    (train / "t0.mp4").rename(train / "v_t0.mp4")
    assert len(build(annotations, tmp_path / "videos").videos) == 7


def test_ids_carrying_v_themselves_count_as_another_naming(tmp_path):
    annotations = tsp_dataset(tmp_path, n_train=2, n_valid=1)
    data = json.loads(annotations.read_text())
    data["database"]["v_t0"] = data["database"].pop("t0")  # id v_t0, file v_t0.mp4: no prefix
    annotations.write_text(json.dumps(data))
    with pytest.raises(AnnotationError, match=r"2 as v_<id> .* 1 as <id> \(e\.g\. train/v_t0"):
        build(annotations, tmp_path / "videos")


def test_one_naming_without_v_and_free_file_names_pass(tmp_path):
    annotations = tsp_dataset(tmp_path, n_train=2, n_valid=1)
    for path in sorted((tmp_path / "videos").rglob("v_*.mp4")):
        path.rename(path.with_name(path.name[2:]))  # all <id>.mp4: one naming
    assert len(build(annotations, tmp_path / "videos").videos) == 3
    # a file named freely (a filename column) has no <prefix><id> form: not part of the check;
    # missing and unreadable videos are not either
    probed = pd.DataFrame(
        {
            "video_id": ["a", "b", "c", "d"],
            "filename": ["v_a.mp4", "sub/clip_7.mp4", "c.mp4", "d.mp4"],
            "problem": ["", "", "missing_video", "unreadable_video"],
        }
    )
    check_file_naming(probed, tmp_path)
