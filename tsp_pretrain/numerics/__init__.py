"""The CPU numerics contract: one code path per kernel, so any x86-64 CPU gives the same bytes.

Why this exists. torch's CPU build chooses its kernels when it first computes, from the processor
it finds: ATen's vectorised loops by ISA (AVX2 or AVX-512), oneDNN's convolutions by ISA, MKL's
matrix products by vendor and ISA; numpy and OpenBLAS (under scikit-learn's probes) do the same,
and every reduction is split by the number of threads. Each choice changes the order of
floating-point sums, so the same code, data and params gave another trained encoder on an AMD
AVX-512 machine than on an Intel one: the first epoch's loss moved in the 3rd digit and every
metric downstream moved as much as the TSP-TAC difference docs/results.md reports.

:data:`SETTINGS` pins each library to one code path that every x86-64 CPU since 2013 (Intel
Haswell) and 2015 (AMD Excavator) has, AVX2 with FMA, and fixes the thread counts:

- ``ATEN_CPU_CAPABILITY=avx2``: ATen's AVX2 kernels, also on AVX-512 machines.
- ``ONEDNN_MAX_CPU_ISA=AVX2``: oneDNN's (convolutions) AVX2 JIT kernels at most.
- ``MKL_CBWR=COMPATIBLE``: MKL's conditional numerical reproducibility branch, the only one that
  MKL documents as giving the same results on Intel and non-Intel processors (its ``AVX2``
  branch falls back to automatic dispatch on AMD). ``MKL_DYNAMIC=FALSE``: MKL may not lower its
  thread count by its own judgement of the machine.
- ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` = :data:`THREADS`: oneDNN and ATen split reductions
  per thread, so the count is part of the result. 2 is the project's machines' core count.
- ``NPY_DISABLE_CPU_FEATURES``: numpy's own AVX-512 loops off (their exp/log are other
  implementations than the AVX2 ones).
- ``OPENBLAS_CORETYPE=Haswell``, ``OPENBLAS_NUM_THREADS=1``: numpy/scipy's OpenBLAS kernels.

The libraries read these variables when they first compute (numpy: when imported), not when
torch is imported, so :func:`pin` runs first in every process that computes results: every
stage (``stages/_checkout.py``), the commands that compute metrics (``python -m
tsp_pretrain.experiments``, ``tsp_pretrain.localization.score``: they re-execute themselves once
when their package imported numpy before they could pin) and the tests (``tests/conftest.py``).
What it costs and how it was shown to hold: ``docs/reproducibility.md``. On a CPU without AVX2
and FMA (or not x86-64) the contract cannot hold: :func:`pin` then keeps the library defaults for
the ISA, says so in a warning, and the run's record (:func:`describe`) shows it.

This module imports neither torch nor numpy at the top: it must run before them.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

THREADS = 2

# ISA pins: only set where the CPU has AVX2 and FMA (see :func:`cpu_supports_contract`).
ISA_SETTINGS: dict[str, str] = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_CBWR": "COMPATIBLE",
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
    "OPENBLAS_CORETYPE": "Haswell",
}
THREAD_SETTINGS: dict[str, str] = {
    "OMP_NUM_THREADS": str(THREADS),
    "MKL_NUM_THREADS": str(THREADS),
    "MKL_DYNAMIC": "FALSE",
    "OMP_DYNAMIC": "FALSE",
    "OPENBLAS_NUM_THREADS": "1",
}
SETTINGS: dict[str, str] = {**ISA_SETTINGS, **THREAD_SETTINGS}

# What torch reports when the ISA pin is in effect.
ATEN_CAPABILITY = "AVX2"
# Set in the environment of a process that re-executed itself to pin (guards against a loop).
REEXEC_MARKER = "TSP_NUMERICS_REEXEC"
# Where each stage's run record goes (gitignored: it names the machine, which may differ).
RUN_RECORDS = Path("data/machines")
DOC = "docs/reproducibility.md"


class NumericsError(RuntimeError):
    """The contract could not be put in effect in this process; the message says why and how."""


def cpu_flags() -> set[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (Linux); empty where it cannot be read."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def cpu_supports_contract(flags: set[str] | None = None) -> bool:
    """Whether this is an x86-64 CPU with AVX2 and FMA, the code path the contract pins."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    flags = cpu_flags() if flags is None else flags
    return {"avx2", "fma"} <= flags


