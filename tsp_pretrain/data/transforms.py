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
from torchvision.transforms.v2 import functional as F

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
        self.crop_size, self.mean, self.std = crop_size, mean, std

    def batch(self, clips: torch.Tensor) -> torch.Tensor:
        """The preset on a whole batch: uint8 ``B x T x H x W x 3`` -> float ``B x 3 x T x h x w``.

        The same operations as the per-clip call, in the same order and precision (torchvision's
        centre crop, then ``x.float() * (1 / 255)``, ``- mean``, ``/ std``), so the values are
        bit-identical; done once per batch instead of once per clip (the per-call overhead was
        10 % of extraction time at the demo's small clips).
        """
        x = clips.permute(0, 4, 1, 2, 3)  # B x C x T x H x W
        x = F.center_crop(x, [self.crop_size])
        x = x.to(torch.float32).mul_(1.0 / 255)
        mean = torch.as_tensor(self.mean, dtype=torch.float32).view(1, -1, 1, 1, 1)
        std = torch.as_tensor(self.std, dtype=torch.float32).view(1, -1, 1, 1, 1)
        return x.sub_(mean).div_(std).contiguous()
