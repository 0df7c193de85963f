"""Several processes, one model: PyTorch's own engine (torchrun + DistributedDataParallel).

One process (no torchrun) is the default and runs exactly the single-process code. With
``processes > 1`` the stage script relaunches itself under ``torch.distributed.run`` on this
machine (:func:`launch_workers`); a script already started by ``torchrun`` (``RANK`` and
``WORLD_SIZE`` set) joins that group instead, which is how several machines train together. Each
rank uses ``cuda:LOCAL_RANK`` on CUDA (backend nccl), else the CPU (backend gloo). Rank 0 alone
logs, writes dvclive rows, checkpoints and the encoder; the others never write.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist

from tsp_pretrain.config import ConfigError
from tsp_pretrain.runtime import pick_device

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ranks:
    """This process's place in the group (``world_size == 1``: no group, plain single process)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def under_torchrun() -> bool:
    """Whether a launcher (torchrun, or :func:`launch_workers`) started this process as a rank."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def is_main_process() -> bool:
    """Rank 0, or no group at all: the one process that writes outputs."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return int(os.environ.get("RANK", "0")) == 0


def launch_workers(processes: int, script: str, args: Sequence[str]) -> int | None:
    """Run ``script args`` as ``processes`` ranks on this machine; ``None`` when nothing to do.

    Nothing is launched for one process, nor when this process is already a rank (under
    torchrun): then the caller joins that group. The workers are started by
    ``torch.distributed.run --standalone`` (a rendezvous on a free local port), so the dvc.yaml
    command stays ``python stages/<stage>.py ...``. Returns the launcher's exit status.
    """
    if processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    if processes == 1 or under_torchrun():
        return None
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={processes}",
        script,
        *args,
    ]
    log.info("launching %d processes: %s", processes, " ".join(command))
    return subprocess.run(command, check=False).returncode


def check_gpu_for_rank(local_rank: int, gpus: int) -> None:
    """Fail with the fix when a machine runs more GPU processes than it has GPUs.

    Without this, rank ``local_rank`` would die on CUDA's "invalid device ordinal" (the presets
    ask for the recipe's 2 processes; a machine with one GPU must say so).
    """
    if local_rank >= gpus:
        raise ConfigError(
            f"process {local_rank} of this machine needs GPU {local_rank}, but it has {gpus}: "
            f"set -S train.processes={max(gpus, 1)} (or pretrain.processes; under torchrun "
            "--nproc-per-node) to at most the number of GPUs"
        )


@contextmanager
def process_group(requested_device: str) -> Iterator[tuple[Ranks, torch.device]]:
    """This process's ranks and device; joins (and leaves) the launcher's group if there is one.

    Outside a launcher: ``Ranks()`` and :func:`~tsp_pretrain.runtime.pick_device`. Under
    one: ``cuda:LOCAL_RANK`` when the requested device resolves to CUDA, else the CPU; other
    ranks log warnings only, so that one log tells the run.
    """
    device = pick_device(requested_device)
    if not under_torchrun() or int(os.environ["WORLD_SIZE"]) == 1:
        yield Ranks(), device
        return
    ranks = Ranks(
        int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"])
    )
    if device.type == "cuda":
        check_gpu_for_rank(ranks.local_rank, torch.cuda.device_count())
        device = torch.device("cuda", ranks.local_rank)
        torch.cuda.set_device(device)
    if not ranks.is_main:
        logging.getLogger().setLevel(logging.WARNING)
    created = not dist.is_initialized()
    if created:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield ranks, device
        dist.barrier()
    finally:
        if created:
            dist.destroy_process_group()


def wrap_model(
    model: torch.nn.Module, ranks: Ranks, device: torch.device, *, sync_bn: bool
) -> torch.nn.Module:
    """``model`` itself for one process, else DistributedDataParallel (optionally SyncBatchNorm).

    The model must already be on ``device``; DDP broadcasts rank 0's weights at wrapping.
    """
    if not ranks.distributed:
        return model
    if sync_bn:
        if device.type != "cuda":
            raise ValueError(
                "sync_bn: SyncBatchNorm runs on CUDA only (PyTorch); set sync_bn: false on CPU"
            )
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None
    )


def all_sum(values: Sequence[float], ranks: Ranks, device: torch.device) -> list[float]:
    """Element-wise sums over ranks (float64, so that counts stay exact); identity for one rank."""
    if not ranks.distributed:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def broadcast_object(obj: object, ranks: Ranks) -> object:
    """Rank 0's ``obj`` on every rank (e.g. the checkpoint, which exists on rank 0's machine)."""
    if not ranks.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def broadcast_buffers(model: torch.nn.Module, ranks: Ranks) -> None:
    """Rank 0's buffers (BatchNorm running statistics) on every rank.

    DDP broadcasts them at the start of each forward, so after the last step of an epoch each
    rank holds its own; copying rank 0's makes every rank validate and end with the weights that
    rank 0 checkpoints (and a resumed run start where an uninterrupted one goes on).
    """
    if ranks.distributed:
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)
