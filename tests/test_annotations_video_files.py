"""build_annotations against real (tiny) mp4 files probed with PyAV, including a zero-byte file."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest

from tsp_pretrain.annotations import (
    AnnotationRules,
    AnnotationSource,
    build_annotations,
    write_annotations,
)


def write_mp4(path: Path, seconds: float, fps: int = 30, size: int = 32) -> None:
    """A libx264/yuv420p clip of ``seconds`` at ``fps`` (even size: x264 refuses odd ones)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(round(seconds * fps)):
            frame = np.full((size, size, 3), (i * 7) % 256, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_real_files_give_durations_and_bad_files_are_skipped_not_fatal(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    write_mp4(videos / "v_one.mp4", 1.0)
    write_mp4(videos / "v_two.mp4", 2.0)
    (videos / "v_empty.mp4").touch()  # zero bytes: must be reported, never crash
    database = {
        "one": {
            "subset": "training",
            "duration": 1.0,
            "annotations": [{"segment": [0.0, 0.8], "label": "A"}],
        },
        "two": {
            "subset": "validation",
            "duration": 5.0,
            "annotations": [{"segment": [0.5, 3.0], "label": "A"}],
        },
        "empty": {
            "subset": "training",
            "duration": 2.0,
            "annotations": [{"segment": [0.0, 1.0], "label": "A"}],
        },
        "absent": {"subset": "training", "duration": 2.0, "annotations": []},
    }
    annotations = tmp_path / "anet.json"
    annotations.write_text(json.dumps({"database": database}))

    result = build_annotations(
        AnnotationSource("activitynet", annotations),
        videos,
        AnnotationRules(clip_seconds=0.5, min_background=0.0, duration_tolerance=1.0),
        workers=2,
        progress=False,
    )

    got = result.videos.set_index("video_id")
    assert got.index.tolist() == ["one", "two"]
    assert got.at["one", "duration"] == pytest.approx(1.0, abs=0.05)
    assert got.at["two", "duration"] == pytest.approx(2.0, abs=0.05)
    assert got["fps"].tolist() == pytest.approx([30.0, 30.0])
    assert got["num_frames"].tolist() == [30, 60]
    assert got.at["two", "filename"] == "v_two.mp4"
    report = result.report.to_frame().set_index("video_id")
    assert report.at["empty", "issue"] == "unreadable_video"
    assert "0 bytes" in report.at["empty", "detail"]
    assert report.at["absent", "issue"] == "missing_video"
    two = report.loc[["two"]]
    assert set(two["issue"]) == {"duration_mismatch", "clipped"}  # 5 s annotated, 2 s file
    segments = result.segments[result.segments["video_id"] == "two"]
    assert segments["t_end"].max() == pytest.approx(got.at["two", "duration"])

    write_annotations(result, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "labels.json",
        "report.csv",
        "report.json",
        "segments.csv",
        "videos.csv",
    ]
