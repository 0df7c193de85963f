"""The videos manifest: recursive listing, broken entries as reported skips, digest cache."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

import tsp_pretrain.video.manifest as manifest_module
from tsp_pretrain.video.manifest import (
    ManifestError,
    VideoIndex,
    check_file_record,
    read_manifest,
    scan_videos,
    write_file_record,
    write_manifest,
)


def tsp_layout(root: Path) -> Path:
    """The official TSP layout (train/ valid/ subfolders) plus three entries that cannot be read."""
    videos = root / "videos"
    (videos / "train").mkdir(parents=True)
    (videos / "valid").mkdir()
    (videos / "train" / "v_a.mp4").write_bytes(b"aaaa")
    (videos / "train" / "v_b.mkv").write_bytes(b"bb")
    (videos / "valid" / "v_c.webm").write_bytes(b"c")
    (videos / "valid" / "gone.mp4").symlink_to(root / "nowhere.mp4")  # dangling
    os.mkfifo(videos / "pipe.mp4")
    return videos


def write(videos: Path, out: Path) -> pd.DataFrame:
    return write_manifest(
        videos, out / "m.csv", out / "report.json", out / ".cache.json", param="datasets.x.videos"
    )


def test_lists_subfolders_and_reports_unreadable_entries_instead_of_failing(tmp_path):
    videos = tsp_layout(tmp_path)
    frame = write(videos, tmp_path / "out")
    assert frame["path"].tolist() == [
        "pipe.mp4",
        "train/v_a.mp4",
        "train/v_b.mkv",
        "valid/gone.mp4",
        "valid/v_c.webm",
    ]
    good = frame[frame["problem"] == ""]
    assert good["size"].tolist() == [4, 2, 1]
    assert good["digest"].str.len().tolist() == [16, 16, 16]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["files"] == 3 and report["skipped"] == 2
    problems = {e["path"]: e["problem"] for e in report["skipped_entries"]}
    assert "dangling symbolic link" in problems["valid/gone.mp4"]
    assert "nowhere.mp4" in problems["valid/gone.mp4"]
    assert "not a regular file" in problems["pipe.mp4"]
    pd.testing.assert_frame_equal(read_manifest(tmp_path / "out" / "m.csv"), frame)


def test_manifest_bytes_depend_on_content_only_and_digests_are_cached(tmp_path, monkeypatch):
    videos = tsp_layout(tmp_path)
    out = tmp_path / "out"
    write(videos, out)
    first = (out / "m.csv").read_bytes()
    calls: list[Path] = []
    real = manifest_module.file_digest
    monkeypatch.setattr(manifest_module, "file_digest", lambda p: calls.append(p) or real(p))

    write(videos, out)  # nothing changed: no file is read again
    assert calls == [] and (out / "m.csv").read_bytes() == first

    os.utime(videos / "train" / "v_a.mp4", ns=(1, 1))  # new mtime, same bytes
    write(videos, out)
    assert calls == [videos / "train" / "v_a.mp4"]
    assert (out / "m.csv").read_bytes() == first  # no mtimes in the manifest

    (videos / "train" / "v_a.mp4").write_bytes(b"AAAA")  # same size, new content
    frame = write(videos, out)
    assert (out / "m.csv").read_bytes() != first
    assert frame.set_index("path").at["train/v_a.mp4", "digest"] == real(
        videos / "train" / "v_a.mp4"
    )
    assert not list(out.glob("*.partial-*"))


def test_videos_folder_missing_or_a_file_names_the_param(tmp_path):
    with pytest.raises(ManifestError, match=r"datasets\.x\.videos = .*: no such folder"):
        scan_videos(tmp_path / "absent", param="datasets.x.videos")
    (tmp_path / "file.mp4").write_bytes(b"x")
    with pytest.raises(ManifestError, match=r"datasets\.x\.videos = .*is a file, expected"):
        scan_videos(tmp_path / "file.mp4", param="datasets.x.videos")


def test_locate_searches_subfolders_other_extensions_and_flags_broken_or_ambiguous(tmp_path):
    videos = tsp_layout(tmp_path)
    (videos / "train" / "v_d.mp4").write_bytes(b"d")
    (videos / "valid" / "v_d.mp4").write_bytes(b"d")  # the same video in two folders
    index = VideoIndex(manifest_module.manifest_frame(scan_videos(videos)[0]), videos)
    assert index.locate("a").path == "train/v_a.mp4"  # v_<id>, in a subfolder
    assert index.locate("c").path == "valid/v_c.webm"
    assert index.locate("x", "v_b.mp4").path == "train/v_b.mkv"  # annotated .mp4, file .mkv
    assert index.locate("x", "train/v_a.mp4").path == "train/v_a.mp4"
    gone = index.locate("gone")
    assert gone.problem == "unreadable_video" and "dangling symbolic link" in gone.message
    both = index.locate("d")
    assert both.problem == "unreadable_video" and "2 folders" in both.message
    missing = index.locate("zzz")
    assert missing.problem == "missing_video" and "subfolders included" in missing.message


def test_labels_record_changes_with_the_file_and_is_checked(tmp_path):
    labels = tmp_path / "labels.json"
    labels.write_text('["A"]')
    record = tmp_path / "record.json"
    write_file_record(str(labels), record, param="datasets.x.labels")
    before = record.read_bytes()
    check_file_record(str(labels), record)
    labels.write_text('["B"]')
    with pytest.raises(ManifestError, match="changed since"):
        check_file_record(str(labels), record)
    write_file_record(str(labels), record, param="datasets.x.labels")
    assert record.read_bytes() != before
    write_file_record(None, record, param="datasets.x.labels")
    check_file_record(None, record)
    with pytest.raises(ManifestError, match="params say"):
        check_file_record(str(labels), record)
    with pytest.raises(ManifestError, match=r"datasets\.x\.labels = .*is a folder"):
        write_file_record(str(tmp_path), record, param="datasets.x.labels")
