"""Extraction at scale: linear bookkeeping, input workers, batched transforms, shards + merge.

Every comparison is byte for byte on whole feature folders (npy files, index.json, clips.csv,
meta.json, missing_files.txt, features.hdf5, resized_<L>/): DVC hashes the folder.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import torch
from videos import write_video

from tsp_pretrain.config import ClipSpec
from tsp_pretrain.features import store as feature_store
from tsp_pretrain.features.extract import extract_dataset, merge_shards
from tsp_pretrain.features.shards import (
    SHARDS_DIR,
    ShardError,
    resolve_shard,
    shard_dir,
    shard_videos,
)
from tsp_pretrain.features.spec import ExtractionRun, FeatureSpec, OutputSpec
from tsp_pretrain.models.encoder import build_encoder
from tsp_pretrain.runtime import shard_device
from tsp_pretrain.video.decode import decode_dataset
from tsp_pretrain.video.store import FrameStore, StoreSettings

IDS = ["a", "b", "c", "d", "short"]
IDENTITY = {"code": "x", "encoder": "e", "clip_len": 8, "stride": 4}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    lengths = {"a": 60, "b": 45, "c": 75, "d": 30, "short": 10}
    for name, n in lengths.items():
        write_video(root / "videos" / f"{name}.mp4", num_frames=n, height=32, width=32)
    table = pd.DataFrame(
        {
            "video_id": list(lengths),
            "filename": [f"{v}.mp4" for v in lengths],
            "duration": [n / 30 for n in lengths.values()],
        }
    )
    decode_dataset(
        table, root / "videos", root / "frames", StoreSettings(15, 20, "npy"), progress=False
    )
    return FrameStore(root / "frames")


def _videos() -> pd.DataFrame:
    ids = [*IDS, "gone"]  # "gone": annotated but not in the frame store
    return pd.DataFrame({"video_id": ids, "filename": [f"v_{v}.mp4" for v in ids]})


RUN = ExtractionRun(
    FeatureSpec(ClipSpec(clip_len=8, frame_rate=15, crop_size=16), stride=4),
    identity=IDENTITY,
    batch_size=3,
    device=torch.device("cpu"),
    outputs=OutputSpec({"backbone": "r2plus1d_tiny"}, h5=True, fixed_length=5),
    skipped=("skipped_id",),
    progress=False,
)


def _encoder():
    torch.manual_seed(0)  # "none": random weights, the same in every call
    return build_encoder("r2plus1d_tiny", "none").module


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def single(store, tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    counts = extract_dataset(_encoder(), store, _videos(), out, RUN)
    assert counts == {"extracted": 5, "reused": 0, "missing": 1}
    return _snapshot(out)


def test_index_is_written_once_and_progress_records_are_constant_size(store, tmp_path, monkeypatch):
    """Before: index.json was rewritten whole after every video (quadratic bookkeeping)."""
    writes = []
    real = feature_store.write_json

    def spy(path, document, **kwargs):
        writes.append((Path(path), json.dumps(document)))
        real(path, document, **kwargs)

    monkeypatch.setattr(feature_store, "write_json", spy)
    extract_dataset(_encoder(), store, _videos(), tmp_path, RUN)
    index_writes = [doc for path, doc in writes if path.name == "index.json"]
    records = [doc for path, doc in writes if path.parent.name == ".progress"]
    assert len(index_writes) == 1 and len(records) == 5
    assert all(len(json.loads(doc)["entry"]) == 5 for doc in records)  # one video each
    assert not (tmp_path / ".progress").exists()


def test_workers_give_byte_identical_folders(store, single, tmp_path):
    out = tmp_path / "workers"
    extract_dataset(_encoder(), store, _videos(), out, replace(RUN, workers=2))
    assert _snapshot(out) == single


def test_two_shards_merge_to_the_single_process_folder(store, single, tmp_path):
    for i in (1, 0):
        run = replace(RUN, shard=i, num_shards=2)
        counts = extract_dataset(_encoder(), store, _videos(), tmp_path, run)
        assert counts["extracted"] + counts["missing"] == 3  # a, c, gone | b, d, short
    shard0 = shard_dir(tmp_path, 0, 2)
    assert (shard0 / "v_a.npy").is_file() and not (tmp_path / "v_a.npy").exists()
    merged = merge_shards(tmp_path, _videos(), store, replace(RUN, num_shards=2))
    assert merged == {"merged": 5, "missing": 2}  # gone, skipped_id: meta.json's num_missing
    assert _snapshot(tmp_path) == single
    assert not (tmp_path / SHARDS_DIR).exists()


def _merge(store, out: Path, num_shards: int = 2):
    run = replace(RUN, num_shards=num_shards)
    return merge_shards(out, _videos(), store, run, rerun="RUN {i}")


def _shard(store, out: Path, i: int, identity=IDENTITY, videos=None):
    run = replace(RUN, identity=identity, shard=i, num_shards=2)
    extract_dataset(_encoder(), store, _videos() if videos is None else videos, out, run)


def test_merge_names_an_unfinished_shard_and_how_to_run_it(store, tmp_path):
    _shard(store, tmp_path, 0)
    with pytest.raises(ShardError, match=r"shard 1-of-2 .* has not finished: run it .*RUN 1"):
        _merge(store, tmp_path)


def test_merge_rejects_shards_with_other_settings(store, tmp_path):
    _shard(store, tmp_path, 0)
    _shard(store, tmp_path, 1, identity=IDENTITY | {"encoder": "other"})
    with pytest.raises(ShardError, match=r"shard 1-of-2 .*encoder: 'other' \(expected 'e'\)"):
        _merge(store, tmp_path)


def test_merge_rejects_a_video_held_twice_or_not_at_all(store, tmp_path):
    _shard(store, tmp_path, 0)
    _shard(store, tmp_path, 1)
    one = shard_dir(tmp_path, 1, 2)
    index = json.loads((one / "index.json").read_text())
    record = json.loads((one / "shard.json").read_text())
    # a video of shard 0 also in shard 1
    index["videos"]["a"] = json.loads((shard_dir(tmp_path, 0, 2) / "index.json").read_text())[
        "videos"
    ]["a"]
    (one / "index.json").write_text(json.dumps(index))
    with pytest.raises(ShardError, match=r"video a is in shards 0-of-2 and 1-of-2"):
        _merge(store, tmp_path)
    # a video of shard 1's share missing
    del index["videos"]["a"]
    lost = record["videos"][0]
    index["videos"].pop(lost, None)
    record["missing"] = [m for m in record["missing"] if m != lost]
    (one / "index.json").write_text(json.dumps(index))
    (one / "shard.json").write_text(json.dumps(record))
    with pytest.raises(ShardError, match=rf"shard 1-of-2 .* lacks 1 of its videos \({lost}\)"):
        _merge(store, tmp_path)


def test_merge_rejects_features_that_no_longer_match_the_frame_store(store, tmp_path):
    """The merge asks each video the same rule as a run (features_are_current), against the
    store now: here shard 1's entry for one video records other frames than the store holds."""
    _shard(store, tmp_path, 0)
    _shard(store, tmp_path, 1)
    one = shard_dir(tmp_path, 1, 2)
    index = json.loads((one / "index.json").read_text())
    vid = sorted(index["videos"])[0]
    index["videos"][vid]["frames"] = "0" * 16
    (one / "index.json").write_text(json.dumps(index))
    with pytest.raises(
        ShardError, match=rf"shard 1-of-2: the features of video {vid} do not match .*RUN 1"
    ):
        _merge(store, tmp_path)


