"""Sharded decoding: shards over machines, then a merge byte-identical to a single-process run.

Every comparison is byte for byte on the whole frame store (every frames file and index.json)
and on the stage's report: DVC hashes both.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import yaml
from killed_decode import run_killed_on_the_third
from videos import overwrite_with_garbage, write_faststart_video, write_video

from tsp_pretrain.sharding import (
    SHARD_FILE,
    SHARDS_DIR,
    ShardError,
    resolve_shard,
    shard_dir,
    shard_ids,
    shard_videos,
)
from tsp_pretrain.video import shards as shards_module
from tsp_pretrain.video.decode import decode_dataset, write_report
from tsp_pretrain.video.shards import DecodeSpec, decode_shard, merge_decode_shards
from tsp_pretrain.video.store import PENDING_SUFFIX, StoreSettings

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = StoreSettings(frame_rate=15, short_side=16, store="npy", code="x")
# not sorted: the report follows the table's order, the shares the sorted ids
ORDER = ["short", "c", "a", "gone", "bad", "e", "empty", "b", "d"]
DURATIONS = {
    "a": 1.0,
    "b": 1.5,
    "c": 2.0,
    "d": 1.0,
    "e": 1.2,
    "bad": 5.0,  # corrupt in the middle: stored, with lost frames (report "damaged")
    "short": 9.0,  # 1 s of video: truncated, skipped
    "empty": 1.0,  # 0 bytes: skipped
    "gone": 1.0,  # no file: skipped
    "old": 1.0,  # only in an earlier table: removed by the next run
}


def _table(ids=ORDER) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "video_id": list(ids),
            "filename": [f"{v}.mp4" for v in ids],
            "duration": [DURATIONS[v] for v in ids],
        }
    )


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("videos")
    for name in ("a", "b", "c", "d", "e", "old"):
        write_video(folder / f"{name}.mp4", num_frames=round(DURATIONS[name] * 30))
    write_video(folder / "short.mp4", num_frames=30)
    (folder / "empty.mp4").write_bytes(b"")
    bad = write_faststart_video(folder / "bad.mp4", num_frames=150, keyint=30)
    overwrite_with_garbage(bad, at=0.5, size=600)
    return folder


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _single(videos: Path, out: Path, table=None, settings=SETTINGS, workers=1) -> bytes:
    """A single-process run: the store in ``out``, the report's bytes returned."""
    report = decode_dataset(
        _table() if table is None else table, videos, out, settings, workers, progress=False
    )
    write_report(out.parent / f"{out.name}-report.json", settings, report)
    return (out.parent / f"{out.name}-report.json").read_bytes()


@pytest.fixture(scope="module")
def single(videos, tmp_path_factory) -> tuple[dict[str, bytes], bytes]:
    out = tmp_path_factory.mktemp("single") / "frames"
    report = _single(videos, out)
    document = json.loads(report)
    assert document["counts"] == {"stored": 6, "skipped": 3, "damaged": 1}
    assert [s["video_id"] for s in document["skipped"]] == ["short", "gone", "empty"]
    return _snapshot(out), report


def _spec(videos, out, settings=SETTINGS, workers=1, min_readable_fraction=0.5) -> DecodeSpec:
    return DecodeSpec(
        videos,
        out,
        settings,
        workers=workers,
        min_readable_fraction=min_readable_fraction,
        progress=False,
    )


def _shard(videos, out, i, n, table=None, settings=SETTINGS, workers=1):
    table = _table() if table is None else table
    return decode_shard(table, _spec(videos, out, settings, workers), shard=i, num_shards=n)


def _merge(videos, out, n, table=None, settings=SETTINGS):
    report_path = out.parent / f"{out.name}-report.json"
    merge_decode_shards(
        _table() if table is None else table,
        _spec(videos, out, settings),
        num_shards=n,
        rerun="RUN {i}",
        report_path=report_path,
    )
    return report_path.read_bytes()


@pytest.mark.parametrize(("num_shards", "workers"), [(1, 1), (2, 1), (3, 1), (2, 2)])
def test_shards_merge_to_the_single_process_store_and_report(
    videos, single, tmp_path, num_shards, workers
):
    out = tmp_path / "frames"
    decoded = []
    for i in reversed(range(num_shards)):  # any order, any machine
        report, kept = _shard(videos, out, i, num_shards, workers=workers)
        assert kept == []
        decoded += report.decoded
        record = json.loads((shard_dir(out, i, num_shards) / SHARD_FILE).read_text())
        assert record["videos"] == shard_ids(ORDER, i, num_shards)
        assert record["report"]["decoded"] == report.decoded
    assert sorted(decoded) == ["a", "b", "bad", "c", "d", "e"]  # each video decoded once
    assert not (out / "index.json").exists()  # the shards wrote only their own folders
    report = _merge(videos, out, num_shards)
    assert _snapshot(out) == single[0]
    assert report == single[1]
    assert not (out / SHARDS_DIR).exists()


