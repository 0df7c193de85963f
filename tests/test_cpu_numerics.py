"""The CPU numerics contract: training, extraction and a probe give the same bytes on any x86-64.

Each "machine" below is emulated in a fresh process by what distinguishes real machines to the
libraries: the ISA their kernels dispatch to (an AVX2-only CPU: ATen, oneDNN, MKL, numpy and
OpenBLAS capped at AVX2), and the cores a process may use (``taskset``: torch's default thread
count follows them). Without the
contract these runs give different weights; with it (``--pin``, as every stage runs) the same
bytes, equal to :data:`EXPECTED`, which was computed on an AMD EPYC with AVX-512 and on an Intel
Haswell emulated by ``qemu-x86_64`` (vendor, ISA and cache sizes all differ): a machine whose
kernels differ fails here. ``docs/reproducibility.md`` has the measurements.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cpu_load import busy_cpu
from videos import write_tiny_store

from tsp_pretrain import numerics

ROOT = Path(__file__).resolve().parents[1]
WORKLOAD = ROOT / "tests" / "numerics_workload.py"

AVX2_CPU = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
    "OPENBLAS_CORETYPE": "Haswell",
}
ONE_CORE = ["taskset", "-c", "0"]  # torch's default thread count follows the cores it may use
MACHINES = {  # name: (environment, command prefix)
    "this CPU": ({}, []),
    "an AVX2 CPU": (AVX2_CPU, []),
    "a 1-core machine": ({}, ONE_CORE),
    "a 1-core AVX2 machine": (AVX2_CPU, ONE_CORE),
}
# The pinned run's digests (weights, features, probe) on every x86-64 machine with AVX2 + FMA.
# They change only with the workload's code path (training loop, model, extraction, probe):
# then recompute them with `python tests/numerics_workload.py STORE --pin` and check them on a
# second CPU (qemu-x86_64 -cpu Haswell-noTSX, as test_pinned_bytes_on_an_emulated_intel_cpu).
EXPECTED = {
    "weights": "09969dc1002e86ded85dbab7f8752c530900022f8e2e93c579af1dd8ac826308",
    "features": "22426b6701b9c0dd681d8a9554b3c3e35ee5feef3b01f6ee4beb463ed294d9ab",
    "probe": "90df07c5a18f9eee4d4edbff6cedf0a2a2f483268466633bd67f1fbb8fa6e079",
}
DIGESTS = tuple(EXPECTED)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return write_tiny_store(tmp_path_factory.mktemp("numerics"))


def _clean_env(extra: dict[str, str]) -> dict[str, str]:
    """The test process's environment without any numerics setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in numerics.SETTINGS}
    env.pop("MKL_ENABLE_INSTRUCTIONS", None)
    env.pop(numerics.REEXEC_MARKER, None)
    return {**env, **extra}


