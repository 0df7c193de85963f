"""GPU check: how many clips per second does TSP training and feature extraction run at here?

One command, on the chosen device, with random clips (no dataset needed):

(a) a short TSP training: the TSP model with both heads and the GVF
    (:func:`tsp_pretrain.models.build_tsp_model`), SGD with the recipe's three parameter groups,
    :func:`tsp_pretrain.models.forward_and_loss`, the recipe's batch of 32 clips of 16 x 112 x 112,
    mixed precision on CUDA (float16 with a gradient scaler; ``--bf16``: bfloat16, no scaler);
(b) extraction: the encoder's forward pass in inference mode, batch 32.

Each is timed twice on the same pre-made batches, after ``--warmup`` untimed steps:
``model only`` (the batches already on the device: the model's own speed, no input pipeline) and
``with transfer`` (the batches in pinned host memory, copied to the device every step, as a
DataLoader with ``pin_memory=True`` delivers them). Their ratio says what the copy costs; the
``model only`` figure is the rate the data loader workers must sustain (docs/gpu.md turns it into
a number of CPU cores). On CUDA it also prints the peak GPU memory of each phase.

Output: a header, then one ``key: value`` line per figure (``train.model_only_clips_per_s``,
``train.with_transfer_clips_per_s``, ``train.transfer_ratio``, the same for ``extract``, and
``*.peak_gpu_memory_gib`` on CUDA), so that scripts can parse it.

    python bench/gpu_check.py                      # CUDA if present, default backbone, AMP on
    python bench/gpu_check.py --backbone r2plus1d_18 --no-amp --steps 50
    python bench/gpu_check.py --tiny --device cpu  # seconds on a CPU: checks the script itself

The default backbone is the recipe's ``r2plus1d_34`` when the backbone registry has it, else
``r2plus1d_18`` (the header says which). Weights are random: speed and memory do not depend on
them.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from tsp_pretrain.models import BACKBONES, build_tsp_model, forward_and_loss, param_groups
from tsp_pretrain.models.device import pick_device

#: The recipe's backbone, used by default when the registry has it.
RECIPE_BACKBONE = "r2plus1d_34"
FALLBACK_BACKBONE = "r2plus1d_18"
NUM_CLASSES = 200  # ActivityNet


def default_backbone() -> str:
    """``r2plus1d_34`` if registered, else ``r2plus1d_18``."""
    return RECIPE_BACKBONE if RECIPE_BACKBONE in BACKBONES else FALLBACK_BACKBONE


def make_batches(
    count: int, batch: int, clip: tuple[int, int, int], feature_dim: int, seed: int = 0
) -> list[dict[str, torch.Tensor]]:
    """``count`` random training batches in host memory (pinned when CUDA exists).

    Clips are float32 ``B x 3 x T x H x W`` (what the transform hands the model); about a third
    of the clips are background (action -1, region 0), as in TSP's balanced sampling.
    """
    gen = torch.Generator().manual_seed(seed)
    pin = torch.cuda.is_available()
    out = []
    for _ in range(count):
        region = (torch.rand(batch, generator=gen) > 0.33).long()
        action = torch.randint(0, NUM_CLASSES, (batch,), generator=gen)
        action[region == 0] = -1
        item = {
            "clips": torch.randn(batch, 3, *clip, generator=gen),
            "action": action,
            "region": region,
            "gvf": torch.randn(batch, feature_dim, generator=gen),
        }
        out.append({k: v.pin_memory() if pin else v for k, v in item.items()})
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rate(
    step: Callable[[dict], None], batches: list[dict], steps: int, warmup: int, device
) -> float:
    """Clips per second of ``steps`` calls of ``step`` cycling over ``batches``, after warm-up."""
    for i in range(warmup):
        step(batches[i % len(batches)])
    _sync(device)
    start = time.perf_counter()
    for i in range(steps):
        step(batches[i % len(batches)])
    _sync(device)
    return steps * batches[0]["clips"].shape[0] / (time.perf_counter() - start)


def run(args: argparse.Namespace) -> dict[str, float]:
    """Measure and print; returns the figures by key."""
    device = pick_device(args.device)
    amp = args.amp and device.type == "cuda"
    dtype = torch.bfloat16 if args.bf16 else torch.float16
    clip = (4, 32, 32) if args.tiny else (16, 112, 112)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as training would: fixed input size
    model = build_tsp_model(args.backbone, NUM_CLASSES, objective="tsp", gvf=True, seed=0)
    model.to(device)
    optimizer = torch.optim.SGD(param_groups(model, 0.0, 1e-4, 2e-3, 0.005), lr=1e-4, momentum=0.9)
    scaler = torch.amp.GradScaler(device.type, enabled=amp and dtype == torch.float16)

    def autocast():
        return torch.autocast(device.type, dtype=dtype, enabled=amp)

    def train_step(batch: dict) -> None:
        with autocast():
            loss, _ = forward_and_loss(model, batch)  # moves host tensors to the device
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    def extract_step(batch: dict) -> None:
        with torch.inference_mode(), autocast():
            model.encode(batch["clips"].to(device, non_blocking=True))

    host = make_batches(2, args.batch_size, clip, model.feature_dim)
    on_device = [{k: v.to(device) for k, v in b.items()} for b in host]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(
        f"device: {device} ({name})"
        f", torch {torch.__version__}, backbone {args.backbone}"
        f"{'' if args.backbone_given else ' (default)'}"
        f"{'' if RECIPE_BACKBONE in BACKBONES else f'; {RECIPE_BACKBONE} is not registered'}"
        f", batch {args.batch_size} x 3 x {' x '.join(map(str, clip))}"
        f", mixed precision: {str(dtype).removeprefix('torch.') if amp else 'off'}"
        f", {args.steps} timed steps after {args.warmup} warm-up"
    )
    figures: dict[str, float] = {}
    for phase, step in (("train", train_step), ("extract", extract_step)):
        model.train(phase == "train")
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        alone = _rate(step, on_device, args.steps, args.warmup, device)
        moved = _rate(step, host, args.steps, args.warmup, device)
        figures[f"{phase}.model_only_clips_per_s"] = alone
        figures[f"{phase}.with_transfer_clips_per_s"] = moved
        figures[f"{phase}.transfer_ratio"] = moved / alone
        if device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(device) / 2**30
            figures[f"{phase}.peak_gpu_memory_gib"] = peak
    for key, value in figures.items():
        print(f"{key}: {value:.3f}")
    return figures


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--backbone", help=f"default: {default_backbone()}")
    parser.add_argument(
        "--amp", action=argparse.BooleanOptionalAction, default=True, help="CUDA only"
    )
    parser.add_argument("--bf16", action="store_true", help="bfloat16 instead of float16")
    parser.add_argument("--steps", type=int, help="timed steps per measurement (default 20)")
    parser.add_argument("--warmup", type=int, help="untimed steps first (default 5)")
    parser.add_argument("--batch-size", type=int, help="default 32 (the recipe's)")
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="r2plus1d_tiny, batch 4 of 4 x 32 x 32, 2 steps: seconds on a CPU",
    )
    args = parser.parse_args(argv)
    args.backbone_given = args.backbone is not None or args.tiny
    tiny = {"backbone": "r2plus1d_tiny", "steps": 2, "warmup": 1, "batch_size": 4}
    full = {"backbone": default_backbone(), "steps": 20, "warmup": 5, "batch_size": 32}
    for key, value in (tiny if args.tiny else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    for key in ("steps", "batch_size"):
        if getattr(args, key) < 1:
            parser.error(f"--{key.replace('_', '-')} must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    run(parse_args(argv))


if __name__ == "__main__":
    main()