def test_workers_do_not_change_a_single_run_report(videos, single, tmp_path):
    """Workers finish videos in any order; the report lists them in the table's order."""
    out = tmp_path / "frames"
    assert _single(videos, out, workers=3) == single[1]
    assert _snapshot(out) == single[0]


def test_mp4_store_shards_merge_to_the_single_process_store(videos, tmp_path):
    settings = replace(SETTINGS, store="mp4")
    table = _table(["c", "a", "b", "d"])
    report = _single(videos, tmp_path / "single", table, settings)
    out = tmp_path / "sharded"
    for i in range(2):
        _shard(videos, out, i, 2, table, settings)
    assert _merge(videos, out, 2, table, settings) == report
    assert _snapshot(out) == _snapshot(tmp_path / "single")
    assert sorted(_snapshot(out)) == ["a.mp4", "b.mp4", "c.mp4", "d.mp4", "index.json"]


def test_shares_are_disjoint_complete_balanced_and_independent_of_table_order():
    ids = [f"v{i:02d}" for i in range(11)]
    table = pd.DataFrame({"video_id": ids[::-1]})
    shares = [list(shard_videos(table, i, 3)["video_id"]) for i in range(3)]
    assert sorted(v for share in shares for v in share) == ids  # every video once
    assert [len(s) for s in shares] == [4, 4, 3]
    assert shares[0] == ["v09", "v06", "v03", "v00"]  # table order kept within a share
    assert [shard_ids(ids, i, 3) for i in range(3)] == [sorted(s) for s in shares]
    assert shard_ids(ids[::-1], 1, 3) == shard_ids(ids, 1, 3) == ["v01", "v04", "v07", "v10"]


