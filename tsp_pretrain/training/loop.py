"""The epoch loop shared by TSP/TAC fine-tuning and the demo's action pretraining.

One :func:`~tsp_pretrain.models.loss.forward_and_loss` serves training and validation. Each epoch
draws fresh clips (seeded by ``(seed, epoch)``, so a resumed run sees exactly the clips an
uninterrupted one would), trains, validates on fixed, evenly spaced clips, logs to dvclive and
writes a checkpoint. Mixed precision is used on CUDA; the device is chosen by
:func:`~tsp_pretrain.models.device.pick_device`.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from dvclive import Live
from torch.utils.data import DataLoader
from tqdm import tqdm

from tsp_pretrain.atomic import remove_partial_files
from tsp_pretrain.config import OptimParams
from tsp_pretrain.data.clips import ClipDataset
from tsp_pretrain.data.sampling import sample_clips
from tsp_pretrain.data.transforms import EvalPreset, TrainPreset
from tsp_pretrain.models.device import pick_device
from tsp_pretrain.models.loss import forward_and_loss
from tsp_pretrain.models.param_groups import param_groups
from tsp_pretrain.models.tsp import TSPModel
from tsp_pretrain.training.checkpoint import forget_logged_steps, load_resumable, save_atomic
from tsp_pretrain.training.schedule import build_scheduler
from tsp_pretrain.video.store import FrameStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClipSource:
    """Where training clips come from: a frame store and the segments to sample in."""

    store: FrameStore
    train_segments: pd.DataFrame
    valid_segments: pd.DataFrame
    clip_len: int
    frame_rate: float
    gvf: Mapping[str, torch.Tensor] | None = None

    @property
    def clip_seconds(self) -> float:
        return self.clip_len / self.frame_rate


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


def _trained_segments(segments: pd.DataFrame, foreground_only: bool) -> pd.DataFrame:
    """All segments (TSP), or the foreground ones only (TAC)."""
    return segments[segments["region"] == "foreground"] if foreground_only else segments


def _clip_loader(
    data: ClipSource,
    segments: pd.DataFrame,
    *,
    rng: np.random.Generator | None,
    preset: TrainPreset | EvalPreset,
    gvf: Mapping[str, torch.Tensor] | None,
    params: OptimParams,
    device: torch.device,
    seed: int,
) -> DataLoader:
    """One epoch's clips of ``segments`` (random starts with ``rng``, evenly spaced without)."""
    samples = sample_clips(
        segments,
        clips_per_segment=params.clips_per_segment,
        clip_seconds=data.clip_seconds,
        frame_rate=data.frame_rate,
        rng=rng,
        lost={v: e.lost for v, e in data.store.entries.items() if e.lost},
    )
    dataset = ClipDataset(data.store, samples, data.clip_len, preset, gvf)
    shuffle = rng is not None
    return DataLoader(
        dataset,
        batch_size=params.batch_size,
        shuffle=shuffle,
        drop_last=shuffle and len(dataset) >= params.batch_size,
        num_workers=params.workers,
        pin_memory=device.type == "cuda",
        generator=torch.Generator().manual_seed(seed),
    )


def _autocast(device: torch.device, amp: bool):
    return torch.autocast(device.type, dtype=torch.float16, enabled=amp and device.type == "cuda")


def validate(
    model: TSPModel,
    loader: DataLoader,
    device: torch.device,
    amp: bool,
    alpha_action: float,
    alpha_region: float,
) -> dict[str, float]:
    """Loss and per-head accuracies on the fixed validation clips."""
    model.eval()
    sums = _Sums()
    with torch.inference_mode(), _autocast(device, amp):
        for batch in tqdm(loader, desc="  valid", leave=False, unit="batch"):
            _, logs = forward_and_loss(model, batch, alpha_action, alpha_region)
            sums.add(logs)
    return sums.result()


