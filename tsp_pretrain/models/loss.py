"""The one loss used by TSP/TAC training and validation.

loss = alpha_region * CE(region logits, region) + alpha_action * CE(action logits, action), where
the action term only counts foreground clips (background clips carry the action target
:data:`~tsp_pretrain.regions.BACKGROUND_LABEL_ID`, the loss's ``ignore_index``). The action
term is a sum over foreground clips divided by their count (at least 1), so a batch without any
foreground clip contributes 0 instead of the NaN that a mean over zero clips would give.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from tsp_pretrain.models.tsp import TSPModel
from tsp_pretrain.regions import BACKGROUND_LABEL_ID


def _to(batch: Mapping[str, torch.Tensor | None], device: torch.device) -> dict:
    return {
        k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
        for k, v in batch.items()
    }


def forward_and_loss(
    model: TSPModel | nn.Module,
    batch: Mapping[str, torch.Tensor | None],
    alpha_action: float = 1.0,
    alpha_region: float = 1.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Run ``model`` on ``batch`` and return (loss, logs).

    ``batch``: ``clips`` (B x 3 x T x H x W), ``action`` (long, ``BACKGROUND_LABEL_ID`` for
    background clips), ``region`` (long, the region targets of
    :mod:`~tsp_pretrain.data.sampling`; needed when the model has a region head), optional
    ``gvf`` (B x F; passed on only when the model uses a GVF, :attr:`TSPModel.uses_gvf`, so one
    loader can serve TSP, TSP without GVF and TAC). Tensors are moved to the model's device.
    ``model`` may be a :class:`TSPModel` or a wrapper holding one as ``.module``
    (DistributedDataParallel).

    ``logs`` holds plain floats: ``loss``, ``loss_action``, ``loss_region``, the accuracies
    ``acc_action`` (over foreground clips; NaN when there is none) and ``acc_region``, and the
    counts ``correct_action``/``n_action``, ``correct_region``/``n_region`` so that epoch
    accuracies can be summed exactly across batches of different composition.
    """
    device = next(model.parameters()).device
    batch = _to(batch, device)
    uses_gvf = getattr(model, "module", model).uses_gvf
    out = model(batch["clips"], batch.get("gvf") if uses_gvf else None)

    action = batch["action"]
    foreground = action != BACKGROUND_LABEL_ID
    n_action = foreground.sum()
    loss_action = F.cross_entropy(
        out["action"], action, ignore_index=BACKGROUND_LABEL_ID, reduction="sum"
    ) / n_action.clamp(min=1)
    correct_action = ((out["action"].argmax(1) == action) & foreground).sum()
    loss = alpha_action * loss_action
    stats = [loss_action.detach(), correct_action, n_action]

    if "region" in out:
        region = batch["region"]
        loss_region = F.cross_entropy(out["region"], region)
        loss = loss + alpha_region * loss_region
        correct_region = (out["region"].argmax(1) == region).sum()
        stats += [loss_region.detach(), correct_region, torch.tensor(region.numel(), device=device)]

    values = torch.stack([loss.detach(), *(s.float() for s in stats)]).tolist()  # one sync
    logs = {
        "loss": values[0],
        "loss_action": values[1],
        "correct_action": values[2],
        "n_action": values[3],
    }
    logs["acc_action"] = values[2] / values[3] if values[3] else float("nan")
    if "region" in out:
        logs.update(
            loss_region=values[4],
            correct_region=values[5],
            n_region=values[6],
            acc_region=values[5] / values[6],
        )
    return loss, logs