def wanted_environment(supported: bool | None = None) -> dict[str, str]:
    """The variables :func:`pin` sets: all of :data:`SETTINGS`, or only the thread counts on a
    CPU outside the contract (forcing AVX2 kernels there would crash OpenBLAS)."""
    supported = cpu_supports_contract() if supported is None else supported
    return dict(SETTINGS) if supported else dict(THREAD_SETTINGS)


def _frozen_libraries() -> list[str]:
    """Libraries already imported whose settings may be fixed by now."""
    return [name for name in ("numpy", "torch") if name in sys.modules]


def pin(reexec: bool = False) -> None:
    """Put the contract in effect in this process; a no-op when it already is.

    Call it before numpy and torch are imported (stages do, through ``stages/_checkout.py``).
    When they already are and the environment differs, ``reexec=True`` restarts the process
    with the same arguments and the pinned environment (for ``python -m`` commands whose
    package imports numpy first); otherwise that is an error, not a silently unpinned run.
    """
    supported = cpu_supports_contract()
    wanted = wanted_environment(supported)
    changed = {k: v for k, v in wanted.items() if os.environ.get(k) != v}
    if not supported:
        log.warning(
            "this CPU (%s) has no AVX2+FMA or is not x86-64: results will not match the "
            "committed ones (%s)",
            machine().get("model", platform.machine()),
            DOC,
        )
    if changed:
        frozen = _frozen_libraries()
        os.environ.update(changed)
        if frozen:
            if reexec and os.environ.get(REEXEC_MARKER) != "1" and getattr(sys, "orig_argv", None):
                os.environ[REEXEC_MARKER] = "1"
                sys.stdout.flush()
                sys.stderr.flush()
                os.execv(sys.executable, list(sys.orig_argv))
            raise NumericsError(
                f"{', '.join(frozen)} was imported before the CPU numerics were pinned, so "
                f"{', '.join(sorted(changed))} cannot take effect in this process; call "
                f"tsp_pretrain.numerics.pin() before importing them, or start the process with "
                f"these variables set ({DOC})"
            )
    if "torch" in sys.modules:
        _pin_torch(supported)


def _pin_torch(supported: bool) -> None:
    """Thread count in an already-imported torch, and a check that ATen took the AVX2 kernels."""
    import torch

    if torch.get_num_threads() != THREADS:
        torch.set_num_threads(THREADS)
    if supported and torch.backends.cpu.get_cpu_capability() != ATEN_CAPABILITY:
        raise NumericsError(
            f"torch runs its {torch.backends.cpu.get_cpu_capability()} kernels although "
            f"ATEN_CPU_CAPABILITY={os.environ.get('ATEN_CPU_CAPABILITY')}: it computed before "
            f"tsp_pretrain.numerics.pin() ran; call pin() first ({DOC})"
        )


