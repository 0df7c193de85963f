"""The TSP model: an encoder plus the action and temporal-region heads.

``action`` classifies a clip's action (trained on foreground clips only). ``region`` tells
foreground from background; with a global video feature (GVF) it sees the clip's local feature
next to a summary of its whole video, which is what makes the pretraining temporally sensitive.
The TAC baseline is the same model with the action head only.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from tsp_pretrain.models.encoder import Encoder, build_encoder, check_clips

Objective = Literal["tsp", "tac"]


def _head(in_features: int, out_features: int) -> nn.Linear:
    """A linear head initialised as in the paper: weights N(0, 0.01), bias 0, no dropout."""
    head = nn.Linear(in_features, out_features)
    nn.init.normal_(head.weight, mean=0.0, std=0.01)
    nn.init.zeros_(head.bias)
    return head


class TSPModel(nn.Module):
    """Encoder ``backbone`` (B x F features) and heads in ``heads`` (a ModuleDict).

    Parameter names are ``backbone.<torchvision name>`` and ``heads.<head>.<weight|bias>``; the
    param groups and the checkpoint loader rely on these two prefixes.
    """

    def __init__(
        self, encoder: Encoder, num_classes: int, objective: Objective = "tsp", gvf: bool = True
    ) -> None:
        super().__init__()
        if objective not in ("tsp", "tac"):
            raise ValueError(f"objective must be 'tsp' or 'tac', got {objective!r}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}")
        self.spec = encoder.spec  # registry entry: stem prefixes, input constraints
        self.backbone = encoder.module
        self.feature_dim = encoder.feature_dim
        self.objective = objective
        # The one GVF decision (loader, loss and fingerprint ask this): the GVF only feeds the
        # region head, so a TAC model never uses one.
        self.uses_gvf = objective == "tsp" and gvf
        heads = {"action": _head(self.feature_dim, num_classes)}
        if objective == "tsp":
            heads["region"] = _head(2 * self.feature_dim if self.uses_gvf else self.feature_dim, 2)
        self.heads = nn.ModuleDict(heads)

    @property
    def foreground_only(self) -> bool:
        """Whether training samples foreground segments only: TAC, whose one head (action) learns
        from foreground clips alone; TSP's region head needs the background segments too."""
        return self.objective == "tac"

    @property
    def stem_prefixes(self) -> tuple[str, ...]:
        """Parameter-name prefixes of the backbone's stem, relative to ``backbone.``."""
        return self.spec.stem_prefixes

    def encode(self, clips: torch.Tensor) -> torch.Tensor:
        """Local features f = E(clips), B x F (what feature extraction and the GVF use)."""
        check_clips(self.spec, clips)
        return self.backbone(clips)

    def forward(
        self, clips: torch.Tensor, gvf: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Logits per head (``action``: B x C, ``region``: B x 2) and ``features`` (B x F).

        ``gvf`` (B x F) is required exactly when :attr:`uses_gvf`; it is treated as a constant
        (no gradient flows into it).
        """
        if self.uses_gvf and gvf is None:
            raise ValueError("this TSP model uses a GVF: pass gvf (B x F) with the clips")
        if not self.uses_gvf and gvf is not None:
            raise ValueError(f"this {self.objective} model was built without a GVF; pass gvf=None")
        features = self.encode(clips)
        out = {"features": features, "action": self.heads["action"](features)}
        if "region" in self.heads:
            region_in = features
            if gvf is not None:
                expected = (features.shape[0], self.feature_dim)
                if tuple(gvf.shape) != expected:
                    raise ValueError(f"gvf must have shape {expected}, got {tuple(gvf.shape)}")
                region_in = torch.cat([features, gvf.detach().to(features.dtype)], dim=1)
            out["region"] = self.heads["region"](region_in)
        return out


def build_tsp_model(
    backbone: str,
    num_classes: int,
    weights: str = "none",
    objective: Objective = "tsp",
    gvf: bool = True,
    seed: int | None = None,
) -> TSPModel:
    """:func:`~tsp_pretrain.models.encoder.build_encoder` + :class:`TSPModel`.

    With ``seed``, every randomly initialised weight (the heads; the whole backbone when
    ``weights="none"``) is drawn from it, so the same params give the same run; the global RNG
    state is left as it was. Without it, the initialisation follows the global RNG.
    """
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        return TSPModel(build_encoder(backbone, weights), num_classes, objective=objective, gvf=gvf)
