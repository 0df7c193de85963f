"""The demo dataset is byte-identical across runs, processes, worker counts and CPU load.

The committed dvc.lock records the hash of `data/demo`; every metric downstream depends on those
bytes. x264 once made them depend on what a process had encoded before (macroblock-tree rate
control; see tsp_pretrain/video/encode.py), so a fresh clone got other videos and other metrics.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cpu_load import busy_cpu
from test_demo import TINY

from tsp_pretrain.config import DemoParams
from tsp_pretrain.demo import make_demo_dataset

ROOT = Path(__file__).resolve().parents[1]


def _file_md5s(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _generate(params: dict, out: Path, workers: int) -> subprocess.Popen:
    """Generate a demo in a separate Python process (its own x264 state and memory)."""
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from tsp_pretrain.config import DemoParams\n"
        "from tsp_pretrain.demo import make_demo_dataset\n"
        "make_demo_dataset(DemoParams(**json.loads(sys.argv[1])), Path(sys.argv[2]),\n"
        "                  progress=False, workers=int(sys.argv[3]))\n"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, json.dumps(params), str(out), str(workers)],
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_processes_on_a_busy_cpu_write_identical_bytes(tmp_path):
    """One process encodes every video in order, the other spreads them over 2 workers, while
    spinning processes keep every core busy: each video is encoded after different others, on
    different schedules, and every file must still be byte-identical."""
    with busy_cpu():
        runs = [_generate(TINY, tmp_path / f"run{w}", w) for w in (1, 2)]
        errors = [run.communicate()[1] for run in runs]
    assert all(run.returncode == 0 for run in runs), errors
    first, second = (_file_md5s(tmp_path / f"run{w}") for w in (1, 2))
    assert len(first) == 4 + 3 + 2 * 5 + 3
    differing = sorted(name for name in first if first[name] != second.get(name))
    assert first.keys() == second.keys() and not differing, differing


def test_one_process_writes_the_same_bytes_again(tmp_path):
    """Encoding the same videos again in the same process (x264 reuses freed memory) and in
    another order (2 workers) gives the same bytes."""
    make_demo_dataset(DemoParams(**TINY), tmp_path / "a", progress=False)
    make_demo_dataset(DemoParams(**TINY), tmp_path / "b", progress=False, workers=2)
    assert _file_md5s(tmp_path / "a") == _file_md5s(tmp_path / "b")


def _dvc_folder_hash(folder: Path) -> tuple[str, int, int]:
    """(md5 ending in .dir, size, nfiles) of a folder, computed by DVC's own tree hashing."""
    from dvc_data.hashfile.hash_info import HashInfo
    from dvc_data.hashfile.meta import Meta
    from dvc_data.hashfile.tree import Tree

    tree, size = Tree(), 0
    for rel, md5 in _file_md5s(folder).items():
        file_size = (folder / rel).stat().st_size
        tree.add(tuple(rel.split("/")), Meta(size=file_size), HashInfo("md5", md5))
        size += file_size
    tree.digest()
    return tree.hash_info.value, size, len(tree)


@pytest.mark.integration
def test_default_demo_has_the_hashes_committed_in_dvc_lock(tmp_path):
    """Generating the demo of the committed params.yaml gives exactly the `data/demo` that the
    committed dvc.lock records: the committed metrics are reproducible from a fresh clone."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())["demo"]
    assert params["runs"] == {"synthetic": "data/demo"}
    stage = yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"]["demo@synthetic"]
    (committed,) = [o for o in stage["outs"] if o["path"] == "data/demo"]
    assert stage["params"]["params.yaml"]["demo"] == params, (
        "params.yaml's demo section differs from dvc.lock's: run `dvc repro` and commit dvc.lock"
    )
    with busy_cpu(1):
        make_demo_dataset(DemoParams(**params), tmp_path / "demo", progress=False, workers=2)
    md5, size, nfiles = _dvc_folder_hash(tmp_path / "demo")
    assert (md5, size, nfiles) == (committed["md5"], committed["size"], committed["nfiles"])