def test_shards_of_another_split_are_not_merged(store, tmp_path):
    _shard(store, tmp_path, 0)
    _shard(store, tmp_path, 1)
    with pytest.raises(ShardError, match=r"not shards of a 3-way split"):
        _merge(store, tmp_path, num_shards=3)


_KILLED_SHARD = """
import os, signal, sys
import numpy as np
import pandas as pd
import torch
import pickle
from tsp_pretrain.features.extract import extract_dataset
from tsp_pretrain.models.encoder import build_encoder
from tsp_pretrain.video.store import FrameStore
real, calls = np.save, [0]
def save(path, array, *args, **kwargs):
    calls[0] += 1
    if calls[0] == 2:  # the second video: a half-written file, then SIGKILL
        with open(path, "wb") as f:
            f.write(b"\\x93NUMPY half a file")
        os.kill(os.getpid(), signal.SIGKILL)
    return real(path, array, *args, **kwargs)
np.save = save
ids = {ids!r}
torch.manual_seed(0)
extract_dataset(
    build_encoder("r2plus1d_tiny", "none").module, FrameStore({frames!r}),
    pd.DataFrame({{"video_id": ids, "filename": [f"v_{{v}}.mp4" for v in ids]}}),
    {out!r}, pickle.loads({run!r}),
)
"""


