"""R(2+1)D-34, built the way the official TSP code (and ig65m-pytorch) builds it.

The paper's main encoder is the 34-layer R(2+1)D of Tran et al. (2018), pretrained on IG-65M,
fine-tuned on Kinetics, and then TAC/TSP-trained; the official releases were trained with that
network. torchvision only ships the 18-layer model, and stacking its blocks as ``[3, 4, 6, 3]``
does not give the same network, for two reasons:

* Width of the factorised convolution. torchvision's ``BasicBlock`` computes the number of
  intermediate channels once per block, from the block's *input* width, and passes it to both
  convolutions. The first block of layers 2-4 changes the width (64 -> 128, ...), so its second
  convolution (128 -> 128) gets the midplanes of a 64 -> 128 convolution: 230 instead of 288.
  Caffe2's original model (and the released weights) use, for every convolution, the midplanes
  that keep its own parameter count equal to a full 3x3x3 convolution:
  ``(in * out * 27) // (in * 9 + 3 * out)``. :class:`Conv2Plus1DOwnWidth` computes that and
  ignores the value torchvision passes in.
* BatchNorm. Every ``BatchNorm3d`` gets ``eps = 1e-3`` and ``momentum = 0.9``, as the official
  code sets them ("exact Caffe2 momentum"). Note that PyTorch's momentum is the weight of the
  *new* batch statistics (Caffe2's is the weight of the old running value), so in training mode
  the running statistics follow the last batches closely; this is kept as is because the
  releases were trained (and their running statistics produced) with exactly this setting.

Everything else is torchvision's ``VideoResNet`` (``BasicBlock``, ``R2Plus1dStem``), so parameter
names are torchvision's and the official checkpoints' ``features.*`` keys load unchanged.
F = 512. There are no torchvision weights for it; the initial weights come from a TSP release
(``tsp:r2plus1d_34-tac_on_kinetics`` is the paper's starting point) or a checkpoint file.
"""

from __future__ import annotations

from torch import nn
from torchvision.models.video.resnet import BasicBlock, Conv2Plus1D, R2Plus1dStem, VideoResNet

#: BatchNorm settings of the Caffe2-trained model, applied to every BatchNorm3d.
BN_EPS = 1e-3
BN_MOMENTUM = 0.9

#: Blocks per stage of the 34-layer network (the 18-layer one has [2, 2, 2, 2]).
LAYERS_34 = (3, 4, 6, 3)


def factorised_midplanes(in_planes: int, out_planes: int) -> int:
    """Channels between the spatial and the temporal convolution of a (2+1)D convolution.

    Chosen so that the 1x3x3 + 3x1x1 pair has (about) the parameters of one 3x3x3 convolution
    from ``in_planes`` to ``out_planes``.
    """
    return (in_planes * out_planes * 3 * 3 * 3) // (in_planes * 3 * 3 + 3 * out_planes)


class Conv2Plus1DOwnWidth(Conv2Plus1D):
    """torchvision's ``Conv2Plus1D`` whose midplanes come from its own in/out planes.

    ``midplanes`` is accepted for the ``VideoResNet`` builder interface and ignored (see the
    module docstring for why).
    """

    def __init__(
        self,
        in_planes: int,
        out_planes: int,
        midplanes: int | None = None,
        stride: int = 1,
        padding: int = 1,
    ) -> None:
        del midplanes  # replaced by the convolution's own width, as in the official model
        super().__init__(
            in_planes, out_planes, factorised_midplanes(in_planes, out_planes), stride, padding
        )


def r2plus1d_34() -> VideoResNet:
    """A randomly initialised R(2+1)D-34 with its 400-class ``fc`` (removed by the registry)."""
    model = VideoResNet(
        block=BasicBlock,
        conv_makers=[Conv2Plus1DOwnWidth] * 4,
        layers=list(LAYERS_34),
        stem=R2Plus1dStem,
    )
    for module in model.modules():
        if isinstance(module, nn.BatchNorm3d):
            module.eps = BN_EPS
            module.momentum = BN_MOMENTUM
    return model
