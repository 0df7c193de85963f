"""Stored pixels to RGB: the frame store's layouts, cropped where the clip is read, converted where
the model runs.

The mp4 store codes frames as YUV. Converting them to RGB inside the decoding loop (FFmpeg's
swscale, one frame at a time) cost twice what decoding them did at the recipe's 128 x 171
(``bench/input_pipeline.py``, docs/performance.md), and it ran in the loader's worker processes,
the scarce resource of a GPU node. So readers hand over frames in their *stored layout*, a clip is
cropped there (:func:`crop_stored`: a slice, in the worker), and the conversion to RGB runs on the
whole batch where the model is (:func:`stored_to_rgb`: a few integer tensor operations, free on a
GPU).

Layouts (``T`` frames; ``Hc x Wc`` is the coded size, each side rounded up to even, see
:func:`tsp_pretrain.video.store.even_size`):

- ``rgb``: ``T x H x W x 3`` (the npy store, and the mp4 store in ``rgb24``);
- ``yuv420p``: ``T x (Hc * 3 / 2) x Wc``, the Y plane then the U and V planes at half resolution,
  as PyAV's ``VideoFrame.to_ndarray()`` returns them;
- ``yuv444p``: ``T x 3 x Hc x Wc``, the three planes at full resolution.

The conversion is BT.601 limited range (what the store's encoder wrote: swscale's default for
RGB -> YUV), in 16.16 fixed point with rounding, chroma repeated over 2 x 2 pixels in 4:2:0.
Integer arithmetic gives the same bytes on every CPU and GPU. It differs from swscale's x86 SIMD
conversion that the reader used before by at most 3 grey levels (mean 1.2), and it is closer to
the frames that were encoded: mean error +0.2 against swscale's -0.8 to -1.3 grey levels
(measured on the benchmark's realistic source; ``tests/test_colour.py`` bounds both).

A cropped ``yuv420p`` clip packs its Y window and the chroma rows and columns that cover it into
one array of fixed shape (:func:`packed_shape`), so that clips of any position, and of videos of
different sizes, collate into one batch; the crop's parity, which says where the Y window starts
within its first chroma sample, travels with the clip's window (``top``, ``left``).
"""

from __future__ import annotations

import numpy as np
import torch

LAYOUTS = ("rgb", "yuv420p", "yuv444p")

#: BT.601 limited range, YUV -> RGB, scaled by 2**16 (the coefficients swscale uses as well).
_Y, _RV, _GU, _GV, _BU = 76309, 104597, 25675, 53279, 132201


def chroma_side(size: int) -> int:
    """Chroma samples that cover ``size`` pixels starting anywhere (4:2:0): ``size // 2 + 1``."""
    return size // 2 + 1


def packed_shape(layout: str, size: int) -> tuple[int, ...]:
    """The per-frame shape of a ``size x size`` crop in ``layout`` (:func:`crop_stored`)."""
    if layout == "rgb":
        return (size, size, 3)
    if layout == "yuv444p":
        return (3, size, size)
    if layout == "yuv420p":
        return (size * size + 2 * chroma_side(size) ** 2,)
    raise ValueError(f"unknown pixel layout {layout!r}; expected one of {LAYOUTS}")


