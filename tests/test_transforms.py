"""The split clip transform (window in the worker, crop in the stored layout, the rest in batch on
the device) against torchvision's per-clip v2 pipeline, which it replaces."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from tsp_pretrain.data.transforms import KINETICS_MEAN, KINETICS_STD, ClipTransform
from tsp_pretrain.video.colour import frames_to_rgb

SIZES = [(16, (20, 27)), (16, (16, 16)), (32, (40, 32)), (112, (128, 171))]


def _reference(crop: int, train: bool) -> v2.Compose:
    """torchvision's video-classification presets, as the transforms used to be."""
    first = [v2.RandomCrop(crop), v2.RandomHorizontalFlip()] if train else [v2.CenterCrop(crop)]
    return v2.Compose(
        [*first, v2.ToDtype(torch.float32, scale=True), v2.Normalize(KINETICS_MEAN, KINETICS_STD)]
    )


def _apply_reference(reference: v2.Compose, rgb: np.ndarray) -> torch.Tensor:
    video = tv_tensors.Video(torch.from_numpy(rgb).permute(0, 3, 1, 2))
    return reference(video).as_subclass(torch.Tensor).permute(1, 0, 2, 3)


def _apply_split(transform: ClipTransform, raws: list[np.ndarray], train: bool, hw, seeds):
    """Worker side per clip (seeded as the loader seeds: a generator of the clip's own, or the
    global stream, alternately), then the device side on the batch."""
    crops, windows = [], []
    for k, (raw, seed) in enumerate(zip(raws, seeds, strict=True)):
        generator = torch.Generator().manual_seed(seed) if k % 2 else None
        torch.manual_seed(seed if generator is None else seed + 1000)  # must not matter
        window = transform.window(train, *hw, generator)
        crops.append(torch.from_numpy(transform.crop(raw, window)))
        windows.append(window)
    return transform.to_model(torch.stack(crops), torch.stack(windows))


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize(("crop", "size"), SIZES)
def test_rgb_clips_are_bit_identical_to_torchvision_per_clip(crop, size, train):
    rng = np.random.default_rng(crop)
    raws = [rng.integers(0, 256, (4, *size, 3), dtype=np.uint8) for _ in range(6)]
    seeds = list(range(10, 16))
    expected = []
    for raw, seed in zip(raws, seeds, strict=True):
        torch.manual_seed(seed)
        expected.append(_apply_reference(_reference(crop, train), raw))
    got = _apply_split(ClipTransform(crop_size=crop), raws, train, size, seeds)
    assert got.shape == (6, 3, 4, crop, crop) and got.is_contiguous()
    assert torch.equal(got, torch.stack(expected))


def _coded_yuv(layout: str, frames: int, height: int, width: int, seed: int) -> np.ndarray:
    """Random planes at the coded (even) size, laid out as PyAV's to_ndarray returns them."""
    rng = np.random.default_rng(seed)
    h, w = height + height % 2, width + width % 2
    if layout == "yuv444p":
        return rng.integers(0, 256, (frames, 3, h, w), dtype=np.uint8)
    return rng.integers(0, 256, (frames, h * 3 // 2, w), dtype=np.uint8)


@pytest.mark.parametrize("layout", ["yuv420p", "yuv444p"])
@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize(("crop", "size"), [(16, (21, 27)), (16, (16, 16)), (112, (128, 171))])
def test_yuv_clips_equal_converting_whole_frames_then_torchvision(layout, crop, size, train):
    """Cropping the planes first (every crop parity: 40 random windows) changes nothing."""
    raws = [_coded_yuv(layout, 2, *size, seed) for seed in range(40)]
    seeds = list(range(40))
    expected = []
    for raw, seed in zip(raws, seeds, strict=True):
        torch.manual_seed(seed)
        rgb = np.ascontiguousarray(frames_to_rgb(raw, layout, *size))
        expected.append(_apply_reference(_reference(crop, train), rgb))
    transform = ClipTransform(crop_size=crop, layout=layout)
    got = _apply_split(transform, raws, train, size, seeds)
    assert torch.equal(got, torch.stack(expected))
    if train and min(size) > crop + 1:  # the windows covered every parity of the chroma grid
        parities = set()
        for seed in seeds:
            torch.manual_seed(seed)
            window = transform.window(True, *size)
            parities.add((int(window[0]) % 2, int(window[1]) % 2))
        assert parities == {(0, 0), (0, 1), (1, 0), (1, 1)}


def test_a_crop_larger_than_the_frames_names_the_parameters():
    with pytest.raises(ValueError, match=r"transform\.crop_size 32.*decode\.short_side"):
        ClipTransform(crop_size=32).window(True, 20, 40)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("layout", ["rgb", "yuv420p"])
def test_the_device_side_gives_the_same_values_on_cuda(layout):
    size, crop = (128, 171), 112
    raws = (
        [_coded_yuv(layout, 4, *size, s) for s in range(8)]
        if layout != "rgb"
        else [np.random.default_rng(s).integers(0, 256, (4, *size, 3), np.uint8) for s in range(8)]
    )
    transform = ClipTransform(crop_size=crop, layout=layout)
    crops, windows = [], []
    for seed, raw in enumerate(raws):
        torch.manual_seed(seed)
        windows.append(transform.window(True, *size))
        crops.append(torch.from_numpy(transform.crop(raw, windows[-1])))
    clips, windows = torch.stack(crops), torch.stack(windows)
    on_cpu = transform.to_model(clips, windows)
    on_cuda = transform.to_model(clips.cuda(), windows.cuda()).cpu()
    assert torch.equal(on_cpu, on_cuda)
