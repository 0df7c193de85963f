"""The one atomic-write helper: whole files or none, no litter, and the same bytes every run."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tsp_pretrain.atomic import (
    atomic_open,
    atomic_path,
    is_partial,
    partial_path,
    remove_partial_files,
    write_csv,
    write_json,
)


def test_a_failing_writer_leaves_the_old_file_and_no_partial_file(tmp_path):
    path = tmp_path / "index.json"
    write_json(path, {"version": 1})
    with pytest.raises(RuntimeError), atomic_open(path) as f:
        f.write('{"version": 2, "half')
        raise RuntimeError("disk full")
    assert path.read_text() == '{\n  "version": 1\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.json"]


def test_keyboard_interrupt_is_cleaned_up_too(tmp_path):
    with pytest.raises(KeyboardInterrupt), atomic_path(tmp_path / "x.npy") as tmp:
        np.save(tmp, np.zeros(3))
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_the_temporary_name_keeps_the_suffix_and_the_folder(tmp_path):
    with atomic_path(tmp_path / "sub" / "v_abc.npy") as tmp:
        assert tmp.parent == tmp_path / "sub" and tmp.suffix == ".npy" and is_partial(tmp)
        np.save(tmp, np.arange(4))  # np.save would append .npy to another suffix
    assert np.array_equal(np.load(tmp_path / "sub" / "v_abc.npy"), np.arange(4))
    assert not is_partial(tmp_path / "sub" / "v_abc.npy")


def test_csv_and_json_helpers(tmp_path):
    write_csv(tmp_path / "t.csv", pd.DataFrame({"a": [1.23456]}), float_format="%.2f")
    assert (tmp_path / "t.csv").read_text() == "a\n1.23\n"
    write_json(tmp_path / "d.json", {"b": 1, "a": [1, 2]}, indent=None)
    assert (tmp_path / "d.json").read_text() == '{"a": [1, 2], "b": 1}\n'


def test_remove_partial_files_finds_them_in_subfolders_only(tmp_path):
    keep = [tmp_path / "index.json", tmp_path / "a" / "v_1.npy"]
    stale = [partial_path(tmp_path / "a" / "v_2.npy"), partial_path(tmp_path / "checkpoint.pt")]
    for path in keep + stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    assert sorted(remove_partial_files(tmp_path)) == sorted(stale)
    assert all(p.is_file() for p in keep) and not any(p.exists() for p in stale)
    assert remove_partial_files(tmp_path / "missing") == []


def test_checkpoints_saved_by_two_processes_have_the_same_bytes(tmp_path):
    """torch.save names its zip archive after the file it writes: a temporary name with a process
    id in it made every checkpoint's bytes (and dvc.lock's hashes) change from run to run."""
    code = (
        "import sys, torch\n"
        "from tsp_pretrain.training.checkpoint import save_atomic\n"
        "save_atomic({'w': torch.arange(6.0)}, sys.argv[1])\n"
    )
    digests = []
    for name in ("a", "b"):
        path = tmp_path / name / "encoder.pt"
        subprocess.run([sys.executable, "-c", code, str(path)], check=True)
        digests.append(hashlib.md5(Path(path).read_bytes()).hexdigest())
    assert digests[0] == digests[1]
