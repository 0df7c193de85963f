"""Choosing the torch device from a params string."""

from __future__ import annotations

import torch


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
