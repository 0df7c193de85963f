"""A narrow R(2+1)D-18 for the CPU demo, built from torchvision's own blocks.

The paper's encoders need a GPU (r2plus1d_18 trains ~2 clips/s on 2 CPU cores at 64 px). The demo
needs an encoder that trains thousands of small clips per minute, yet behaves like the real ones
for everything around it: the same module names (``stem``, ``layer1``..``layer4``, ``avgpool``,
``fc``) so that stem freezing, param groups and checkpoint loading follow the same code path.
Only the widths change (16-32-64-128 instead of 64-128-256-512, so F = 128).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torchvision.models.video.resnet import BasicBlock, Conv2Plus1D

TINY_WIDTHS = (16, 32, 64, 128)


class TinyR2Plus1dStem(nn.Sequential):
    """torchvision's ``R2Plus1dStem`` (1x7x7 spatial then 3x1x1 temporal conv) at a chosen width."""

    def __init__(self, out_planes: int, mid_planes: int) -> None:
        super().__init__(
            nn.Conv3d(3, mid_planes, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False),
            nn.BatchNorm3d(mid_planes),
            nn.ReLU(inplace=True),
            nn.Conv3d(mid_planes, out_planes, (3, 1, 1), stride=1, padding=(1, 0, 0), bias=False),
            nn.BatchNorm3d(out_planes),
            nn.ReLU(inplace=True),
        )


def _make_layer(inplanes: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
    """Same rule as ``VideoResNet._make_layer``: a 1x1x1 projection when the shape changes."""
    downsample = None
    if stride != 1 or inplanes != planes:
        downsample = nn.Sequential(
            nn.Conv3d(inplanes, planes, kernel_size=1, stride=stride, bias=False),
            nn.BatchNorm3d(planes),
        )
    layers = [BasicBlock(inplanes, planes, Conv2Plus1D, stride, downsample)]
    layers += [BasicBlock(planes, planes, Conv2Plus1D) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


class TinyVideoResNet(nn.Module):
    """``torchvision.models.video.VideoResNet`` with configurable widths (R(2+1)D blocks only).

    Initialised exactly like torchvision's (Kaiming conv, unit BatchNorm, N(0, 0.01) classifier).
    """

    def __init__(
        self,
        widths: Sequence[int] = TINY_WIDTHS,
        layers: Sequence[int] = (1, 1, 1, 1),
        stem_mid_planes: int = 12,
        num_classes: int = 400,
    ) -> None:
        super().__init__()
        if len(widths) != 4 or len(layers) != 4:
            raise ValueError(f"widths and layers need 4 entries each, got {widths} and {layers}")
        self.stem = TinyR2Plus1dStem(widths[0], stem_mid_planes)
        inplanes = widths[0]
        for i, (planes, blocks) in enumerate(zip(widths, layers, strict=True)):
            setattr(
                self, f"layer{i + 1}", _make_layer(inplanes, planes, blocks, 1 if i == 0 else 2)
            )
            inplanes = planes
        self.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.fc = nn.Linear(inplanes, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.constant_(m.bias, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)
        return self.fc(self.avgpool(x).flatten(1))


def r2plus1d_tiny(num_classes: int = 400) -> TinyVideoResNet:
    """The demo encoder: widths 16-32-64-128, one block per layer, F = 128."""
    return TinyVideoResNet(num_classes=num_classes)
