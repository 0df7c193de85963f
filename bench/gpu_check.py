"""GPU check: how many clips per second does TSP training and feature extraction run at here, and
what does the input side cost on the device?

One command, on the chosen device, with random clips (no dataset needed):

(a) ``train``: a short TSP training: the TSP model with both heads and the GVF
    (:func:`tsp_pretrain.models.build_tsp_model`), SGD with the recipe's three parameter groups,
    :func:`tsp_pretrain.models.forward_and_loss`, the recipe's batch of 32 clips of
    16 x 112 x 112, mixed precision on CUDA (float16 with a gradient scaler; ``--bf16``:
    bfloat16, no scaler);
(b) ``extract``: the encoder's forward pass in inference mode, batch 32;
(c) ``input``: the device's share of the input pipeline alone, no model.

(a) and (b) are each timed twice on the same two pre-made batches, after ``--warmup`` untimed
steps:

- ``model only``: float batches already on the device (the model's own speed, no input pipeline);
- ``with transfer``: what the DataLoader now delivers, in pinned host memory: uint8 clips cropped
  in the frame store's pixel layout (``--layout``: ``yuv420p``, the mp4 store's, by default;
  ``rgb``, the npy store's) and each clip's ``[top, left, flip]`` window (drawn by
  :meth:`ClipTransform.window <tsp_pretrain.data.transforms.ClipTransform.window>` in frames of
  128 x 171, the recipe's); every step copies them to the device (``non_blocking``), makes the
  model's input there (:meth:`ClipTransform.to_model`: colour, flips, scale, normalisation), then
  runs the model step, as the training loop and extraction do.

Their ratio says what the copy and ``to_model`` cost. (c) times, for both layouts, ``to_model``
on batches already on the device and, alone, the host-to-device copy of the uint8 batch (clips and
windows, from pinned memory); it also gives the bytes one clip crosses as uint8 in each layout
against those of the float32 clip the workers used to send. On CUDA it also prints the peak GPU
memory of each phase.

The ``model only`` training figure is the rate the DataLoader workers must sustain; the clips per
second one worker reads and crops comes from ``bench/input_pipeline.py``, and docs/gpu.md turns
the two into a number of CPU cores.

Output: a header, then one ``key: value`` line per figure, so that scripts can parse it:
``train.model_only_clips_per_s``, ``train.with_transfer_clips_per_s``, ``train.transfer_ratio``,
the same for ``extract``, then ``input.to_model_<layout>_clips_per_s``,
``input.copy_<layout>_clips_per_s`` and ``input.bytes_per_clip_<layout>`` for ``rgb`` and
``yuv420p``, ``input.bytes_per_clip_float32``, and ``*.peak_gpu_memory_gib`` on CUDA.

    python bench/gpu_check.py                      # CUDA if present, default backbone, AMP on
    python bench/gpu_check.py --backbone r2plus1d_18 --no-amp --steps 50
    python bench/gpu_check.py --layout rgb         # transfer phases fed as from the npy store
    python bench/gpu_check.py --tiny --device cpu  # seconds on a CPU: checks the script itself

The default backbone is the recipe's ``r2plus1d_34`` when the backbone registry has it, else
``r2plus1d_18`` (the header says which). Weights and pixels are random: speed and memory do not
depend on them.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from tsp_pretrain.data.transforms import ClipTransform
from tsp_pretrain.models import BACKBONES, build_tsp_model, forward_and_loss, param_groups
from tsp_pretrain.runtime import amp_enabled, pick_device
from tsp_pretrain.video.colour import packed_shape

#: The recipe's backbone, used by default when the registry has it.
RECIPE_BACKBONE = "r2plus1d_34"
FALLBACK_BACKBONE = "r2plus1d_18"
NUM_CLASSES = 200  # ActivityNet
#: The frame store's frames at the recipe's ``decode.frame_size``: where the crops are drawn.
FRAME_HEIGHT, FRAME_WIDTH = 128, 171
#: The layouts of the input phase: the npy store's and the mp4 store's default.
LAYOUTS = ("rgb", "yuv420p")

Batch = dict[str, torch.Tensor]


def default_backbone() -> str:
    """``r2plus1d_34`` if registered, else ``r2plus1d_18``."""
    return RECIPE_BACKBONE if RECIPE_BACKBONE in BACKBONES else FALLBACK_BACKBONE


def make_windows(transform: ClipTransform, batch: int, seed: int) -> torch.Tensor:
    """``batch x 3`` training windows (``[top, left, flip]``) in 128 x 171 frames, from torch's
    random stream seeded with ``seed``, as a loader worker draws them."""
    torch.manual_seed(seed)
    return torch.stack([transform.window(True, FRAME_HEIGHT, FRAME_WIDTH) for _ in range(batch)])


def make_stored_clips(
    layout: str, batch: int, clip: tuple[int, int, int], gen: torch.Generator
) -> torch.Tensor:
    """Random uint8 cropped clips in ``layout``: ``B x T x`` :func:`packed_shape`."""
    frames, size = clip[0], clip[1]
    shape = (batch, frames, *packed_shape(layout, size))
    return torch.randint(0, 256, shape, dtype=torch.uint8, generator=gen)


def make_labels(batch: int, feature_dim: int, gen: torch.Generator) -> Batch:
    """Targets and GVF features; about a third of the clips are background (action -1, region 0),
    as in TSP's balanced sampling."""
    region = (torch.rand(batch, generator=gen) > 0.33).long()
    action = torch.randint(0, NUM_CLASSES, (batch,), generator=gen)
    action[region == 0] = -1
    gvf = torch.randn(batch, feature_dim, generator=gen)
    return {"action": action, "region": region, "gvf": gvf}


