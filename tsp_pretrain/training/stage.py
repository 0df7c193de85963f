"""One training stage, start to end: what ``stages/pretrain.py`` and ``stages/train.py`` run.

Both stages run the same sequence: relaunch as several processes if asked
(:func:`~tsp_pretrain.training.distributed.launch_workers`), read the dataset's tables, build
the model, the clip source and the run's fingerprint, train
(:func:`~tsp_pretrain.training.loop.train`), and let rank 0 save the encoder without heads.
They differ only in where the run starts:

* **fine-tuning** (stage ``train``, :class:`InitialEncoder` given): TSP or TAC (``objective``,
  ``gvf``) from the initial encoder, on the target dataset, with the ``train`` params and the
  top-level ``seed``; its GVF (when the model uses one) is pooled from the initial encoder's
  features or read from ``train.gvf_file``;
* **pretraining** (stage ``pretrain@NAME``, no initial encoder): the demo's stand-in for Kinetics,
  action classification (TAC) from random weights on a trimmed dataset, with the ``pretrain``
  params and their own seed.

What the model's objective implies (TAC trains on foreground segments only, and never uses a
GVF) is asked of the model (:class:`~tsp_pretrain.models.tsp.TSPModel`), never decided here again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tsp_pretrain.config import OptimParams, Params
from tsp_pretrain.digest import code_digest, file_digest, tracked_file_digest
from tsp_pretrain.features.gvf import training_gvf
from tsp_pretrain.features.store import load_features
from tsp_pretrain.models.crop import CROP_KEY, check_crop
from tsp_pretrain.models.encoder_file import load_encoder_file, save_encoder
from tsp_pretrain.models.tsp import Objective, TSPModel, build_tsp_model
from tsp_pretrain.tables import AnnotationTables, read_annotations
from tsp_pretrain.training.checkpoint import fingerprint
from tsp_pretrain.training.distributed import is_main_process, launch_workers
from tsp_pretrain.training.loop import ClipSource, RunOutputs, train
from tsp_pretrain.video.store import INDEX_FILE, FrameStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InitialEncoder:
    """Where fine-tuning starts: the initial encoder's file and the sources of its GVF."""

    file: Path  # written by stage init_encoder
    features: Path  # its extracted features, pooled into the GVF unless train.gvf_file is set
    gvf_dir: Path  # the DVC-tracked folder of GVF tables that train.gvf_file may name


@dataclass(frozen=True)
class TrainingStage:
    """What one training stage reads and writes, as its command line names them."""

    dataset: str  # name under `datasets`
    annotations: Path  # its tables folder
    frames: Path  # its frame store
    encoder: Path  # written: the trained encoder, without heads
    checkpoint: Path  # written: the resumable checkpoint of the last finished epoch
    live: Path  # written: the dvclive folder
    initial: InitialEncoder | None = None  # None: the demo's pretraining (TAC from scratch)


@dataclass(frozen=True)
class _Recipe:
    """The params a stage trains with: the one place where pretraining differs."""

    optim: OptimParams
    seed: int
    objective: Objective
    gvf: bool
    weights: str  # the encoder's starting weights (build_encoder's ``weights``)


def _recipe(params: Params, stage: TrainingStage) -> _Recipe:
    if stage.initial is None:  # pretraining is action classification: TAC, from random weights
        return _Recipe(params.pretrain, params.pretrain.seed, "tac", gvf=False, weights="none")
    return _Recipe(params.train, params.seed, params.objective, params.gvf, str(stage.initial.file))


def run_training_stage(
    params: Params, stage: TrainingStage, script: str, argv: Sequence[str]
) -> None:
    """Run ``stage``: train, then rank 0 writes the encoder (``stage.encoder``).

    With ``processes > 1`` in the stage's params section, ``script argv`` is first relaunched
    as that many ranks (:func:`~tsp_pretrain.training.distributed.launch_workers`) and this
    process exits with their status.
    """
    recipe = _recipe(params, stage)
    status = launch_workers(recipe.optim.processes, script, argv)
    if status is not None:
        raise SystemExit(status)
    initial = None if stage.initial is None else _check_initial(params, stage.initial)
    tables = read_annotations(stage.annotations)
    model = build_tsp_model(
        params.encoder.backbone,
        len(tables.labels),
        weights=recipe.weights,
        objective=recipe.objective,
        gvf=recipe.gvf,
        seed=recipe.seed,
    )
    gvf, gvf_file = _gvf(params, stage, model, tables)
    dataset = params.dataset(stage.dataset)
    data = ClipSource(
        FrameStore(stage.frames),
        tables.subset(dataset.train_subset).segments,
        tables.subset(dataset.valid_subset).segments,
        params.clip,
        gvf,
    )
    outputs = RunOutputs(
        stage.checkpoint, stage.live, training_fingerprint(params, stage, model, gvf_file)
    )
    metrics = train(model, data, recipe.optim, outputs, seed=recipe.seed)
    if is_main_process():  # rank 0 writes the outputs; the weights are the same
        _save(params, stage, model, _info(params, stage, model, initial, metrics))


