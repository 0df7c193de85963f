"""The epoch loop shared by TSP/TAC fine-tuning and the demo's action pretraining.

One :func:`~tsp_pretrain.models.loss.forward_and_loss` serves training and validation. Each epoch
draws fresh clips (seeded by ``(seed, epoch)``, so a resumed run sees exactly the clips an
uninterrupted one would), trains, validates on fixed, evenly spaced clips, logs to dvclive and
writes a checkpoint. The initial model (encoder and fresh heads) is validated once before the
first step, which leaves the training result unchanged; the last epoch's losses are judged
against it (:mod:`~tsp_pretrain.training.health`: a ``health`` block in dvclive's summary, a
loud warning when the run made the model worse). The machine's choices come from
:mod:`~tsp_pretrain.runtime`: the device, mixed precision (CUDA only: ``amp_enabled``) and the
DataLoader's workers (``input_workers``).

Under a launcher (:mod:`~tsp_pretrain.training.distributed`) every rank trains its share of each
global batch (:func:`~tsp_pretrain.data.sampling.rank_batches`) in DistributedDataParallel, the
learning rates are multiplied by the world size (``scale_lr_by_world_size``, as in the recipe),
epoch sums are added over ranks, and rank 0 alone logs and checkpoints. One DataLoader serves the
whole run (its workers, if any, persist across epochs). Random crops and flips: without workers,
torch's stream seeded per epoch (rank 0: ``seed * 10007 + epoch``, the single-process value);
with workers, each clip's own seed from ``(seed, epoch, rank, position)``, so the result does not
depend on the number of workers.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from dvclive import Live
from torch.utils.data import DataLoader
from tqdm import tqdm

from tsp_pretrain.atomic import remove_partial_files
from tsp_pretrain.config import ClipSpec, OptimParams
from tsp_pretrain.data.clips import ClipDataset, KeyBatches, check_samples, clip_keys
from tsp_pretrain.data.sampling import epoch_order, rank_batches, sample_clips
from tsp_pretrain.data.transforms import ClipTransform
from tsp_pretrain.models.loss import forward_and_loss
from tsp_pretrain.models.param_groups import param_groups
from tsp_pretrain.models.tsp import TSPModel
from tsp_pretrain.regions import BACKGROUND_LABEL_ID, FOREGROUND
from tsp_pretrain.runtime import amp_enabled, autocast, input_workers
from tsp_pretrain.training import distributed
from tsp_pretrain.training.checkpoint import forget_logged_steps, load_resumable, save_atomic
from tsp_pretrain.training.health import HEALTH_BLOCK, LossHistory, assess, warn_if_unhealthy
from tsp_pretrain.training.schedule import build_scheduler
from tsp_pretrain.video.store import FrameStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClipSource:
    """Where training clips come from: a frame store, the segments to sample in, what one clip is
    (frames, frame rate, crop) and each video's GVF, given when the model uses one
    (:attr:`~tsp_pretrain.models.tsp.TSPModel.uses_gvf`; the loss passes it on only then)."""

    store: FrameStore
    train_segments: pd.DataFrame
    valid_segments: pd.DataFrame
    clip: ClipSpec
    gvf: Mapping[str, torch.Tensor] | None = None


@dataclass(frozen=True)
class RunOutputs:
    """What a run writes and under which identity: the resumable checkpoint (resumed only when
    its ``fingerprint`` matches) and the dvclive folder."""

    checkpoint: Path
    live_dir: Path
    fingerprint: str


_SUM_KEYS = (
    "loss",
    "loss_action",
    "loss_region",
    "correct_action",
    "n_action",
    "correct_region",
    "n_region",
)


class _Sums:
    """Exact epoch accuracies from per-batch counts (batches differ in composition)."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = defaultdict(float)
        self.batches = 0

    def add(self, logs: dict[str, float]) -> None:
        self.batches += 1
        for key in ("loss", "loss_action", "loss_region"):
            if key in logs:
                self.sums[key] += logs[key]
        for key in ("correct_action", "n_action", "correct_region", "n_region"):
            if key in logs:
                self.sums[key] += logs[key]

    def reduced(self, ranks: distributed.Ranks, device: torch.device) -> _Sums:
        """The sums over all ranks (itself for one process)."""
        if not ranks.distributed:
            return self
        keys = [*_SUM_KEYS]
        values = [self.batches, *(self.sums.get(k, 0.0) for k in keys)]
        values += [float(k in self.sums) for k in keys]
        total = distributed.all_sum(values, ranks, device)
        out = _Sums()
        out.batches = int(total[0])
        sums, present = total[1 : 1 + len(keys)], total[1 + len(keys) :]
        out.sums.update({k: v for k, v, n in zip(keys, sums, present, strict=True) if n > 0})
        return out

    def result(self) -> dict[str, float]:
        out = {
            k: self.sums[k] / max(self.batches, 1)
            for k in ("loss", "loss_action", "loss_region")
            if k in self.sums
        }
        for head in ("action", "region"):
            if self.sums.get(f"n_{head}"):
                out[f"acc_{head}"] = self.sums[f"correct_{head}"] / self.sums[f"n_{head}"]
        return out


