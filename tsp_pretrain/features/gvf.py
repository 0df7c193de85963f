"""Global video features: one F-vector per video, pooled over all its clip features.

TSP computes them once, with the initial encoder, and keeps them fixed during training; they come
from the initial encoder's extracted features (the same folder that the evaluation uses as the
baseline), so they are never computed twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
import torch


def global_video_features(
    features: Mapping[str, np.ndarray], pool: Literal["max", "avg"] = "max"
) -> dict[str, torch.Tensor]:
    """Max- (the paper) or average-pool each video's ``T x F`` features over time."""
    if pool not in ("max", "avg"):
        raise ValueError(f"pool must be 'max' or 'avg', got {pool!r}")
    reduce = np.max if pool == "max" else np.mean
    out = {}
    for vid, feats in features.items():
        if feats.ndim != 2 or len(feats) == 0:
            raise ValueError(f"video {vid}: expected T x F features with T >= 1, got {feats.shape}")
        out[vid] = torch.from_numpy(reduce(feats, axis=0).astype(np.float32))
    return out