def make_clip_batches(
    count: int, batch: int, clip: tuple[int, int, int], layout: str, seed: int = 0
) -> list[Batch]:
    """``count`` batches of what the DataLoader delivers for the clips, in host memory (pinned
    when CUDA exists): uint8 ``clips`` cropped in ``layout`` and their ``window`` (``B x 3``);
    ``clip`` is ``T x crop x crop``."""
    gen = torch.Generator().manual_seed(seed)
    transform = ClipTransform(crop_size=clip[1], layout=layout)
    pin = torch.cuda.is_available()
    out = []
    for k in range(count):
        item = {
            "clips": make_stored_clips(layout, batch, clip, gen),
            "window": make_windows(transform, batch, seed * 1_000 + k),
        }
        out.append({key: v.pin_memory() if pin else v for key, v in item.items()})
    return out


def make_batches(
    count: int,
    batch: int,
    clip: tuple[int, int, int],
    feature_dim: int,
    layout: str = "yuv420p",
    seed: int = 0,
) -> list[Batch]:
    """``count`` random training batches as the DataLoader delivers them: those of
    :func:`make_clip_batches` with labels and GVF features (pinned when CUDA exists)."""
    gen = torch.Generator().manual_seed(seed + 1)
    pin = torch.cuda.is_available()
    out = []
    for item in make_clip_batches(count, batch, clip, layout, seed):
        labels = make_labels(batch, feature_dim, gen)
        out.append(item | {k: v.pin_memory() if pin else v for k, v in labels.items()})
    return out


def to_device(batch: Batch, device: torch.device, copy: bool = False) -> Batch:
    """``batch`` copied to ``device`` (asynchronously from pinned memory)."""
    return {k: v.to(device, non_blocking=True, copy=copy) for k, v in batch.items()}


def model_input(batch: Batch, device: torch.device, transform: ClipTransform) -> Batch:
    """A delivered batch on the device, its clips the model's float input (``window`` consumed):
    what the training loop's ``_on_device`` does."""
    moved = to_device(batch, device)
    moved["clips"] = transform.to_model(moved["clips"], moved.pop("window"))
    return moved


