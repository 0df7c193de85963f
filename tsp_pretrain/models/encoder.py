"""Building an encoder E: clips (B x 3 x T x H x W) -> features (B x F)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

from tsp_pretrain.models.registry import BackboneSpec, get_backbone
from tsp_pretrain.models.weights import load_encoder_weights

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class Encoder:
    """A backbone without its classifier, its feature size F and its registry entry.

    ``module`` is the torchvision network itself (not a wrapper), so its parameter names are
    torchvision's and checkpoints stay interchangeable with torchvision's.
    """

    module: nn.Module
    feature_dim: int
    spec: BackboneSpec

    def __call__(self, clips: torch.Tensor) -> torch.Tensor:
        """Features of ``clips``: B x F."""
        check_clips(self.spec, clips)
        return self.module(clips)


def check_clips(spec: BackboneSpec, clips: torch.Tensor) -> None:
    """Fail with a readable message on a clip tensor backbone ``spec`` cannot take."""
    if clips.dim() != 5 or clips.shape[1] != 3:
        raise ValueError(
            f"{spec.name}: expected clips of shape B x 3 x T x H x W, got {tuple(clips.shape)}"
        )
    if spec.input_size is not None and tuple(clips.shape[2:]) != spec.input_size:
        raise ValueError(
            f"{spec.name} only takes T x H x W = {spec.input_size} "
            f"(its positional embeddings fix the size), got {tuple(clips.shape[2:])}"
        )


def build_encoder(name: str, weights: str = "none", seed: int | None = None) -> Encoder:
    """Build backbone ``name`` without its classifier and initialise it from ``weights``.

    ``weights``: ``"none"`` (random), a torchvision weight name (``"KINETICS400_V1"``) or a
    checkpoint path; see :func:`tsp_pretrain.models.weights.load_encoder_weights`. With ``seed``
    the random initialisation (what ``"none"`` keeps) is drawn from it and the global RNG is left
    as it was, so that an encoder from ``"none"`` is the same network on every run.
    """
    spec = get_backbone(name)
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        module = spec.build()
    feature_dim = spec.remove_classifier(module)
    load_encoder_weights(module, spec, weights)
    log.info(
        "%s: encoder with F = %d, %.1f M parameters",
        name,
        feature_dim,
        sum(p.numel() for p in module.parameters()) / 1e6,
    )
    return Encoder(module, feature_dim, spec)
