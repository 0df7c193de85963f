"""The encoders this project can train: one :class:`BackboneSpec` per name.

Every entry says how to build the network (random initialisation), how to cut off its classifier
so that it outputs one feature vector per clip (and the feature size F, read from the removed
layer rather than hard-coded), which parameters form its stem (frozen in the TSP recipe), and
whether torchvision publishes weights for it. Everything else (weight loading, param groups, the
TSP heads) is written once against this description.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from torch import nn
from torchvision.models import video as tv_video

from tsp_pretrain.models.r2plus1d_34 import r2plus1d_34
from tsp_pretrain.models.tiny import r2plus1d_tiny


class UnknownBackboneError(KeyError):
    """A backbone name that is not registered; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError would print the message with quotes around it
        return str(self.args[0])


@dataclass(frozen=True)
class BackboneSpec:
    """How to build one encoder and where its parts are.

    ``remove_classifier`` replaces the classifier in place by an identity and returns F;
    ``stem_prefixes`` are parameter-name prefixes (ending in ".") relative to the backbone;
    ``torchvision_name`` is the name torchvision's weights API knows the model by (None when no
    published weights exist); ``input_size`` is the (T, H, W) the model requires, for models whose
    positional embeddings fix it, else None.
    """

    name: str
    build: Callable[[], nn.Module]
    remove_classifier: Callable[[nn.Module], int]
    stem_prefixes: tuple[str, ...]
    torchvision_name: str | None = None
    input_size: tuple[int, int, int] | None = None


def _feature_size(layer: nn.Module) -> int:
    """Input width of a classifier: a Linear, a 1x1x1 Conv3d, or a Sequential ending in one."""
    if isinstance(layer, nn.Sequential):
        layer = layer[-1]
    if isinstance(layer, nn.Linear):
        return layer.in_features
    if isinstance(layer, nn.Conv3d):
        return layer.in_channels
    raise TypeError(
        f"cannot read the feature size from a classifier of type {type(layer).__name__}"
    )


def replace_classifier(model: nn.Module, attribute: str) -> int:
    """Swap ``model.<attribute>`` (the classifier, dropout included) for an identity; return F."""
    size = _feature_size(getattr(model, attribute))
    setattr(model, attribute, nn.Identity())
    return size


def _strip_s3d(model: nn.Module) -> int:
    """S3D: drop ``classifier`` and make its pooling global.

    torchvision's S3D pools with a fixed 2x7x7 window (stride 1), then classifies, then averages
    over the remaining positions. Without the classifier, a global average pool gives the same
    vector for the 16x224x224 input it was trained on and still works on smaller clips, where the
    fixed window would not fit.
    """
    size = replace_classifier(model, "classifier")
    model.avgpool = nn.AdaptiveAvgPool3d(1)
    return size


_RESNET_STEM = ("stem.",)
# S3D has no module named "stem": its Inception-style stem is everything before the first
# SepInceptionBlock3D (conv 7x7, max pool, conv 1x1, separable conv 3x3, max pool).
_S3D_STEM = ("features.0.", "features.1.", "features.2.", "features.3.", "features.4.")
_MVIT_STEM = ("conv_proj.", "pos_encoding.")
_SWIN_STEM = ("patch_embed.",)


def _spec(
    name: str, remove: Callable[[nn.Module], int], stem: tuple[str, ...], **kw
) -> BackboneSpec:
    build = partial(getattr(tv_video, name), weights=None)
    return BackboneSpec(name, build, remove, stem, torchvision_name=name, **kw)


_fc = partial(replace_classifier, attribute="fc")
_head = partial(replace_classifier, attribute="head")

BACKBONES: dict[str, BackboneSpec] = {
    spec.name: spec
    for spec in (
        _spec("r2plus1d_18", _fc, _RESNET_STEM),
        _spec("r3d_18", _fc, _RESNET_STEM),
        _spec("mc3_18", _fc, _RESNET_STEM),
        _spec("s3d", _strip_s3d, _S3D_STEM),
        _spec("mvit_v1_b", _head, _MVIT_STEM, input_size=(16, 224, 224)),
        _spec("mvit_v2_s", _head, _MVIT_STEM, input_size=(16, 224, 224)),
        _spec("swin3d_t", _head, _SWIN_STEM),
        _spec("swin3d_s", _head, _SWIN_STEM),
        _spec("swin3d_b", _head, _SWIN_STEM),
        # The paper's main encoder; no torchvision weights (its weights are the TSP releases).
        BackboneSpec("r2plus1d_34", r2plus1d_34, _fc, _RESNET_STEM),
        BackboneSpec("r2plus1d_tiny", r2plus1d_tiny, _fc, _RESNET_STEM),
    )
}


def get_backbone(name: str) -> BackboneSpec:
    """The registered backbone ``name``, or an error listing the valid names."""
    try:
        return BACKBONES[name]
    except KeyError:
        valid = ", ".join(BACKBONES)
        raise UnknownBackboneError(f"unknown backbone {name!r}; valid names: {valid}") from None