def _run(store: Path, machine: dict[str, str], pin: bool, prefix: list[str] | None = None) -> dict:
    cmd = [*(prefix or []), sys.executable, str(WORKLOAD), str(store)] + (["--pin"] if pin else [])
    out = subprocess.run(
        cmd, env=_clean_env(machine), capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _digests(result: dict) -> tuple[str, ...]:
    return tuple(result[k] for k in DIGESTS)


pytestmark = pytest.mark.skipif(
    not numerics.cpu_supports_contract(), reason="the contract needs an x86-64 CPU with AVX2+FMA"
)


def test_without_the_contract_the_bytes_depend_on_the_machine(store):
    results = {name: _run(store, env, False, prefix) for name, (env, prefix) in MACHINES.items()}
    weights = {name: r["weights"] for name, r in results.items()}
    # the thread count alone changes the weights, whatever the CPU
    assert results["a 1-core machine"]["threads"] == 1
    assert weights["a 1-core machine"] != weights["this CPU"], weights


def test_with_the_contract_every_machine_gives_the_committed_bytes(store):
    results = {name: _run(store, env, True, prefix) for name, (env, prefix) in MACHINES.items()}
    for name, result in results.items():
        assert result["aten"] == numerics.ATEN_CAPABILITY and result["threads"] == numerics.THREADS
        assert dict(zip(DIGESTS, _digests(result), strict=True)) == EXPECTED, name


def test_with_the_contract_the_bytes_do_not_depend_on_load(store):
    """Production thread settings, three runs, more busy processes than cores."""
    with busy_cpu(processes=(os.cpu_count() or 2) + 1):
        runs = [_digests(_run(store, {}, pin=True)) for _ in range(3)]
    assert runs == [tuple(EXPECTED.values())] * 3


@pytest.mark.skipif(
    shutil.which("qemu-x86_64") is None,
    reason="qemu-x86_64 not installed (apt-get install qemu-user; .ci/run installs it): the "
    "emulated Intel CPU is not checked",
)
def test_pinned_bytes_on_an_emulated_intel_cpu(store):
    """GenuineIntel Haswell (AVX2, no AVX-512, other cache sizes) under qemu's emulation."""
    site = [p for p in sys.path if p.endswith("site-packages")]
    env = {"PYTHONPATH": os.pathsep.join(site)}
    result = _run(store, env, pin=True, prefix=["qemu-x86_64", "-cpu", "Haswell-noTSX"])
    assert dict(zip(DIGESTS, _digests(result), strict=True)) == EXPECTED


def test_pin_refuses_to_run_unpinned_after_numpy_was_imported(tmp_path):
    code = "import numpy; from tsp_pretrain.numerics import pin; pin()"
    out = subprocess.run(
        [sys.executable, "-c", code], env=_clean_env({}), capture_output=True, text=True,
        cwd=ROOT, check=False,
    )  # fmt: skip
    assert out.returncode != 0
    assert "numpy was imported before the CPU numerics were pinned" in out.stderr


def test_commands_re_execute_themselves_pinned():
    """A command whose process loaded numpy before it could pin starts again, pinned."""
    env = _clean_env({"OMP_NUM_THREADS": "3", "NPY_DISABLE_CPU_FEATURES": ""})
    code = (
        "import numpy, runpy, sys; sys.argv[1:] = ['show'];"
        "runpy.run_module('tsp_pretrain.numerics', run_name='__main__')"
    )
    module = [sys.executable, "-m", "tsp_pretrain.numerics", "show"]
    for cmd in ([sys.executable, "-c", code], module):
        shown = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT, check=True)
        record = json.loads(shown.stdout)
        assert record["contract_holds"], cmd
        assert record["effective"]["torch_threads"] == numerics.THREADS
        assert record["effective"]["aten_capability"] == numerics.ATEN_CAPABILITY
        assert "X86_V4" not in record["effective"]["numpy_dispatch"]


def test_a_cpu_outside_the_contract_keeps_only_the_thread_settings():
    assert numerics.wanted_environment(supported=False) == numerics.THREAD_SETTINGS
    assert numerics.wanted_environment(supported=True) == numerics.SETTINGS
    assert not numerics.cpu_supports_contract({"sse4_2", "avx"})


def test_records_of_one_run_are_gathered_and_compared(tmp_path):
    here = {"stage": "train", **numerics.describe()}
    (tmp_path / "train.json").write_text(json.dumps(here))
    (tmp_path / "extract@trained.json").write_text(json.dumps({**here, "stage": "extract"}))
    gathered = numerics.gather_records(tmp_path)
    assert sorted(gathered["stages"]) == ["extract", "train"]
    assert numerics.compare_with(gathered, numerics.describe()) == []
    other = {**gathered, "effective": {**gathered["effective"], "python": "3.0.0"}}
    assert any("python" in line for line in numerics.compare_with(other, numerics.describe()))
    moved = {**here, "stage": "evaluate", "machine": {**here["machine"], "model": "other"}}
    (tmp_path / "evaluate.json").write_text(json.dumps(moved))
    with pytest.raises(numerics.NumericsError, match="different machines"):
        numerics.gather_records(tmp_path)


def test_the_committed_record_is_of_this_contract():
    committed = json.loads((ROOT / numerics.COMMITTED_RECORD).read_text())
    assert committed["contract"]["settings"] == numerics.SETTINGS
    assert committed["contract"]["threads"] == numerics.THREADS
    assert committed["contract_holds"]


def test_every_stage_records_its_machine(tmp_path, monkeypatch):
    from tsp_pretrain.cli import run_stage

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DVC_STAGE", "extract@initial")
    run_stage(lambda: None)
    record = json.loads((tmp_path / "data/machines/extract@initial.json").read_text())
    assert record["stage"] == "extract@initial"
    assert record["machine"]["isa"] in ("AVX2", "AVX512")
    assert set(record["contract"]["settings"]) == set(numerics.SETTINGS)
