"""The initial encoder E0 of stage ``init_encoder``, built from the ``encoder`` params.

E0 is what TSP/TAC training starts from and, in the extract-only route, the encoder whose
features are extracted. Its file holds the encoder without heads, where its weights came from
(:func:`~tsp_pretrain.models.weights.describe_weights`) and the crop they were trained at
(:func:`~tsp_pretrain.models.crop.weights_crop`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from tsp_pretrain.config import EncoderParams
from tsp_pretrain.models.crop import weights_crop
from tsp_pretrain.models.encoder import build_encoder
from tsp_pretrain.models.encoder_file import save_encoder
from tsp_pretrain.models.weights import describe_weights

log = logging.getLogger(__name__)

#: Seed of the random network that ``encoder.weights: none`` keeps, so that the stage is
#: reproducible (the same network on every run).
RANDOM_INIT_SEED = 0


def write_initial_encoder(encoder: EncoderParams, tracked_dir: Path, out: Path) -> None:
    """Build E0 from ``encoder.backbone`` and ``encoder.weights`` and save it to ``out``.

    ``tracked_dir`` is the folder the stage depends on (``models/weights``): a checkpoint file
    outside it is used but warned about, since DVC would not see it change.
    """
    built = build_encoder(encoder.backbone, encoder.weights, seed=RANDOM_INIT_SEED)
    source = describe_weights(encoder.weights, tracked_dir=tracked_dir)
    save_encoder(
        out,
        built.module,
        backbone_name=encoder.backbone,
        feature_dim=built.feature_dim,
        info=source,
        crop_size=weights_crop(encoder.backbone, encoder.weights),
    )
