"""Video encoders, the TSP/TAC heads, their loss, parameter groups and weight loading.

Typical use::

    model = build_tsp_model("r2plus1d_18", num_classes=200, weights="KINETICS400_V1")
    optimizer = torch.optim.SGD(param_groups(model, 0.0, 1e-4, 2e-3, 5e-3), momentum=0.9)
    loss, logs = forward_and_loss(model, batch, alpha_action=1.0, alpha_region=1.0)
"""

from tsp_pretrain.models.encoder import Encoder, build_encoder, check_clips
from tsp_pretrain.models.loss import forward_and_loss
from tsp_pretrain.models.param_groups import GROUP_NAMES, param_groups
from tsp_pretrain.models.registry import (
    BACKBONES,
    BackboneSpec,
    UnknownBackboneError,
    get_backbone,
)
from tsp_pretrain.models.releases import RELEASES, Release, get_release
from tsp_pretrain.models.state_dicts import (
    CHECKPOINT_PREFIXES,
    WeightsError,
    hub_checkpoint_dir,
    read_checkpoint,
    select_backbone_state,
    torchvision_state_dict,
    weight_names,
)
from tsp_pretrain.models.tsp import Objective, TSPModel, build_tsp_model
from tsp_pretrain.models.weights import load_encoder_weights

__all__ = [
    "BACKBONES",
    "CHECKPOINT_PREFIXES",
    "GROUP_NAMES",
    "RELEASES",
    "BackboneSpec",
    "Encoder",
    "Objective",
    "Release",
    "TSPModel",
    "UnknownBackboneError",
    "WeightsError",
    "build_encoder",
    "build_tsp_model",
    "check_clips",
    "forward_and_loss",
    "get_backbone",
    "get_release",
    "hub_checkpoint_dir",
    "load_encoder_weights",
    "param_groups",
    "read_checkpoint",
    "select_backbone_state",
    "torchvision_state_dict",
    "weight_names",
]