def crop_stored(raw: np.ndarray, layout: str, top: int, left: int, size: int) -> np.ndarray:
    """The ``size x size`` window at ``(top, left)`` of a clip in its stored layout (a copy).

    The window must lie inside the frame's true size (the coded size's padding is never in it).
    """
    if layout == "rgb":
        return np.ascontiguousarray(raw[:, top : top + size, left : left + size])
    if layout == "yuv444p":
        return np.ascontiguousarray(raw[:, :, top : top + size, left : left + size])
    if layout != "yuv420p":
        raise ValueError(f"unknown pixel layout {layout!r}; expected one of {LAYOUTS}")
    frames, rows, width = raw.shape
    height = rows * 2 // 3
    luma = raw[:, :height, :].reshape(frames, -1, width)
    chroma = raw[:, height:, :].reshape(frames, 2, height // 2, width // 2)
    n = chroma_side(size)
    cy, cx = top // 2, left // 2
    window = chroma[:, :, cy : cy + n, cx : cx + n]
    if window.shape[2:] != (n, n):  # the last chroma row or column: repeat it (never shown)
        pad = ((0, 0), (0, 0), (0, n - window.shape[2]), (0, n - window.shape[3]))
        window = np.pad(window, pad, mode="edge")
    out = np.empty((frames, *packed_shape(layout, size)), np.uint8)
    out[:, : size * size] = luma[:, top : top + size, left : left + size].reshape(frames, -1)
    out[:, size * size :] = window.reshape(frames, -1)
    return out


def _yuv_to_rgb(y: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """uint8 planes of one shape -> uint8 RGB stacked on a new dimension 1 (``B x 3 x ...``)."""
    y = (y.to(torch.int32) - 16) * _Y
    u = u.to(torch.int32) - 128
    v = v.to(torch.int32) - 128
    half = 1 << 15
    r = (y + _RV * v + half) >> 16
    g = (y - _GU * u - _GV * v + half) >> 16
    b = (y + _BU * u + half) >> 16
    return torch.stack([r, g, b], dim=1).clamp_(0, 255).to(torch.uint8)


def _upsample_chroma(
    chroma: torch.Tensor, top: torch.Tensor, left: torch.Tensor, size: int
) -> torch.Tensor:
    """``B x T x 2 x n x n`` chroma windows -> ``B x T x 2 x size x size``, each clip shifted by
    its crop's parity (one of four slices of the doubled window)."""
    doubled = chroma.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)
    out = doubled[..., :size, :size].clone()
    for py in (0, 1):
        for px in (0, 1):
            if py == px == 0:
                continue
            pick = ((top % 2) == py) & ((left % 2) == px)
            out[pick] = doubled[pick][..., py : py + size, px : px + size]
    return out


def stored_to_rgb(
    clips: torch.Tensor, layout: str, size: int, top: torch.Tensor, left: torch.Tensor
) -> torch.Tensor:
    """A batch of cropped clips (``B x T x`` :func:`packed_shape`) -> uint8 ``B x 3 x T x size x
    size`` RGB, on the clips' device. ``top`` and ``left`` (``B``) are the crops' positions in the
    frame; only their parity matters (4:2:0)."""
    if layout == "rgb":
        return clips.permute(0, 4, 1, 2, 3)
    if layout == "yuv444p":
        return _yuv_to_rgb(clips[:, :, 0], clips[:, :, 1], clips[:, :, 2])
    if layout != "yuv420p":
        raise ValueError(f"unknown pixel layout {layout!r}; expected one of {LAYOUTS}")
    batch, frames = clips.shape[:2]
    n = chroma_side(size)
    luma = clips[..., : size * size].reshape(batch, frames, size, size)
    chroma = clips[..., size * size :].reshape(batch, frames, 2, n, n)
    uv = _upsample_chroma(chroma, top, left, size)
    return _yuv_to_rgb(luma, uv[:, :, 0], uv[:, :, 1])


def frames_to_rgb(raw: np.ndarray, layout: str, height: int, width: int) -> np.ndarray:
    """Whole frames in a stored layout -> uint8 ``T x height x width x 3`` (the coded size's
    padding cut off), by the same conversion as :func:`stored_to_rgb`, on the CPU."""
    if layout == "rgb":
        return raw[:, :height, :width]
    frames = len(raw)
    if layout == "yuv444p":
        planes = torch.from_numpy(np.ascontiguousarray(raw))
        rgb = _yuv_to_rgb(planes[:, 0], planes[:, 1], planes[:, 2])
    elif layout == "yuv420p":
        rows, coded_w = raw.shape[1:]
        coded_h = rows * 2 // 3
        data = torch.from_numpy(np.ascontiguousarray(raw))
        luma = data[:, :coded_h]
        chroma = data[:, coded_h:].reshape(frames, 2, coded_h // 2, coded_w // 2)
        uv = chroma.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)
        rgb = _yuv_to_rgb(luma, uv[:, 0], uv[:, 1])
    else:
        raise ValueError(f"unknown pixel layout {layout!r}; expected one of {LAYOUTS}")
    return rgb.permute(0, 2, 3, 1)[:, :height, :width].numpy()
