"""The clip transform of training, validation and extraction, split where each part is cheapest.

The frame store already holds resized frames (to ``decode.short_side``, or exactly to
``decode.frame_size``: the recipe's 128 x 171); what is left is a crop (random for training,
central otherwise), a random horizontal flip for training, scaling to [0, 1] and the Kinetics
normalisation. The torchvision reference applies all of it per clip in the loader's workers. Here:

1. :meth:`ClipTransform.window` draws the crop and the flip where the clip is read (a loader
   worker), from torch's random stream in the order and with the calls torchvision's
   ``RandomCrop`` then ``RandomHorizontalFlip`` make, so a seed gives the same clips as theirs;
2. :meth:`ClipTransform.crop` cuts the window out of the clip in the store's pixel layout (a slice;
   for the mp4 store, YUV planes that need no colour conversion in the worker);
3. :meth:`ClipTransform.to_model` takes the whole batch on the model's device: YUV to RGB
   (:func:`tsp_pretrain.video.colour.stored_to_rgb`), the flips, scaling and normalisation.

Workers do only reading and slicing, and a batch crosses to the GPU as uint8: a quarter of the
float bytes. Steps 1-3 give bit-identical values to torchvision's per-clip ``v2`` pipeline on RGB
frames (``tests/test_transforms.py``), on the CPU and on CUDA (IEEE operations on both).
"""

from __future__ import annotations

import numpy as np
import torch

from tsp_pretrain.video.colour import crop_stored, stored_to_rgb

#: Kinetics-400 statistics, used by torchvision's video models and the TSP recipe.
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)


class ClipTransform:
    """Crop (random or central), random flip, scale and normalise clips of a store's ``layout``.

    Output of :meth:`to_model`: float ``B x 3 x T x crop x crop`` (what torchvision's video models
    take).
    """

    def __init__(
        self, *, crop_size: int, layout: str = "rgb", mean=KINETICS_MEAN, std=KINETICS_STD
    ) -> None:
        self.crop_size, self.layout = crop_size, layout
        self.mean, self.std = mean, std

    def window(
        self, train: bool, height: int, width: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``[top, left, flip]`` of one clip of ``height x width`` frames (long tensor).

        Training draws as torchvision's ``v2.RandomCrop`` (``randint`` for the top, then the left,
        each only when that side is larger than the crop) and ``v2.RandomHorizontalFlip`` (flip
        when ``rand(1) < 0.5``) do, from ``generator`` (torch's global stream when None: a
        generator seeded ``s`` draws what the global one does after ``torch.manual_seed(s)``);
        otherwise the centre, by torchvision's ``center_crop`` rule.
        """
        c = self.crop_size
        if height < c or width < c:
            raise ValueError(
                f"frames of {height} x {width} are smaller than transform.crop_size {c}; lower "
                "it or decode larger frames (decode.short_side / decode.frame_size)"
            )
        if not train:
            return torch.tensor([round((height - c) / 2.0), round((width - c) / 2.0), 0])
        g = generator
        top = int(torch.randint(0, height - c + 1, size=(), generator=g)) if height > c else 0
        left = int(torch.randint(0, width - c + 1, size=(), generator=g)) if width > c else 0
        flip = bool(torch.rand(1, generator=g) < 0.5)
        return torch.tensor([top, left, int(flip)])

    def crop(self, raw: np.ndarray, window: torch.Tensor) -> np.ndarray:
        """The window of a clip (``T x ...`` in :attr:`layout`), uint8, of a shape that depends
        only on the crop size (so clips of any position and video collate)."""
        top, left = int(window[0]), int(window[1])
        return crop_stored(raw, self.layout, top, left, self.crop_size)

    def to_model(self, clips: torch.Tensor, windows: torch.Tensor) -> torch.Tensor:
        """A batch of cropped clips (:meth:`crop`, stacked) and their windows (``B x 3``) -> the
        model's float input, computed on the clips' device."""
        rgb = stored_to_rgb(clips, self.layout, self.crop_size, windows[:, 0], windows[:, 1])
        flip = windows[:, 2].bool().view(-1, 1, 1, 1, 1)
        rgb = torch.where(flip, rgb.flip(-1), rgb)
        x = rgb.to(torch.float32).mul_(1.0 / 255)
        mean = torch.as_tensor(self.mean, dtype=torch.float32, device=x.device)
        std = torch.as_tensor(self.std, dtype=torch.float32, device=x.device)
        return x.sub_(mean.view(1, -1, 1, 1, 1)).div_(std.view(1, -1, 1, 1, 1)).contiguous()
