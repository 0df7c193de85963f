"""The recipe's learning-rate schedule, applied per iteration.

Linear warm-up from ``warmup_factor`` over ``warmup_epochs``, then the rate is multiplied by
``gamma`` at each milestone epoch. Built from torch's own schedulers so that its state goes into
checkpoints like any other.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.optim.lr_scheduler import LinearLR, LRScheduler, MultiStepLR, SequentialLR


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    *,
    iters_per_epoch: int,
    warmup_epochs: float,
    warmup_factor: float,
    milestones: Sequence[int],
    gamma: float,
) -> LRScheduler:
    """Warm-up + multi-step decay, stepped once per iteration."""
    warmup_iters = round(warmup_epochs * iters_per_epoch)
    decay = MultiStepLR(
        optimizer,
        milestones=[max(m * iters_per_epoch - warmup_iters, 0) for m in milestones],
        gamma=gamma,
    )
    if warmup_iters == 0:
        return decay
    warmup = LinearLR(
        optimizer, start_factor=warmup_factor, end_factor=1.0, total_iters=warmup_iters
    )
    return SequentialLR(optimizer, [warmup, decay], milestones=[warmup_iters])
