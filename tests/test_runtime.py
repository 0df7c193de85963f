"""The machine choices of tsp_pretrain.runtime: device, input workers, mixed precision."""

import os

import pytest
import torch

from tsp_pretrain.runtime import (
    PRECISIONS,
    amp_enabled,
    autocast,
    compute_dtype,
    input_workers,
    pick_device,
)

CPU, CUDA = torch.device("cpu"), torch.device("cuda", 0)


def test_pick_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device() == CPU
    assert pick_device("cpu") == CPU
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        pick_device("cuda")
    with pytest.raises(ValueError, match="unknown device"):
        pick_device("gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert pick_device("auto") == torch.device("cuda")
    with pytest.raises(RuntimeError, match="only 1 CUDA"):
        pick_device("cuda:1")


def test_input_workers_follow_the_machine(monkeypatch):
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert input_workers("auto", CPU, cpus=64) == 0  # the model needs the cores
    assert input_workers(3, CPU) == 3 and input_workers("2", CUDA) == 2  # a number is kept
    assert input_workers("auto", CUDA, cpus=64) == 8  # capped
    assert input_workers("auto", CUDA, cpus=6) == 5  # one core left to the process
    assert input_workers("auto", CUDA, cpus=2) == 1  # a GPU always gets one reader
    assert input_workers("auto", CUDA, processes=4, cpus=16) == 3  # this process's share
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")  # torchrun's count wins over the default
    assert input_workers("auto", CUDA, processes=1, cpus=64) == 7
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: set(range(16)))
    assert input_workers("auto", CUDA) == 1


def test_mixed_precision_runs_on_cuda_only():
    assert amp_enabled(True, CUDA) and not amp_enabled(True, CPU) and not amp_enabled(False, CUDA)
    with autocast(CPU, amp=True):  # a no-op on the CPU: float32 stays float32
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
    assert compute_dtype("auto", CPU) == torch.float32
    assert compute_dtype("auto", CUDA) == torch.float16
    assert compute_dtype("bfloat16", CUDA) == torch.bfloat16
    assert set(PRECISIONS) == {"auto", "float32", "float16", "bfloat16"}
    with pytest.raises(ValueError, match=r"extract\.dtype must be one of"):
        compute_dtype("float8", CUDA)