def _trained_segments(segments: pd.DataFrame, model: TSPModel) -> pd.DataFrame:
    """All segments (TSP), or the foreground ones only (TAC: :attr:`TSPModel.foreground_only`)."""
    return segments[segments["region"] == FOREGROUND] if model.foreground_only else segments


@dataclass
class _Run:
    """What the epoch loop works with, set up once by :func:`_setup`."""

    model: TSPModel  # the plain model (checkpoints, validation)
    net: torch.nn.Module  # what training runs: the model, or its DistributedDataParallel
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    loader: DataLoader
    batches: KeyBatches
    data: ClipSource
    train_segments: pd.DataFrame
    valid: pd.DataFrame  # the fixed validation clips
    params: OptimParams
    ranks: distributed.Ranks
    device: torch.device
    seed: int

    @property
    def workers(self) -> int:
        return self.loader.num_workers

    @property
    def loss_weights(self) -> dict[str, float]:
        """``alpha_action`` / ``alpha_region`` of the loss. ``train`` sets them; ``pretrain``
        (TAC, action term only) has no such keys and keeps the loss's 1.0."""
        return {name: getattr(self.params, name, 1.0) for name in ("alpha_action", "alpha_region")}


def _setup(
    model: TSPModel,
    data: ClipSource,
    params: OptimParams,
    *,
    ranks: distributed.Ranks,
    device: torch.device,
    seed: int,
) -> _Run:
    """Optimizer, per-iteration schedule, the one DataLoader and the validation clips."""
    model.to(device)
    train_segments = _trained_segments(data.train_segments, model)
    epoch_clips = _epoch_clips(train_segments, params, ranks)
    iters_per_epoch = max(epoch_clips // (params.batch_size * ranks.world_size), 1)
    optimizer = _optimizer(model, params, ranks)
    valid = sample_clips(
        _trained_segments(data.valid_segments, model),
        clip=data.clip,
        clips_per_segment=params.clips_per_segment,
        rng=None,
        lost=_lost(data),
    )
    check_samples(data.store, valid, data.gvf)
    batches = KeyBatches()
    workers = input_workers(params.workers, device, ranks.world_size)
    loader = _loader(data, batches, workers, pin_memory=device.type == "cuda")
    log.info(
        "%d training segments, %d clips per epoch, %d iterations per epoch, device %s, "
        "%d process(es), %d loader workers each",
        *(len(train_segments), epoch_clips, iters_per_epoch, device, ranks.world_size, workers),
    )
    return _Run(
        model=model,
        net=model,
        optimizer=optimizer,
        scheduler=_scheduler(optimizer, params, iters_per_epoch),
        scaler=torch.amp.GradScaler(device.type, enabled=amp_enabled(params.amp, device)),
        loader=loader,
        batches=batches,
        data=data,
        train_segments=train_segments,
        valid=valid,
        params=params,
        ranks=ranks,
        device=device,
        seed=seed,
    )


def _epoch_clips(
    train_segments: pd.DataFrame, params: OptimParams, ranks: distributed.Ranks
) -> int:
    """Clips per epoch; an error when they cannot give every process one."""
    if train_segments.empty:
        raise ValueError("no training segment to sample clips from (check the annotation report)")
    epoch_clips = len(train_segments) * params.clips_per_segment
    if epoch_clips < ranks.world_size:
        raise ValueError(
            f"{epoch_clips} training clips per epoch for {ranks.world_size} processes: every "
            "process needs at least one; use fewer processes"
        )
    return epoch_clips


def _optimizer(model: TSPModel, params: OptimParams, ranks: distributed.Ranks) -> torch.optim.SGD:
    """SGD over the three param groups; rates x the world size with ``scale_lr_by_world_size``."""
    scale = ranks.world_size if params.scale_lr_by_world_size else 1
    return torch.optim.SGD(
        param_groups(
            model,
            params.lr_stem * scale,
            params.lr_backbone * scale,
            params.lr_heads * scale,
            params.weight_decay,
        ),
        momentum=params.momentum,
    )


def _scheduler(
    optimizer: torch.optim.Optimizer, params: OptimParams, iters_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """The recipe's warm-up + step schedule, stepped every iteration."""
    return build_scheduler(
        optimizer,
        iters_per_epoch=iters_per_epoch,
        warmup_epochs=params.warmup_epochs,
        warmup_factor=params.warmup_factor,
        milestones=params.lr_milestones,
        gamma=params.lr_gamma,
    )


def _loader(data: ClipSource, batches: KeyBatches, workers: int, pin_memory: bool) -> DataLoader:
    """The run's one DataLoader: clips of ``data.clip`` with their video's GVF if ``data`` has
    one (their keys come from ``batches``)."""
    transform = ClipTransform(crop_size=data.clip.crop_size, layout=data.store.layout)
    return DataLoader(
        ClipDataset(data.store, data.clip.clip_len, transform, data.gvf),
        batch_sampler=batches,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=pin_memory,
        generator=torch.Generator(),  # not torch's global stream, which seeds the crops
    )


def _lost(data: ClipSource) -> dict:
    return {v: e.lost for v, e in data.store.entries.items() if e.lost}


def _on_device(run: _Run, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The loader's batch on the device, its clips made the model's input there (colour, flips,
    normalisation in one pass over the batch: :meth:`ClipTransform.to_model`)."""
    batch = {k: v.to(run.device, non_blocking=True) for k, v in batch.items()}
    batch["clips"] = run.loader.dataset.transform.to_model(batch["clips"], batch.pop("window"))
    return batch


def _epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """Torch's seed for the epoch's crops and flips; rank 0 keeps the single-process value."""
    return seed * 10_007 + epoch + 1_000_003 * rank


def _train_pass(run: _Run, epoch: int) -> None:
    """Put this rank's share of the epoch's fresh clips in the loader (and seed their crops)."""
    samples = sample_clips(
        run.train_segments,
        clip=run.data.clip,
        clips_per_segment=run.params.clips_per_segment,
        rng=np.random.default_rng([run.seed, epoch]),
        lost=_lost(run.data),
    )
    check_samples(run.data.store, samples, run.loader.dataset.gvf)
    if len(samples) < run.ranks.world_size:
        raise ValueError(
            f"epoch {epoch + 1}: {len(samples)} clips left after avoiding lost frames for "
            f"{run.ranks.world_size} processes: every process needs one; use fewer processes"
        )
    order = epoch_order(len(samples), run.seed * 10_007 + epoch)
    batches = rank_batches(
        order,
        world_size=run.ranks.world_size,
        rank=run.ranks.rank,
        batch_size=run.params.batch_size,
        drop_last=True,
    )
    global_batch = run.params.batch_size * run.ranks.world_size
    if len(samples) >= global_batch and len(samples) % global_batch:
        log.info(
            "epoch %d: %d of %d clips left out (the incomplete last global batch)",
            epoch + 1,
            len(samples) % global_batch,
            len(samples),
        )
    seeds = None
    if run.workers:
        entropy = [run.seed, epoch, run.ranks.rank]
        seeds = np.random.SeedSequence(entropy).generate_state(len(samples)).tolist()
    run.batches.set(clip_keys(samples, train=True, seeds=seeds), batches)
    torch.manual_seed(_epoch_seed(run.seed, epoch, run.ranks.rank))


def _train_step(run: _Run, batch: dict[str, torch.Tensor], epoch: int) -> dict[str, float]:
    """One optimizer step on ``batch`` (on the device); returns the loss's logs."""
    with autocast(run.device, run.params.amp):
        loss, logs = forward_and_loss(run.net, batch, **run.loss_weights)
    if not math.isfinite(logs["loss"]):
        raise FloatingPointError(
            f"epoch {epoch + 1}: loss is {logs['loss']}; lower the learning rates"
        )
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(loss).backward()
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.scheduler.step()
    return logs


def train_one_epoch(run: _Run, epoch: int, clips_seen: dict[str, int]) -> dict[str, float]:
    """One pass over this rank's share of the epoch's clips; returns the epoch's train metrics
    and adds the epoch's steps, clips and foreground clips (over all ranks) to ``clips_seen``."""
    _train_pass(run, epoch)
    run.net.train()
    sums, clips, fg_clips = _Sums(), 0, 0
    bar = tqdm(
        run.loader,
        desc=f"epoch {epoch + 1}/{run.params.epochs}",
        unit="batch",
        disable=not run.ranks.is_main,
    )
    for batch in bar:
        batch = _on_device(run, batch)
        logs = _train_step(run, batch, epoch)
        sums.add(logs)
        clips += int(batch["region"].numel())
        fg_clips += int((batch["action"] != BACKGROUND_LABEL_ID).sum())
        bar.set_postfix(loss=f"{logs['loss']:.3f}")
    distributed.broadcast_buffers(run.model, run.ranks)
    clips, fg_clips = distributed.all_sum([clips, fg_clips], run.ranks, run.device)
    clips_seen["steps"] += len(run.batches)
    clips_seen["clips"] += int(clips)
    clips_seen["fg_clips"] += int(fg_clips)
    return {f"train/{k}": v for k, v in sums.reduced(run.ranks, run.device).result().items()}


def validate(run: _Run) -> dict[str, float]:
    """Loss and per-head accuracies on the fixed validation clips (each rank its share)."""
    order = np.arange(len(run.valid))
    run.batches.set(
        clip_keys(run.valid, train=False),
        rank_batches(
            order,
            world_size=run.ranks.world_size,
            rank=run.ranks.rank,
            batch_size=run.params.batch_size,
            drop_last=False,
        ),
    )
    run.model.eval()  # not the DDP wrapper: ranks may have different numbers of batches here
    sums = _Sums()
    with torch.inference_mode(), autocast(run.device, run.params.amp):
        for batch in tqdm(
            run.loader, desc="  valid", leave=False, unit="batch", disable=not run.ranks.is_main
        ):
            batch = _on_device(run, batch)
            _, logs = forward_and_loss(run.model, batch, **run.loss_weights)
            sums.add(logs)
    return sums.reduced(run.ranks, run.device).result()


class _NoLive:
    """dvclive's place on ranks other than 0: they never write."""

    step = 0

    def log_metric(self, name: str, value: float, plot: bool = True) -> None:
        pass

    def next_step(self) -> None:
        pass


@contextmanager
def _live(live_dir: Path, start_epoch: int, ranks: distributed.Ranks) -> Iterator[Live | _NoLive]:
    if not ranks.is_main:
        yield _NoLive()
        return
    if start_epoch > 0:
        forget_logged_steps(live_dir, start_epoch)
    with Live(
        str(live_dir), resume=start_epoch > 0, dvcyaml=False, save_dvc_exp=False, report=None
    ) as live:
        if start_epoch > 0:
            live.step = start_epoch
        yield live


def _resume(
    run: _Run, checkpoint: Path, run_id: str
) -> tuple[int, dict[str, int], dict, LossHistory | None]:
    """(first epoch to run, clips seen, last metrics, loss history) from rank 0's checkpoint, if
    it matches; a fresh run has no history yet."""
    state = None
    if run.ranks.is_main:
        remove_partial_files(Path(checkpoint).parent)
        state = load_resumable(checkpoint, run_id)
    state = distributed.broadcast_object(state, run.ranks)
    if state is None:
        return 0, {"clips": 0, "fg_clips": 0, "steps": 0}, {}, None
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["lr_scheduler"])
    run.scaler.load_state_dict(state["scaler"])
    history = LossHistory.from_dict(state["history"])
    return state["epoch"] + 1, state["clips_seen"], state["metrics"], history


def validate_before_training(run: _Run) -> LossHistory:
    """Validate the initial model (encoder and fresh heads) on the fixed clips: where the
    validation loss starts. Eval mode, no gradient, centre crops: no state the training
    depends on changes (:mod:`~tsp_pretrain.training.health`); logged, never plotted, so the
    epochs keep their dvclive steps."""
    initial = validate(run)
    log.info(
        "before training (initial encoder, fresh heads): %s",
        ", ".join(f"valid/{k} {v:.4g}" for k, v in initial.items()),
    )
    return LossHistory(initial_valid=initial["loss"])


def train(
    model: TSPModel, data: ClipSource, params: OptimParams, outputs: RunOutputs, *, seed: int
) -> dict[str, float]:
    """Train ``model`` for ``params.epochs`` epochs, resuming from ``outputs.checkpoint`` if its
    fingerprint matches.

    The model's objective decides which segments are trained on (TAC: foreground only,
    :attr:`~tsp_pretrain.models.tsp.TSPModel.foreground_only`) and whether its clips carry
    ``data.gvf`` (:attr:`~tsp_pretrain.models.tsp.TSPModel.uses_gvf`). Returns the last epoch's
    metrics (also logged to dvclive under ``outputs.live_dir``, by rank 0). Under a launcher the
    checkpoint's fingerprint adds the world size: a run resumes only with as many processes.
    """
    with distributed.process_group(params.device) as (ranks, device):
        run = _setup(model, data, params, ranks=ranks, device=device, seed=seed)
        run_id = _run_id(outputs.fingerprint, ranks)
        start_epoch, clips_seen, metrics, history = _resume(run, outputs.checkpoint, run_id)
        run.net = distributed.wrap_model(model, ranks, device, sync_bn=params.sync_bn)
        if history is None:
            history = validate_before_training(run)
        with _live(outputs.live_dir, start_epoch, ranks) as live:
            for epoch in range(start_epoch, params.epochs):
                metrics = _epoch(run, epoch, clips_seen)
                history.add(metrics)
                _log_epoch(live, metrics, epoch, params.epochs)
                _log_health(live, assess(history))
                if ranks.is_main:
                    state = _state(run, epoch, clips_seen, metrics, run_id, history)
                    save_atomic(state, outputs.checkpoint)
                live.next_step()
    if start_epoch >= params.epochs:
        log.info(
            "all %d epochs were already done (checkpoint %s)", params.epochs, outputs.checkpoint
        )
    if ranks.is_main:
        warn_if_unhealthy(assess(history), params, str(Path(outputs.live_dir) / "metrics.json"))
    return metrics


def _run_id(fingerprint: str, ranks: distributed.Ranks) -> str:
    """The checkpoint's fingerprint: the run's, plus the world size under a launcher."""
    return fingerprint if ranks.world_size == 1 else f"{fingerprint}@{ranks.world_size}"


def _epoch(run: _Run, epoch: int, clips_seen: dict[str, int]) -> dict[str, float]:
    """Train one epoch, validate; the epoch's metrics (train, valid, lr, seen)."""
    metrics = train_one_epoch(run, epoch, clips_seen)
    metrics |= {f"valid/{k}": v for k, v in validate(run).items()}
    metrics |= {f"lr/{g['name']}": g["lr"] for g in run.optimizer.param_groups}
    metrics |= {f"seen/{k}": v for k, v in clips_seen.items()}
    return metrics


def _log_epoch(live: Live | _NoLive, metrics: dict[str, float], epoch: int, epochs: int) -> None:
    for name, value in metrics.items():
        live.log_metric(name, value)
    log.info(
        "epoch %d/%d: %s",
        epoch + 1,
        epochs,
        ", ".join(
            f"{k} {v:.4g}" for k, v in metrics.items() if "/" in k and not k.startswith("lr/")
        ),
    )


def _log_health(live: Live | _NoLive, health: dict[str, float]) -> None:
    """The ``health`` block of dvclive's summary (``metrics.json``), as of the last epoch; no
    plot (one value per run matters)."""
    for name, value in health.items():
        live.log_metric(f"{HEALTH_BLOCK}/{name}", value, plot=False)


def _state(
    run: _Run, epoch: int, clips_seen: dict, metrics: dict, run_id: str, history: LossHistory
) -> dict:
    return {
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "lr_scheduler": run.scheduler.state_dict(),
        "scaler": run.scaler.state_dict(),
        "epoch": epoch,
        "clips_seen": clips_seen,
        "metrics": metrics,
        "history": history.as_dict(),
        "fingerprint": run_id,
    }
