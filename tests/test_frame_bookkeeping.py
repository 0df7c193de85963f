"""The frame store's bookkeeping: constant cost per video, resumable after a kill, deterministic,
and a decode side that does not import torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from killed_decode import run_killed_on_the_third
from videos import write_video

from tsp_pretrain import atomic
from tsp_pretrain.video import decode as decode_module
from tsp_pretrain.video.decode import decode_dataset
from tsp_pretrain.video.store import (
    FrameStore,
    StoredFrames,
    StoredVideo,
    StoreSettings,
    write_npy,
)

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = StoreSettings(frame_rate=15, short_side=16, store="npy")
PENDING_SUFFIX = ".entry.json"  # tsp_pretrain.video.store.PENDING_SUFFIX (not imported: the
# tests must run, and fail, against the code before it existed)


def _table(names) -> pd.DataFrame:
    names = list(names)
    return pd.DataFrame(
        {"video_id": names, "filename": [f"{v}.mp4" for v in names], "duration": [1.0] * len(names)}
    )


def _fake_decode(job):
    """A decoder that writes a one-frame file: only the bookkeeping around it is real."""
    out = Path(job.out_dir) / f"{job.video_id}{job.settings.suffix}"
    count, h, w = write_npy(out, iter([np.zeros((2, 2, 3), np.uint8)]))
    entry = StoredVideo(job.video_id, out.name, count, h, w, "x.mp4", "0", job.settings)
    return entry, decode_module.DecodeLog()


@pytest.mark.parametrize("num_videos", [4, 40])
def test_index_is_written_a_constant_number_of_times(tmp_path, monkeypatch, num_videos):
    # Before: index.json was rewritten after every video (num_videos + 1 writes, each of the
    # whole index: quadratic). Now: once at the start, once at the end, whatever the count.
    monkeypatch.setattr(decode_module, "_decode_one", _fake_decode)
    writes = []
    replace = os.replace

    def counting_replace(src, dst):
        writes.append(Path(dst).name)
        replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", counting_replace)
    names = [f"v{i:03d}" for i in range(num_videos)]
    out = tmp_path / "frames"
    report = decode_dataset(_table(names), tmp_path, out, SETTINGS, progress=False)
    assert report.decoded == names
    assert writes.count("index.json") == 2
    assert FrameStore(out).video_ids == names
    assert not list(out.glob(f"*{PENDING_SUFFIX}")), "entry files left in the finished store"


def _killed_run(videos: Path, out: Path):
    """A single-process decode of a, b, c, d into ``out``, killed on the third video."""
    return run_killed_on_the_third(
        f"""
from tsp_pretrain.video.store import StoreSettings
names = ["a", "b", "c", "d"]
table = pd.DataFrame({{"video_id": names, "filename": [f"{{v}}.mp4" for v in names],
                      "duration": [1.0] * 4}})
decode.decode_dataset(table, {str(videos)!r}, {str(out)!r}, StoreSettings(15, 16, "npy"),
                      progress=False)
