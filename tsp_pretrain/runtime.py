"""Where and how the model runs: the device, input workers, mixed precision.

These are choices about the machine, not about the model or the data, and each is made here
once: training, extraction and the benches ask these functions instead of deciding again.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from typing import get_args

import torch

from tsp_pretrain.config import Precision

PRECISIONS: tuple[str, ...] = get_args(Precision)
MAX_INPUT_WORKERS = 8


def pick_device(requested: str = "auto") -> torch.device:
    """``"auto"``: CUDA when available, else CPU; ``"cpu"``; ``"cuda"`` or ``"cuda:N"``.

    Asking for CUDA on a machine without it is an error, not a silent run on the CPU that would
    take hours longer than planned.
    """
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cpu":
        return torch.device("cpu")
    if requested == "cuda" or requested.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"device {requested!r} requested but CUDA is not available on this machine "
                f"(torch {torch.__version__}); use 'auto' or 'cpu'"
            )
        device = torch.device(requested)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise RuntimeError(
                f"device {requested!r} requested but only {torch.cuda.device_count()} CUDA "
                f"device(s) exist"
            )
        return device
    raise ValueError(f"unknown device {requested!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'")


def local_processes(default: int = 1) -> int:
    """Processes of this job on this machine: torchrun's ``LOCAL_WORLD_SIZE``, else ``default``."""
    return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", default)))


def usable_cpus() -> int:
    """Cores this process may run on (its affinity, which a scheduler such as SLURM narrows)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def input_workers(
    requested: int | str, device: torch.device, processes: int = 1, cpus: int | None = None
) -> int:
    """DataLoader worker processes for a ``workers`` param: ``auto`` follows the machine.

    On the CPU 0: workers would compete with the model for the cores (they made training
    0.75-0.80x slower on 2 cores), so clips are read in the main process. On CUDA the input side
    decides the speed: one worker per core of this process's share of the machine (``processes``
    on it, or torchrun's ``LOCAL_WORLD_SIZE``), less one for the process itself, at least 1 and
    at most :data:`MAX_INPUT_WORKERS`.
    """
    if requested != "auto":
        return int(requested)
    if device.type != "cuda":
        return 0
    share = (usable_cpus() if cpus is None else cpus) // local_processes(processes)
    return max(1, min(MAX_INPUT_WORKERS, share - 1))


def amp_enabled(amp: bool, device: torch.device) -> bool:
    """Mixed precision (float16 autocast + gradient scaling) runs on CUDA only.

    On the CPU float16 autocast is slow and changes results, so ``amp: true`` (the default, for
    GPUs) leaves CPU runs in float32, bit for bit as without it.
    """
    return amp and device.type == "cuda"


def autocast(device: torch.device, amp: bool) -> AbstractContextManager:
    """The training forward pass's autocast context (see :func:`amp_enabled`)."""
    return torch.autocast(device.type, dtype=torch.float16, enabled=amp_enabled(amp, device))


def compute_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The autocast dtype of extraction: ``auto`` is float16 on CUDA and float32 elsewhere.

    float32 runs without autocast (the CPU default: its features are bit-identical to earlier
    versions). float16 / bfloat16 are CUDA options (bfloat16 also works on recent CPUs, slowly).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"extract.dtype must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    return getattr(torch, precision)


def shard_device(requested: str, shard: int, num_shards: int) -> torch.device:
    """The device of one shard of a sharded run (extraction: one process per GPU).

    With several shards on CUDA and no GPU index given, GPU ``LOCAL_RANK`` (torchrun) or
    ``shard`` modulo the GPUs of the machine, so that the shards of one machine share its GPUs
    instead of all running on GPU 0; otherwise :func:`pick_device`.
    """
    device = pick_device(requested)
    if device.type == "cuda" and num_shards > 1 and device.index is None:
        local = int(os.environ.get("LOCAL_RANK", shard))
        device = pick_device(f"cuda:{local % torch.cuda.device_count()}")
    return device