def test_resolve_shard_from_options_torchrun_or_a_slurm_array():
    assert resolve_shard(None, None, env={}) == (0, 1)
    assert resolve_shard(2, 4, env={}) == (2, 4)
    assert resolve_shard(0, 1, env={"RANK": "3", "WORLD_SIZE": "8"}) == (3, 8)
    array = {"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "8"}
    assert resolve_shard(0, 1, env=array) == (5, 8)
    # --array=1-8: tasks 1 .. 8 are shards 0 .. 7
    assert resolve_shard(0, 1, env=array | {"SLURM_ARRAY_TASK_MIN": "1"}) == (4, 8)
    # a SLURM job that is no array, or an array of one: one process
    assert resolve_shard(None, None, env={"SLURM_JOB_ID": "7"}) == (0, 1)
    one = {"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "1"}
    assert resolve_shard(None, None, env=one) == (0, 1)
    # sources that agree
    assert resolve_shard(5, 8, env=array) == (5, 8)
    assert resolve_shard(None, None, env=array | {"RANK": "5", "WORLD_SIZE": "8"}) == (5, 8)


@pytest.mark.parametrize(
    ("shard", "num_shards", "env", "named"),
    [
        (1, 2, {"RANK": "3", "WORLD_SIZE": "8"}, r"shard 1 of 2 from --shard.*RANK=3 WORLD_SIZE=8"),
        (
            1,
            2,
            {"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "8"},
            r"shard 1 of 2 from --shard.* shard 5 of 8 from a SLURM array "
            r"\(SLURM_ARRAY_TASK_ID=5 SLURM_ARRAY_TASK_COUNT=8\)",
        ),
        (
            None,
            None,
            {
                "RANK": "1",
                "WORLD_SIZE": "4",
                "SLURM_ARRAY_TASK_ID": "2",
                "SLURM_ARRAY_TASK_COUNT": "4",
                "SLURM_ARRAY_TASK_MIN": "0",
            },
            r"from torchrun \(RANK=1 WORLD_SIZE=4\).* from a SLURM array \(SLURM_ARRAY_TASK_ID=2 "
            r"SLURM_ARRAY_TASK_COUNT=4 SLURM_ARRAY_TASK_MIN=0\)",
        ),
        # --array=0-6:2 (a step): task 6 of a count of 4 is no shard of 4
        (
            None,
            None,
            {"SLURM_ARRAY_TASK_ID": "6", "SLURM_ARRAY_TASK_COUNT": "4"},
            r"shard 6 \(from a SLURM array .*\) is not in 0\.\.3",
        ),
        (3, None, {}, r"shard 3 requested without a number of shards"),
    ],
)
def test_resolve_shard_refuses_sources_that_disagree(shard, num_shards, env, named):
    with pytest.raises(ShardError, match=named):
        resolve_shard(shard, num_shards, env=env)


def test_decode_params_reject_a_shard_outside_the_split():
    from pydantic import ValidationError

    from tsp_pretrain.config import DecodeParams

    assert DecodeParams().num_shards == 1 and DecodeParams(shard=1, num_shards=2).shard == 1
    with pytest.raises(ValidationError, match=r"decode\.shard 2 must be < num_shards 2"):
        DecodeParams(shard=2, num_shards=2)


def test_a_killed_shard_is_not_merged_and_resumes_without_redoing_its_videos(
    videos, single, tmp_path
):
    out = tmp_path / "frames"
    _shard(videos, out, 1, 2)
    done = run_killed_on_the_third(
        f"""
from tsp_pretrain.video.shards import DecodeSpec, decode_shard
from tsp_pretrain.video.store import StoreSettings
table = pd.DataFrame({_table().to_dict(orient="list")!r})
spec = DecodeSpec({str(videos)!r}, {str(out)!r}, StoreSettings(15, 16, "npy", code="x"),
                  progress=False)
decode_shard(table, spec, shard=0, num_shards=2)
"""
    )
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]
    # shard 0's share in table order: short (skipped), a (decoded), bad (killed while decoding)
    folder = shard_dir(out, 0, 2)
    assert sorted(p.name for p in folder.glob(f"*{PENDING_SUFFIX}")) == [f"a{PENDING_SUFFIX}"]
    assert not (folder / SHARD_FILE).exists()
    with pytest.raises(ShardError, match=r"shard 0-of-2 .* has not finished: run it .*: RUN 0"):
        _merge(videos, out, 2)

    report, _ = _shard(videos, out, 0, 2)
    assert report.reused == ["a"] and report.decoded == ["bad", "d"]  # a not decoded again
    assert _merge(videos, out, 2) == single[1]
    assert _snapshot(out) == single[0]


def test_merge_names_a_missing_or_unfinished_shard_and_how_to_run_it(videos, tmp_path):
    out = tmp_path / "frames"
    with pytest.raises(ShardError, match=r"no shards; run each shard first \(RUN <i>\)"):
        _merge(videos, out, 2)
    _shard(videos, out, 0, 2)
    with pytest.raises(ShardError, match=r"shard 1-of-2 .* has not finished: run it .*: RUN 1"):
        _merge(videos, out, 2)
    _shard(videos, out, 1, 2)
    (shard_dir(out, 1, 2) / SHARD_FILE).unlink()  # as a shard stopped before its end leaves it
    with pytest.raises(ShardError, match=r"shard 1-of-2 .* has not finished: run it .*: RUN 1"):
        _merge(videos, out, 2)
    with pytest.raises(ShardError, match=r"not shards of a 3-way split"):
        _merge(videos, out, 3)
    assert (out / SHARDS_DIR).is_dir() and not (out / "index.json").exists()  # nothing touched


def test_a_shard_run_again_is_unfinished_until_it_ends(videos, tmp_path, monkeypatch):
    """shard.json goes first: a re-run that stops early (here: an error before decoding) never
    leaves the earlier run's record saying the shard finished."""
    out = tmp_path / "frames"
    for i in range(2):
        _shard(videos, out, i, 2)

    def fails(*args, **kwargs):
        raise RuntimeError("stopped")

    monkeypatch.setattr(shards_module, "decode_dataset", fails)
    with pytest.raises(RuntimeError):
        _shard(videos, out, 1, 2)
    with pytest.raises(ShardError, match=r"shard 1-of-2 .* has not finished"):
        _merge(videos, out, 2)


def test_merge_refuses_shards_with_other_settings(videos, tmp_path):
    out = tmp_path / "frames"
    _shard(videos, out, 0, 2)
    _shard(videos, out, 1, 2, settings=replace(SETTINGS, code="other"))
    with pytest.raises(
        ShardError,
        match=r"shard 1-of-2 .* other settings \(code: 'other' \(expected 'x'\)\).*RUN 1",
    ):
        _merge(videos, out, 2)
    decode_shard(_table(), _spec(videos, out, min_readable_fraction=0.9), shard=1, num_shards=2)
    with pytest.raises(ShardError, match=r"shard 1-of-2 .*min_readable_fraction: 0\.9 \(expec"):
        _merge(videos, out, 2)


def test_merge_refuses_shards_of_another_video_list(videos, tmp_path):
    out = tmp_path / "frames"
    for i in range(2):
        _shard(videos, out, i, 2, table=_table([v for v in ORDER if v != "e"]))
    # with "e" the sorted ids split otherwise: shard 0's share is a, bad, d, empty, short now
    with pytest.raises(
        ShardError, match=r"shard 0-of-2 .* lacks 2 of its videos \(empty, short\).*RUN 0"
    ):
        _merge(videos, out, 2)


def test_a_re_merge_after_adding_one_video_decodes_only_that_one(videos, single, tmp_path):
    before = _table([*(v for v in ORDER if v != "e"), "old"])
    # the single-process history to compare with: the earlier table, then the current one
    incremental = tmp_path / "incremental"
    _single(videos, incremental, before)
    expected_report = _single(videos, incremental, _table())
    out = tmp_path / "frames"
    for i in range(2):
        _shard(videos, out, i, 2, table=before)
    _merge(videos, out, 2, table=before)

    decoded, kept = [], []
    for i in range(2):
        report, left = _shard(videos, out, i, 2)
        decoded += report.decoded
        kept += left
    assert decoded == ["e"]
    assert sorted(kept) == ["a", "b", "bad", "c", "d"]
    assert _merge(videos, out, 2) == expected_report
    assert _snapshot(out) == single[0] == _snapshot(incremental)  # "old" removed


def test_a_stopped_merge_is_run_again(videos, single, tmp_path, monkeypatch):
    out = tmp_path / "frames"
    for i in range(2):
        _shard(videos, out, i, 2)
    real, moved = os.replace, []

    def stops_at_the_third_move(src, dst):
        if SHARDS_DIR in Path(src).parts:
            moved.append(src)
            if len(moved) == 3:
                raise KeyboardInterrupt
        real(src, dst)

    monkeypatch.setattr(shards_module.os, "replace", stops_at_the_third_move)
    with pytest.raises(KeyboardInterrupt):
        _merge(videos, out, 2)
    monkeypatch.undo()
    assert len(list(out.glob(f"*{PENDING_SUFFIX}"))) == 2  # the two moved videos, recorded
    assert _merge(videos, out, 2) == single[1]
    assert _snapshot(out) == single[0]


def test_the_stage_shards_by_slurm_array_and_merges(videos, tmp_path):
    """stages/decode.py: a single run, then a SLURM array's shards (as ``sbatch --array=1-2``)
    and the merge, which first names the shard to run and its command."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["frame_rate"] = 15
    params["decode"] |= {"short_side": 16, "frame_size": None, "store": "npy", "workers": 1}
    params["datasets"]["target"]["videos"] = str(videos)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "ann").mkdir()
    _table(["c", "a", "gone", "b"]).to_csv(tmp_path / "ann" / "videos.csv", index=False)

    def stage(out: str, *options: str, **env: str) -> subprocess.CompletedProcess:
        command = [sys.executable, str(ROOT / "stages/decode.py"), "--dataset", "target"]
        command += ["--annotations", "ann", "--out", out, "--report", f"{out}.json", *options]
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SLURM_", "RANK", "WORLD_SIZE"))
        }
        return subprocess.run(command, cwd=tmp_path, env=base | env, capture_output=True, text=True)

    assert stage("single").returncode == 0
    (tmp_path / "single" / SHARDS_DIR / "0-of-2").mkdir(parents=True)  # left by a sharded run
    refused = stage("single")
    assert refused.returncode == 1, refused.stderr[-3000:]
    assert "holds the shards of a sharded decode (0-of-2): merge them" in refused.stderr
    (tmp_path / "single" / SHARDS_DIR / "0-of-2").rmdir()
    (tmp_path / "single" / SHARDS_DIR).rmdir()
    array = {"SLURM_ARRAY_TASK_COUNT": "2", "SLURM_ARRAY_TASK_MIN": "1"}
    assert stage("sharded", **array, SLURM_ARRAY_TASK_ID="1").returncode == 0
    assert not (tmp_path / "sharded.json").exists()  # a shard writes no report
    failed = stage("sharded", "--merge", "--num-shards", "2")
    assert failed.returncode == 1, failed.stderr[-3000:]
    assert "shard 1-of-2" in failed.stderr
    assert "python stages/decode.py --dataset target --annotations ann --out sharded " in (
        failed.stderr
    )
    assert "--num-shards 2 --shard 1" in failed.stderr
    assert stage("sharded", **array, SLURM_ARRAY_TASK_ID="2").returncode == 0
    merged = stage("sharded", "--merge", "--num-shards", "2")
    assert merged.returncode == 0, merged.stderr[-3000:]
    assert _snapshot(tmp_path / "sharded") == _snapshot(tmp_path / "single")
    assert (tmp_path / "sharded.json").read_bytes() == (tmp_path / "single.json").read_bytes()