def machine() -> dict[str, Any]:
    """This machine, as far as it bears on numerics: CPU vendor, model, ISA level, CPU count."""
    flags = cpu_flags()
    info: dict[str, Any] = {"arch": platform.machine()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "vendor_id" and "vendor" not in info:
                info["vendor"] = value.strip()
            elif key == "model name" and "model" not in info:
                info["model"] = value.strip()
    except OSError:
        info["model"] = platform.processor() or "unknown"
    info["isa"] = (
        "AVX512" if "avx512f" in flags else "AVX2" if {"avx2", "fma"} <= flags else "below AVX2"
    )
    info["logical_cpus"] = os.cpu_count()
    return info


def _torch_part() -> dict[str, Any]:
    import torch

    config = torch.__config__.show()

    def version_after(marker: str) -> str | None:
        for line in config.splitlines():
            if marker in line:
                return line.split(marker, 1)[1].split()[0].lstrip("v")
        return None

    return {
        "torch": torch.__version__,
        "mkl": version_after("Math Kernel Library Version"),
        "onednn": version_after("MKL-DNN"),
        "aten_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": torch.get_num_threads(),
    }


def _numpy_part() -> dict[str, Any]:
    import numpy as np
    from numpy._core import _multiarray_umath as umath

    found = [f for f in umath.__cpu_dispatch__ if umath.__cpu_features__.get(f)]
    part: dict[str, Any] = {"numpy": np.__version__, "numpy_dispatch": found}
    try:
        from threadpoolctl import threadpool_info

        blas = [i for i in threadpool_info() if i.get("internal_api") == "openblas"]
        part["openblas"] = sorted(
            {f"{i['version']} {i.get('architecture')} x{i['num_threads']}" for i in blas}
        )
    except ImportError:  # threadpoolctl comes with scikit-learn; a bare numpy has none
        pass
    return part


def describe() -> dict[str, Any]:
    """What this process computes with: the contract, the kernels in effect, library versions,
    and the machine. Reports torch and numpy only when the process imported them."""
    effective: dict[str, Any] = {"python": platform.python_version()}
    if "torch" in sys.modules:
        effective.update(_torch_part())
    if "numpy" in sys.modules:
        effective.update(_numpy_part())
    if "av" in sys.modules:
        import av

        effective["av"] = av.__version__
    supported = cpu_supports_contract()
    return {
        "contract": {"settings": wanted_environment(supported), "threads": THREADS},
        "contract_holds": supported and _in_effect(effective),
        "effective": effective,
        "machine": machine(),
    }


def _in_effect(effective: dict[str, Any]) -> bool:
    """Whether the environment holds the settings and torch (if loaded) took the AVX2 kernels."""
    env_ok = all(os.environ.get(k) == v for k, v in SETTINGS.items())
    torch_ok = effective.get("aten_capability", ATEN_CAPABILITY) == ATEN_CAPABILITY and (
        effective.get("torch_threads", THREADS) == THREADS
    )
    return env_ok and torch_ok


def write_run_record(stage: str, root: Path = Path(".")) -> Path:
    """Write :func:`describe` for ``stage`` to ``data/machines/<stage>.json`` under ``root``.

    Not a DVC output and gitignored: it names the machine, which differs between machines whose
    outputs are the same bytes. ``python -m tsp_pretrain.numerics record`` gathers these files
    into the committed ``metrics/machine.json``.
    """
    from tsp_pretrain.atomic import write_json

    path = root / RUN_RECORDS / f"{stage}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, {"stage": stage, **describe()})
    return path


def gather_records(folder: Path) -> dict[str, Any]:
    """One record of the machine behind a run of the pipeline, from its stages' run records.

    Fails when a record is missing or the stages ran on different machines or kernels: the
    committed record must describe the committed results, all of them.
    """
    paths = sorted(folder.glob("*.json"))
    if not paths:
        raise NumericsError(f"no run records in {folder}: run `dvc repro` first")
    records = [json.loads(p.read_text()) for p in paths]
    first = records[0]
    for rec in records[1:]:
        if rec["machine"] != first["machine"] or rec["contract"] != first["contract"]:
            raise NumericsError(
                f"stages {first['stage']} and {rec['stage']} ran on different machines or "
                f"contracts: re-run the pipeline on one machine before recording it"
            )
    effective: dict[str, Any] = {}
    for rec in records:
        effective.update(rec["effective"])
    return {
        "machine": first["machine"],
        "contract": first["contract"],
        "contract_holds": all(rec["contract_holds"] for rec in records),
        "effective": effective,
        "stages": [rec["stage"] for rec in records],
    }


def compare_with(committed: dict[str, Any], here: dict[str, Any]) -> list[str]:
    """Why results made here could differ from the committed ones: one line per difference in
    the contract or the kernels and versions in effect (the machine itself may differ)."""
    problems = []
    if committed["contract"] != here["contract"]:
        problems.append(f"contract: committed {committed['contract']}, here {here['contract']}")
    if not here["contract_holds"]:
        problems.append("the contract does not hold here (no AVX2+FMA, or settings overridden)")
    for key, value in committed["effective"].items():
        mine = here["effective"].get(key)
        if isinstance(value, list) and isinstance(mine, list):
            # libraries loaded: the committed ones must be here (a command may load more)
            differs = not set(value) <= set(mine)
        else:
            differs = key in here["effective"] and mine != value
        if differs:
            problems.append(f"{key}: committed {value}, here {mine}")
    return problems


# What `python -m tsp_pretrain.numerics record` writes after `dvc repro` (committed).
COMMITTED_RECORD = Path("metrics/machine.json")