def test_a_killed_shard_resumes_and_merges_to_the_single_process_folder(store, single, tmp_path):
    run = replace(RUN, shard=0, num_shards=2)
    code = _KILLED_SHARD.format(
        ids=[*IDS, "gone"], frames=str(store.root), out=str(tmp_path), run=pickle.dumps(run)
    )
    env = os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]
    folder = shard_dir(tmp_path, 0, 2)
    assert len(list((folder / ".progress").glob("*.json"))) == 1  # the first video's record
    assert not (folder / "index.json").exists()
    counts = extract_dataset(_encoder(), store, _videos(), tmp_path, run)
    assert counts["reused"] == 1 and counts["extracted"] == 1
    _shard(store, tmp_path, 1)
    _merge(store, tmp_path)
    assert _snapshot(tmp_path) == single


def test_shard_assignment_is_disjoint_and_covers_every_video():
    table = pd.DataFrame({"video_id": [f"v{i}" for i in range(11)][::-1]})
    shares = [set(shard_videos(table, i, 3)["video_id"]) for i in range(3)]
    assert set().union(*shares) == set(table["video_id"])
    assert sum(map(len, shares)) == 11 and [len(s) for s in shares] == [4, 4, 3]


def test_resolve_shard_from_params_or_torchrun():
    assert resolve_shard(0, 1, env={}) == (0, 1)
    assert resolve_shard(2, 4, env={}) == (2, 4)
    assert resolve_shard(0, 1, env={"RANK": "3", "WORLD_SIZE": "8"}) == (3, 8)
    with pytest.raises(ShardError, match="RANK=3 WORLD_SIZE=8"):
        resolve_shard(1, 2, env={"RANK": "3", "WORLD_SIZE": "8"})
    with pytest.raises(ShardError, match=r"not in 0\.\.1"):
        resolve_shard(2, 2, env={})


def test_each_shard_on_cuda_takes_its_own_gpu(monkeypatch):
    """Precision and input workers are tests/test_runtime.py's; the shard's GPU is here."""
    assert shard_device("cpu", 1, 2) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert shard_device("cuda", 3, 4) == torch.device("cuda:1")
    assert shard_device("cuda", 3, 1) == torch.device("cuda")  # one process: as asked
    assert shard_device("cuda:0", 3, 4) == torch.device("cuda:0")  # an index given: kept
    monkeypatch.setenv("LOCAL_RANK", "0")  # torchrun's rank on this machine wins
    assert shard_device("cuda", 3, 4) == torch.device("cuda:0")


def test_extract_params_reject_a_shard_outside_the_split():
    from pydantic import ValidationError

    from tsp_pretrain.config import ExtractParams

    assert ExtractParams().workers == "auto" and ExtractParams().num_shards == 1
    with pytest.raises(ValidationError, match=r"extract\.shard 2 must be < num_shards 2"):
        ExtractParams(shard=2, num_shards=2)
    with pytest.raises(ValidationError, match=r"workers must be >= 0"):
        ExtractParams(workers=-1)