def _sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rate(
    step: Callable[[Batch], object],
    batches: list[Batch],
    steps: int,
    warmup: int,
    device: torch.device,
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


def _reset_peak(device: torch.device) -> None:
    """Start a phase's peak GPU memory (CUDA only)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _peak(figures: dict[str, float], phase: str, device: torch.device) -> None:
    """Record the phase's peak GPU memory (CUDA only)."""
    if device.type == "cuda":
        figures[f"{phase}.peak_gpu_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30


class Steps:
    """The model steps of the ``train`` and ``extract`` phases, each on float batches already on
    the device (``model only``) or on delivered batches (``with transfer``)."""

    def __init__(
        self, args: argparse.Namespace, device: torch.device, transform: ClipTransform
    ) -> None:
        self.device, self.transform = device, transform
        self.amp = amp_enabled(args.amp, device)
        self.dtype = torch.bfloat16 if args.bf16 else torch.float16
        self.model = build_tsp_model(args.backbone, NUM_CLASSES, objective="tsp", gvf=True, seed=0)
        self.model.to(device)
        groups = param_groups(self.model, 0.0, 1e-4, 2e-3, 0.005)
        self.optimizer = torch.optim.SGD(groups, lr=1e-4, momentum=0.9)
        fp16 = self.amp and self.dtype == torch.float16
        self.scaler = torch.amp.GradScaler(device.type, enabled=fp16)

    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=self.dtype, enabled=self.amp)

    def train(self, batch: Batch) -> None:
        """One SGD step on float clips on the device."""
        with self._autocast():
            loss, _ = forward_and_loss(self.model, batch)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()

    def train_delivered(self, batch: Batch) -> None:
        """Copy, ``to_model``, then the SGD step (the training loop)."""
        self.train(model_input(batch, self.device, self.transform))

    def extract(self, batch: Batch) -> None:
        """The encoder on float clips on the device."""
        with torch.inference_mode(), self._autocast():
            self.model.encode(batch["clips"])

    def extract_delivered(self, batch: Batch) -> None:
        """Copy clips and windows, ``to_model``, then the encoder (``encode_batch``)."""
        with torch.inference_mode():
            clips = batch["clips"].to(self.device, non_blocking=True)
            windows = batch["window"].to(self.device, non_blocking=True)
            clips = self.transform.to_model(clips, windows)
            with self._autocast():
                self.model.encode(clips)


def model_phases(
    steps: Steps, host: list[Batch], args: argparse.Namespace, device: torch.device
) -> dict[str, float]:
    """``train`` and ``extract``: model only against with transfer."""
    on_device = [model_input(b, device, steps.transform) for b in host]
    figures: dict[str, float] = {}
    phases = (
        ("train", steps.train, steps.train_delivered),
        ("extract", steps.extract, steps.extract_delivered),
    )
    for phase, alone_step, moved_step in phases:
        steps.model.train(phase == "train")
        _reset_peak(device)
        alone = _rate(alone_step, on_device, args.steps, args.warmup, device)
        moved = _rate(moved_step, host, args.steps, args.warmup, device)
        figures[f"{phase}.model_only_clips_per_s"] = alone
        figures[f"{phase}.with_transfer_clips_per_s"] = moved
        figures[f"{phase}.transfer_ratio"] = moved / alone
        _peak(figures, phase, device)
    return figures


def layout_figures(
    layout: str, args: argparse.Namespace, clip: tuple[int, int, int], device: torch.device
) -> dict[str, float]:
    """One layout's ``input`` figures: ``to_model`` on batches already on the device, the copy of
    the uint8 batch (clips and windows) alone, and the bytes of one uint8 clip."""
    transform = ClipTransform(crop_size=clip[1], layout=layout)
    host = make_clip_batches(2, args.batch_size, clip, layout)
    on_device = [to_device(b, device) for b in host]

    def convert(batch: Batch) -> torch.Tensor:
        return transform.to_model(batch["clips"], batch["window"])

    def copy(batch: Batch) -> Batch:
        return to_device(batch, device, copy=True)  # a real copy on the CPU too

    with torch.inference_mode():
        to_model = _rate(convert, on_device, args.steps, args.warmup, device)
    copied = _rate(copy, host, args.steps, args.warmup, device)
    clips = host[0]["clips"]
    return {
        f"input.to_model_{layout}_clips_per_s": to_model,
        f"input.copy_{layout}_clips_per_s": copied,
        f"input.bytes_per_clip_{layout}": clips[0].numel() * clips.element_size(),
    }


def input_phase(
    args: argparse.Namespace, clip: tuple[int, int, int], device: torch.device
) -> dict[str, float]:
    """``input``: :func:`layout_figures` for each layout, and the bytes of the float32 clip the
    workers used to send."""
    _reset_peak(device)
    figures: dict[str, float] = {}
    for layout in LAYOUTS:
        figures.update(layout_figures(layout, args, clip, device))
    figures["input.bytes_per_clip_float32"] = 3 * clip[0] * clip[1] * clip[2] * 4
    _peak(figures, "input", device)
    return figures


def _header(
    args: argparse.Namespace, device: torch.device, steps: Steps, clip: tuple[int, int, int]
) -> str:
    """The first line: device, torch, backbone, batch, layout, precision, steps."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    return (
        f"device: {device} ({name})"
        f", torch {torch.__version__}, backbone {args.backbone}"
        f"{'' if args.backbone_given else ' (default)'}"
        f"{'' if RECIPE_BACKBONE in BACKBONES else f'; {RECIPE_BACKBONE} is not registered'}"
        f", batch {args.batch_size} x 3 x {' x '.join(map(str, clip))}"
        f", transfer of uint8 {args.layout} crops of {FRAME_HEIGHT} x {FRAME_WIDTH} frames"
        f", mixed precision: {str(steps.dtype).removeprefix('torch.') if steps.amp else 'off'}"
        f", {args.steps} timed steps after {args.warmup} warm-up"
    )


def run(args: argparse.Namespace) -> dict[str, float]:
    """Measure and print; returns the figures by key."""
    device = pick_device(args.device)
    clip = (4, 32, 32) if args.tiny else (16, 112, 112)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as training would: fixed input size
    transform = ClipTransform(crop_size=clip[1], layout=args.layout)
    steps = Steps(args, device, transform)
    host = make_batches(2, args.batch_size, clip, steps.model.feature_dim, layout=args.layout)
    print(_header(args, device, steps, clip))
    figures = model_phases(steps, host, args, device)
    figures.update(input_phase(args, clip, device))
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
    parser.add_argument(
        "--layout",
        choices=LAYOUTS,
        default="yuv420p",
        help="pixel layout of the clips the 'with transfer' phases copy: yuv420p (the mp4 "
        "store's default) or rgb (the npy store's); the input phase measures both",
    )
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