def _check_initial(params: Params, initial: InitialEncoder) -> dict:
    """The initial encoder file, refused when it was trained at another crop."""
    state = load_encoder_file(initial.file)
    check_crop(
        state.get(CROP_KEY), params.clip.crop_size, str(initial.file), params.encoder.crop_check
    )
    return state


def _gvf(
    params: Params, stage: TrainingStage, model: TSPModel, tables: AnnotationTables
) -> tuple[Mapping[str, torch.Tensor] | None, str | None]:
    """The fixed GVF of every video trained or validated on, and the digest of the GVF table it
    was read from (None when pooled from the initial encoder's features); (None, None) for a
    model that uses no GVF (:attr:`~tsp_pretrain.models.tsp.TSPModel.uses_gvf`; never one in
    pretraining, which is TAC)."""
    if not model.uses_gvf:
        return None, None
    dataset = params.dataset(stage.dataset)
    subsets = [dataset.train_subset, dataset.valid_subset]
    gvf_file = params.train.gvf_file
    gvf = training_gvf(
        tables.videos[tables.videos["subset"].isin(subsets)],
        feature_dim=model.feature_dim,
        gvf_file=gvf_file,
        initial_features=None if gvf_file else load_features(stage.initial.features)[0],
        pool=params.train.gvf_pool,
    )
    if not gvf_file:
        return gvf, None
    return gvf, tracked_file_digest(gvf_file, stage.initial.gvf_dir, "train.gvf_file")


def training_fingerprint(
    params: Params, stage: TrainingStage, model: TSPModel, gvf_file: str | None
) -> str:
    """The run's identity: a checkpoint is resumed only by a run with the same fingerprint.

    It covers the code, the params section, the clips, the annotations and frames and, for
    fine-tuning, the starting point: the initial encoder, the model's objective and whether it
    uses a GVF (the model's :attr:`~tsp_pretrain.models.tsp.TSPModel.uses_gvf`, not the ``gvf``
    param: TAC with ``gvf`` true or false trains the same) and ``gvf_file`` (the digest of the
    GVF table read, if any).
    """
    clip = params.clip
    parts: dict[str, Any] = {
        "code": code_digest(),
        "clip_len": clip.clip_len,
        "frame_rate": clip.frame_rate,
        "crop_size": clip.crop_size,
        "segments": file_digest(stage.annotations / "segments.csv"),
        "frames": file_digest(stage.frames / INDEX_FILE),
    }
    if stage.initial is None:
        parts |= {
            "params": params.pretrain.model_dump(exclude={"runs"}),
            "backbone": params.encoder.backbone,
        }
    else:
        parts |= {
            "params": params.train.model_dump(),
            "objective": model.objective,
            "gvf": model.uses_gvf,
            "seed": params.seed,
            "initial": file_digest(stage.initial.file),
            "gvf_file": gvf_file,
        }
    return fingerprint(**parts)


def _info(
    params: Params, stage: TrainingStage, model: TSPModel, initial: dict | None, metrics: dict
) -> dict:
    """What the encoder file records of its training (features' meta.json shows it)."""
    if initial is None:
        return {"pretrained_on": stage.dataset, "pretrain_metrics": metrics}
    return {
        # the starting point, so that the features' meta.json says what was fine-tuned
        "weights": initial["info"].get("weights"),
        "objective": model.objective,
        "gvf": model.uses_gvf,  # whether the region head saw a GVF (never under TAC)
        "metrics": metrics,
    }


def _save(params: Params, stage: TrainingStage, model: TSPModel, info: dict) -> None:
    save_encoder(
        stage.encoder,
        model.backbone,
        backbone_name=params.encoder.backbone,
        feature_dim=model.feature_dim,
        info=info,
        crop_size=params.clip.crop_size,
    )
    if stage.initial is None:
        log.info(
            "pretrained %s on %s (action classification) -> %s",
            params.encoder.backbone,
            stage.dataset,
            stage.encoder,
        )
    else:
        log.info("trained encoder -> %s", stage.encoder)