def train(
    model: TSPModel,
    data: ClipSource,
    params: OptimParams,
    *,
    crop_size: int,
    checkpoint: Path,
    live_dir: Path,
    fingerprint: str,
    seed: int,
    foreground_only: bool,
    alpha_action: float = 1.0,
    alpha_region: float = 1.0,
) -> dict[str, float]:
    """Train ``model`` for ``params.epochs`` epochs, resuming from ``checkpoint`` if it matches.

    ``foreground_only`` (TAC) samples clips from foreground segments only. Returns the last
    epoch's metrics (also logged to dvclive under ``live_dir``).
    """
    device = pick_device(params.device)
    model.to(device)
    train_segments = _trained_segments(data.train_segments, foreground_only)
    if train_segments.empty:
        raise ValueError("no training segment to sample clips from (check the annotation report)")
    epoch_clips = len(train_segments) * params.clips_per_segment
    iters_per_epoch = max(epoch_clips // params.batch_size, 1)

    optimizer = torch.optim.SGD(
        param_groups(
            model, params.lr_stem, params.lr_backbone, params.lr_heads, params.weight_decay
        ),
        momentum=params.momentum,
    )
    scheduler = build_scheduler(
        optimizer,
        iters_per_epoch=iters_per_epoch,
        warmup_epochs=params.warmup_epochs,
        warmup_factor=params.warmup_factor,
        milestones=params.lr_milestones,
        gamma=params.lr_gamma,
    )
    scaler = torch.amp.GradScaler(device.type, enabled=params.amp and device.type == "cuda")
    start_epoch, clips_seen = 0, {"clips": 0, "fg_clips": 0, "steps": 0}
    metrics: dict[str, float] = {}
    remove_partial_files(Path(checkpoint).parent)
    state = load_resumable(checkpoint, fingerprint)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["lr_scheduler"])
        scaler.load_state_dict(state["scaler"])
        start_epoch, clips_seen = state["epoch"] + 1, state["clips_seen"]
        metrics = state["metrics"]

    train_preset = TrainPreset(crop_size=crop_size)
    gvf = data.gvf if model.uses_gvf else None
    valid_loader = _clip_loader(
        data,
        _trained_segments(data.valid_segments, foreground_only),
        rng=None,
        preset=EvalPreset(crop_size=crop_size),
        gvf=gvf,
        params=params,
        device=device,
        seed=seed,
    )
    log.info(
        "%d training segments, %d clips per epoch, %d iterations per epoch, device %s",
        len(train_segments),
        epoch_clips,
        iters_per_epoch,
        device,
    )

    if start_epoch > 0:
        forget_logged_steps(live_dir, start_epoch)
    with Live(
        str(live_dir), resume=start_epoch > 0, dvcyaml=False, save_dvc_exp=False, report=None
    ) as live:
        if start_epoch > 0:
            live.step = start_epoch
        for epoch in range(start_epoch, params.epochs):
            torch.manual_seed(seed * 10_007 + epoch)
            loader = _clip_loader(
                data,
                train_segments,
                rng=np.random.default_rng([seed, epoch]),
                preset=train_preset,
                gvf=gvf,
                params=params,
                device=device,
                seed=seed * 10_007 + epoch,
            )
            model.train()
            sums = _Sums()
            bar = tqdm(loader, desc=f"epoch {epoch + 1}/{params.epochs}", unit="batch")
            for batch in bar:
                with _autocast(device, params.amp):
                    loss, logs = forward_and_loss(model, batch, alpha_action, alpha_region)
                if not math.isfinite(logs["loss"]):
                    raise FloatingPointError(
                        f"epoch {epoch + 1}: loss is {logs['loss']}; lower the learning rates"
                    )
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                sums.add(logs)
                clips_seen["steps"] += 1
                clips_seen["clips"] += int(batch["region"].numel())
                clips_seen["fg_clips"] += int((batch["action"] >= 0).sum())
                bar.set_postfix(loss=f"{logs['loss']:.3f}")
            metrics = {f"train/{k}": v for k, v in sums.result().items()}
            metrics |= {
                f"valid/{k}": v
                for k, v in validate(
                    model, valid_loader, device, params.amp, alpha_action, alpha_region
                ).items()
            }
            metrics |= {f"lr/{g['name']}": g["lr"] for g in optimizer.param_groups}
            metrics |= {f"seen/{k}": v for k, v in clips_seen.items()}
            for name, value in metrics.items():
                live.log_metric(name, value)
            log.info(
                "epoch %d/%d: %s",
                epoch + 1,
                params.epochs,
                ", ".join(
                    f"{k} {v:.4g}"
                    for k, v in metrics.items()
                    if "/" in k and not k.startswith("lr/")
                ),
            )
            save_atomic(
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "lr_scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict(),
                    "epoch": epoch,
                    "clips_seen": clips_seen,
                    "metrics": metrics,
                    "fingerprint": fingerprint,
                },
                checkpoint,
            )
            live.next_step()
    if start_epoch >= params.epochs:
        log.info("all %d epochs were already done (checkpoint %s)", params.epochs, checkpoint)
    return metrics