"""
    )


def _folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_killed_run_resumes_from_its_entry_files_to_identical_bytes(tmp_path):
    videos = tmp_path / "videos"
    for name in "abcd":
        write_video(videos / f"{name}.mp4", num_frames=30)
    killed = tmp_path / "killed"
    result = _killed_run(videos, killed)
    assert result.returncode == -9, result.stderr[-3000:]  # SIGKILL, decoding the third video
    # what the killed run finished is on disk, one entry file per video beside its frames
    assert sorted(p.name for p in killed.glob(f"*{PENDING_SUFFIX}")) == [
        "a.entry.json",
        "b.entry.json",
    ]
    assert json.loads((killed / "index.json").read_text()) == {"videos": {}}

    report = decode_dataset(_table("abcd"), videos, killed, SETTINGS, progress=False)
    assert report.reused == ["a", "b"] and report.decoded == ["c", "d"]
    fresh = tmp_path / "fresh"
    decode_dataset(_table("abcd"), videos, fresh, SETTINGS, progress=False)
    assert _folder_bytes(killed) == _folder_bytes(fresh)
    assert sorted(_folder_bytes(fresh)) == ["a.npy", "b.npy", "c.npy", "d.npy", "index.json"]


def test_an_unreadable_entry_file_is_reported_and_its_video_decoded_again(tmp_path, caplog):
    videos = tmp_path / "videos"
    write_video(videos / "a.mp4", num_frames=30)
    out = tmp_path / "frames"
    decode_dataset(_table("a"), videos, out, SETTINGS, progress=False)
    index = out / "index.json"
    index.write_text('{"videos": {}}\n')  # as a killed run leaves it ...
    (out / f"a{PENDING_SUFFIX}").write_text('{"video_id": "a", "fi')  # ... with a bad entry
    report = decode_dataset(_table("a"), videos, out, SETTINGS, progress=False)
    assert report.decoded == ["a"] and report.reused == []
    assert f"a{PENDING_SUFFIX}: unreadable" in caplog.text
    assert sorted(p.name for p in out.iterdir()) == ["a.npy", "index.json"]


def _imports_torch(code: str) -> bool:
    check = code + "\nimport sys\nprint('torch' in sys.modules)\n"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", check], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1] == "True"


def test_the_decode_side_does_not_import_torch():
    assert not _imports_torch("import tsp_pretrain.video.decode")
    # what a spawned decode worker runs: the stage script as __mp_main__, then the job function
    assert not _imports_torch(
        # sys.path as the parent's (multiprocessing hands it over): the script's folder first
        "import runpy, sys; sys.path.insert(0, 'stages')\n"
        "runpy.run_path('stages/decode.py', run_name='__mp_main__')\n"
        "from tsp_pretrain.video.decode import _decode_one"
    )
    # the readers still hand out tensors
    assert _imports_torch(
        "import numpy as np, tempfile, pathlib\n"
        "from tsp_pretrain.video.store import StoredFrames, StoredVideo, StoreSettings, write_npy\n"
        "p = pathlib.Path(tempfile.mkdtemp()) / 'a.npy'\n"
        "write_npy(p, iter([np.zeros((2, 2, 3), np.uint8)]))\n"
        "s = StoreSettings(15, 16, 'npy')\n"
        "entry = StoredVideo('a', 'a.npy', 1, 2, 2, 'a.mp4', '0', s)\n"
        "clip = StoredFrames(p, entry).read_clip(0, 3)\n"
        "assert type(clip).__module__ == 'torch' and tuple(clip.shape) == (3, 2, 2, 3)"
    )


def test_mp4_clips_decoded_in_one_thread_have_the_same_pixels(tmp_path, monkeypatch):
    write_video(tmp_path / "v" / "a.mp4", num_frames=90, height=34, width=50)
    settings = StoreSettings(frame_rate=15, short_side=None, store="mp4", frame_size=(17, 25))
    out = tmp_path / "f"
    decode_dataset(_table("a"), tmp_path / "v", out, settings, progress=False)
    starts = [0, 3, 15, 16, 17, 29, 40]
    monkeypatch.setattr(StoredFrames, "DECODE_THREADS", 0)  # FFmpeg's default, as before
    before = [FrameStore(out).open("a").read_clip(s, 16).numpy() for s in starts]
    monkeypatch.setattr(StoredFrames, "DECODE_THREADS", 1)
    video = FrameStore(out).open("a")
    for start, clip in zip(starts, before, strict=True):
        np.testing.assert_array_equal(video.read_clip(start, 16).numpy(), clip)
    np.testing.assert_array_equal(np.stack(list(video.iter_frames()))[3:19], before[1])


def test_the_index_records_the_source_with_its_subfolder(tmp_path):
    """Two videos of the same file name in different subfolders stay told apart in the index;
    an entry made before the index kept subfolders is reused and gets the full path."""
    videos = tmp_path / "videos"
    write_video(videos / "day1" / "cam.mp4", num_frames=30)
    write_video(videos / "day 2" / "cam.mp4", num_frames=30)
    table = pd.DataFrame(
        {
            "video_id": ["a", "b"],
            "filename": ["day1/cam.mp4", "day 2/cam.mp4"],
            "duration": [1.0, 1.0],
        }
    )
    out = tmp_path / "frames"
    decode_dataset(table, videos, out, SETTINGS, progress=False)
    index = json.loads((out / "index.json").read_text())["videos"]
    assert {v: e["source"] for v, e in index.items()} == {"a": "day1/cam.mp4", "b": "day 2/cam.mp4"}

    index["a"]["source"] = "cam.mp4"  # as an older store recorded it
    (out / "index.json").write_text(json.dumps({"videos": index}))
    report = decode_dataset(table, videos, out, SETTINGS, progress=False)
    assert report.reused == ["a", "b"] and report.decoded == []
    assert json.loads((out / "index.json").read_text())["videos"]["a"]["source"] == "day1/cam.mp4"
