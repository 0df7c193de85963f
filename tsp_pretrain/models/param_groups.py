"""Optimiser parameter groups by name prefix: stem, rest of the backbone, heads.

The TSP recipe trains the three parts at different rates (stem frozen, backbone 1e-4, heads
2e-3). Groups are assigned from parameter names, so every backbone in the registry works the
same way, and a parameter that fits no group is an error rather than silently left out.

A frozen stem (``lr_stem == 0``) keeps its group, with lr 0, so that the optimiser's state has
the same shape whatever the learning rates (checkpoints resume across settings), and its
parameters get ``requires_grad = False``, so autograd skips the stem's weight gradients and
weight decay cannot move them. The stem's BatchNorm running statistics still update in train
mode (as in the official code); put those modules in eval mode to freeze them too.
"""

from __future__ import annotations

import logging

from tsp_pretrain.models.tsp import TSPModel

log = logging.getLogger(__name__)

GROUP_NAMES = ("stem", "backbone", "heads")


def param_groups(
    model: TSPModel,
    lr_stem: float,
    lr_backbone: float,
    lr_heads: float,
    weight_decay: float,
) -> list[dict]:
    """Three groups, each ``{"name", "params", "lr", "weight_decay"}``, covering every parameter.

    Side effect: stem parameters get ``requires_grad = (lr_stem > 0)``.
    """
    for name, lr in (("stem", lr_stem), ("backbone", lr_backbone), ("heads", lr_heads)):
        if lr < 0:
            raise ValueError(f"lr_{name} must be >= 0, got {lr}")
    stem = tuple(f"backbone.{p}" for p in model.stem_prefixes)
    params: dict[str, list] = {name: [] for name in GROUP_NAMES}
    for name, p in model.named_parameters():
        if name.startswith(stem):
            params["stem"].append(p)
            p.requires_grad_(lr_stem > 0)
        elif name.startswith("backbone."):
            params["backbone"].append(p)
        elif name.startswith("heads."):
            params["heads"].append(p)
        else:
            raise ValueError(f"parameter {name!r} is neither in backbone.* nor heads.*")
    lrs = {"stem": lr_stem, "backbone": lr_backbone, "heads": lr_heads}
    groups = [
        {"name": name, "params": params[name], "lr": lrs[name], "weight_decay": weight_decay}
        for name in GROUP_NAMES
    ]
    for g in groups:
        log.info(
            "param group %-8s lr %g, %d tensors, %.2f M parameters%s",
            g["name"],
            g["lr"],
            len(g["params"]),
            sum(p.numel() for p in g["params"]) / 1e6,
            " (frozen)" if g["lr"] == 0 else "",
        )
    return groups
