"""Transform presets: one for training, one for evaluation and extraction.

The frame store already holds resized frames (to ``decode.short_side``, or exactly to
``decode.frame_size``: the recipe's 128 x 171); these presets only crop, flip and normalise.
Input: uint8 ``T x H x W x 3`` (what the clip reader returns); output: float ``3 x T x H x W``
(what torchvision's video models take).
"""

from __future__ import annotations

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

#: Kinetics-400 statistics, used by torchvision's video models and the TSP recipe.
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)


class _Preset:
    def __init__(self, transforms: list) -> None:
        self.transforms = v2.Compose(transforms)

    def __call__(self, clip: torch.Tensor) -> torch.Tensor:
        video = tv_tensors.Video(clip.permute(0, 3, 1, 2))  # T x C x H x W
        return self.transforms(video).as_subclass(torch.Tensor).permute(1, 0, 2, 3).contiguous()


class TrainPreset(_Preset):
    """Random crop, random horizontal flip, scale to [0, 1], normalise."""

    def __init__(self, *, crop_size: int, mean=KINETICS_MEAN, std=KINETICS_STD) -> None:
        super().__init__(
            [
                v2.RandomCrop(crop_size),
                v2.RandomHorizontalFlip(),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(mean, std),
            ]
        )


class EvalPreset(_Preset):
    """Centre crop, scale to [0, 1], normalise (validation, GVF and feature extraction)."""

    def __init__(self, *, crop_size: int, mean=KINETICS_MEAN, std=KINETICS_STD) -> None:
        super().__init__(
            [
                v2.CenterCrop(crop_size),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(mean, std),
            ]
        )
