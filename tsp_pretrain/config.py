"""Typed view of ``params.yaml``.

Every section of ``params.yaml`` has one pydantic model here. Models forbid unknown keys and
check types, so a typo such as ``decode.worker: 4`` fails at load time with the key's dotted name
instead of being silently ignored. Models are frozen: derived values are properties, computed in
one place, never written back.

Stages call :func:`load_params` once and read only the sections they declare in ``dvc.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

# Autocast dtypes of extraction (tsp_pretrain.runtime.compute_dtype reads the same list).
Precision = Literal["auto", "float32", "float16", "bfloat16"]


@dataclass(frozen=True)
class ClipSpec:
    """One clip: ``clip_len`` consecutive frames of a video resampled to ``frame_rate`` fps,
    cropped to ``crop_size`` pixels square. Built once from the params (:attr:`Params.clip`) and
    passed down, so that every stage cuts clips the same way, counted in frames.
    """

    clip_len: int
    frame_rate: float
    crop_size: int

    @property
    def seconds(self) -> float:
        """Duration covered by one clip; segments shorter than this cannot hold a clip."""
        return self.clip_len / self.frame_rate


class ConfigError(ValueError):
    """A params file that cannot be used; the message names the file, the key and the problem."""


class Section(BaseModel):
    """Base of every params section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DemoParams(Section):
    """The built-in synthetic dataset (see :mod:`tsp_pretrain.demo`).

    ``runs`` maps a name to the folder the dataset is written to; DVC creates one stage
    ``demo@NAME`` per entry. Empty (the default, and every preset) means no demo stage at all,
    so that a full ``dvc repro`` or ``dvc exp run`` on your own data never builds the demo.
    """

    runs: dict[str, str] = Field(
        default_factory=dict,
        description="name -> output folder of stage demo@NAME (the demo: synthetic: data/demo)",
    )
    seed: int = Field(0, ge=0)
    num_train_videos: int = Field(40, ge=1)
    num_valid_videos: int = Field(24, ge=1)
    num_empty_videos: int = Field(3, ge=0, description="videos without any action, per subset")
    min_duration: float = Field(20.0, gt=0)
    max_duration: float = Field(40.0, gt=0)
    fps: int = Field(30, ge=1)
    size: int = Field(64, ge=16, description="frame width and height in pixels (even)")
    trimmed_per_class: int = Field(
        24, ge=2, description="trimmed clips per class (pretraining); >= 2: training and validation"
    )
    trimmed_duration: float = Field(3.0, gt=0)
    trimmed_valid_fraction: float = Field(
        0.2, gt=0, lt=1, description="share of each class's trimmed clips put in validation"
    )
    max_segments: int = Field(3, ge=1, description="actions per non-empty video: 1..max_segments")
    min_segment: float = Field(3.0, gt=0, description="shortest action segment (seconds)")
    max_segment: float = Field(10.0, gt=0, description="longest action segment (seconds)")
    min_gap: float = Field(
        2.0, gt=0, description="shortest background between actions, and at a video's free ends"
    )

    @model_validator(mode="after")
    def _check(self) -> DemoParams:
        if self.min_duration > self.max_duration:
            raise ValueError("min_duration must not exceed max_duration")
        if self.size % 2:
            raise ValueError("size must be even (libx264 with yuv420p refuses odd sizes)")
        if self.num_empty_videos >= min(self.num_train_videos, self.num_valid_videos):
            raise ValueError(
                "num_empty_videos must be smaller than the number of videos per subset"
            )
        if self.min_segment > self.max_segment:
            raise ValueError("min_segment must not exceed max_segment")
        if self.min_segment + 2 * self.min_gap > self.min_duration:
            raise ValueError(
                "min_duration must hold one action plus background on both sides "
                "(min_segment + 2 * min_gap)"
            )
        return self


AnnotationFormat = Literal["activitynet", "tsp_csv", "thumos14"]


class DatasetParams(Section):
    """Where one dataset's annotations and video files are, and in which format.

    ``annotations`` is the ActivityNet JSON file, the THUMOS14 annotation folder, or for
    ``tsp_csv`` the folder holding the CSV tables, with ``csv_files`` naming one per subset
    (e.g. ``{training: activitynet_v1-3_train_tsp_groundtruth.csv}``).
    """

    format: AnnotationFormat
    annotations: str = Field(description="annotation file or folder (a dvc dependency)")
    videos: str = Field(description="folder holding the video files")
    csv_files: dict[str, str] | None = Field(None, description="tsp_csv only: subset -> CSV name")
    labels: str | None = Field(None, description="optional label map: JSON list of class names")
    train_subset: str = "training"
    valid_subset: str = "validation"

    @model_validator(mode="after")
    def _check_csv_files(self) -> DatasetParams:
        if (self.format == "tsp_csv") != (self.csv_files is not None):
            raise ValueError("csv_files is required for format tsp_csv and only allowed there")
        return self

    def check_paths(self, name: str) -> None:
        """Fail with the param's name when a file is given where a folder is expected, or the
        reverse, or when a path does not exist (instead of a raw OS error deep in a parser).

        ``videos`` is checked by the videos manifest stage; here: ``annotations``, the
        ``csv_files`` inside it, and ``labels``.
        """
        folder_formats = {
            "thumos14": "the THUMOS14 annotation folder",
            "tsp_csv": "the folder holding the TSP CSV tables (csv_files names the files in it)",
        }
        expected = folder_formats.get(self.format, "the ActivityNet JSON file")
        _check_kind(
            self.annotations,
            f"datasets.{name}.annotations",
            self.format in folder_formats,
            expected,
        )
        for subset, file in (self.csv_files or {}).items():
            _check_kind(
                str(Path(self.annotations) / file),
                f"datasets.{name}.csv_files.{subset}",
                False,
                "a TSP ground-truth CSV file",
            )
        if self.labels is not None:
            _check_kind(
                self.labels,
                f"datasets.{name}.labels",
                False,
                "a JSON file holding a list of class names",
            )

    def annotation_source(self) -> str | dict[str, str]:
        """What the format's parser takes: a path, or for tsp_csv {subset: csv path}."""
        if self.csv_files is None:
            return self.annotations
        return {
            subset: str(Path(self.annotations) / name) for subset, name in self.csv_files.items()
        }


def _check_kind(path: str, param: str, folder: bool, expected: str) -> None:
    """Raise :class:`ConfigError` unless ``path`` exists and is a folder (or a file)."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(
            f"params: {param} = {path!r}: no such {'folder' if folder else 'file'}; "
            f"expected {expected}"
        )
    if p.is_dir() != folder:
        got = "a folder" if p.is_dir() else "a file"
        raise ConfigError(f"params: {param} = {path!r} is {got}; expected {expected}")


class AnnotationParams(Section):
    """How raw annotations become canonical segment tables."""

    min_background: float = Field(
        1.0, ge=0, description="background gaps shorter than this (seconds) are dropped"
    )
    duration_tolerance: float = Field(
        1.0, ge=0, description="report annotation/file durations that differ by more (seconds)"
    )
    workers: int = Field(4, ge=1, description="threads probing video files")
    max_missing_fraction: float = Field(
        0.5,
        ge=0,
        le=1,
        description="the stage fails when a subset has more than this share of its annotated "
        "videos without a usable file (missing or unreadable)",
    )


_Side = Annotated[int, Field(ge=8)]


class ShardedSection(Section):
    """A per-video stage that can be split over processes or machines (tsp_pretrain.sharding).

    With ``num_shards`` 1 the shard comes from torchrun's RANK / WORLD_SIZE or a SLURM array's
    task (docs/sharding.md).
    """

    shard: int = Field(0, ge=0, description="this process's shard, 0 .. num_shards - 1")
    num_shards: int = Field(1, ge=1, description="1: one process writes the whole output")

    @model_validator(mode="after")
    def _check_shard(self) -> ShardedSection:
        if self.shard >= self.num_shards:
            section = self.__class__.__name__.removesuffix("Params").lower()
            raise ValueError(f"{section}.shard {self.shard} must be < num_shards {self.num_shards}")
        return self


class DecodeParams(ShardedSection):
    """Frame decoding into the per-video frame store.

    Two size rules: ``short_side`` (default; aspect ratio kept) or ``frame_size: [H, W]``, which
    resizes every frame to exactly ``H x W``, aspect ratio not kept, as the official recipe does
    (128 x 171, then a 112 crop): features comparable with the released ones need
    ``frame_size: [128, 171]`` on 16:9 footage. Odd sides are allowed in both stores: 171 is the
    recipe's width, and rounding it to 172 would change the recipe; the mp4 store, whose
    yuv420p coding refuses odd sizes, codes such frames padded by one repeated column and crops it
    off when reading (:func:`tsp_pretrain.video.store.write_mp4`), so both stores hold exactly
    ``H x W``.
    """

    short_side: int = Field(
        128, ge=8, description="frames are resized so the short side is this (no frame_size)"
    )
    frame_size: tuple[_Side, _Side] | None = Field(
        None, description="[H, W]: every frame resized to exactly this (overrides short_side)"
    )
    method: Literal["official", "ffmpeg"] = Field(
        "official",
        description="official: the released TSP code's frames (30 fps standardisation rule, "
        "every 30/frame_rate-th frame, RGB bilinear resize without antialiasing); ffmpeg: one "
        "fps filter to frame_rate and FFmpeg's area scaling (antialiased; for tiny frames)",
    )
    store: Literal["npy", "mp4"] = "npy"
    mp4_crf: int = Field(18, ge=0, le=51, description="x264 CRF of the mp4 store (lower: larger)")
    mp4_pix_fmt: Literal["yuv420p", "yuv444p", "rgb24"] = Field(
        "yuv420p", description="pixel format of the mp4 store (docs/frame-store.md: fidelity)"
    )
    mp4_keyint: int = Field(
        8,
        ge=1,
        le=300,
        description="mp4 store only: a keyframe every this many frames (smaller: faster random "
        "clips, more bytes; docs/performance.md, input pipeline)",
    )
    workers: int = Field(2, ge=1)
    min_readable_fraction: float = Field(
        0.5,
        ge=0,
        le=1,
        description="a video with corrupt stretches is kept when at least this fraction decodes",
    )

    @property
    def stored_short_side(self) -> int | None:
        """The short side the store is decoded with: None when ``frame_size`` fixes the size, so
        that editing the unused ``short_side`` re-decodes nothing."""
        return None if self.frame_size is not None else self.short_side


class EncoderParams(Section):
    """Which backbone, and the weights of the initial encoder (stage ``init_encoder``).

    The initial encoder is what TSP/TAC training starts from and, in the extract-only route
    (``dvc repro extract@initial``), the encoder whose features are extracted.
    """

    # Defaults are the recipe's start (the presets' too); the demo's params.yaml sets its own.
    backbone: str = Field("r2plus1d_34", description="a name in tsp_pretrain.models.registry")
    weights: str = Field(
        "tsp:r2plus1d_34-tac_on_kinetics",
        description="KINETICS400_V1 (torchvision weights name), an official TSP release "
        "tsp:<backbone>-<release> (e.g. tsp:r2plus1d_34-tac_on_kinetics; the names are in "
        "tsp_pretrain.models.releases), a checkpoint path (keep it in models/weights/ so that "
        "DVC tracks it; stage pretrain@NAME writes NAME.pt there) or none",
    )
    crop_check: bool = Field(
        True,
        description="refuse a transform.crop_size other than the crop the encoder was trained "
        "at (tsp_pretrain.models.crop); false: use another crop on purpose",
    )


class TransformParams(Section):
    """Clip transforms shared by training (random crop + flip) and extraction (centre crop)."""

    crop_size: int = Field(112, ge=8, description="square crop from the stored frames")


class OptimParams(Section):
    """SGD with three parameter groups and the recipe's warm-up + step schedule.

    Schedules are in epochs and applied per iteration; learning rates are per group.
    """

    epochs: int = Field(8, ge=1)
    batch_size: int = Field(16, ge=1)
    clips_per_segment: int = Field(5, ge=1, description="clips drawn per segment per epoch")
    lr_stem: float = Field(0.0, ge=0, description="0 freezes the stem")
    lr_backbone: float = Field(1e-4, ge=0)
    lr_heads: float = Field(2e-3, ge=0)
    momentum: float = Field(0.9, ge=0)
    weight_decay: float = Field(0.005, ge=0)
    warmup_epochs: float = Field(2.0, ge=0)
    warmup_factor: float = Field(1e-5, gt=0, le=1)
    lr_milestones: tuple[int, ...] = Field((4, 6), description="epochs at which lr is multiplied")
    lr_gamma: float = Field(0.01, gt=0)
    workers: Annotated[int, Field(ge=0)] | Literal["auto"] = Field(
        "auto",
        description="DataLoader worker processes per training process; auto: "
        "tsp_pretrain.runtime.input_workers (0 on the CPU, up to 8 per process on CUDA)",
    )
    device: str = Field(
        "auto", description="auto, cpu, cuda or cuda:N (under several processes: cuda:LOCAL_RANK)"
    )
    amp: bool = Field(True, description="mixed precision (CUDA only)")
    processes: int = Field(
        1,
        ge=1,
        description="training processes on this machine (one per GPU); > 1 launches them with "
        "torch.distributed.run; ignored under torchrun, which sets the group itself",
    )
    scale_lr_by_world_size: bool = Field(
        True, description="multiply the learning rates by the number of processes (the recipe)"
    )
    sync_bn: bool = Field(False, description="SyncBatchNorm across processes (CUDA only)")

    @model_validator(mode="after")
    def _check_schedule(self) -> OptimParams:
        """A schedule must fit the epochs: a milestone at or after the last epoch never lowers
        the rate, and a warm-up as long as the run never reaches the set rates; both are
        typically left over after ``-S train.epochs=...``."""
        if list(self.lr_milestones) != sorted(set(self.lr_milestones)):
            raise ValueError("lr_milestones must be strictly increasing")
        outside = [m for m in self.lr_milestones if not 0 < m < self.epochs]
        if outside:
            raise ValueError(
                f"lr_milestones {list(self.lr_milestones)}: {outside} outside 1 .. epochs - 1 = "
                f"{self.epochs - 1} (epochs: {self.epochs}); a milestone at or after the last "
                "epoch never applies. Set lr_milestones within the epochs (e.g. [] for none), or "
                "more epochs"
            )
        if self.warmup_epochs >= self.epochs:
            raise ValueError(
                f"warmup_epochs {self.warmup_epochs} must be < epochs {self.epochs}: the run "
                "would end before its learning rates are reached"
            )
        return self


class PretrainParams(OptimParams):
    """Action pretraining on trimmed clips (the demo's stand-in for Kinetics): stage pretrain@NAME.

    ``runs`` maps a run name to a dataset under ``datasets``; DVC creates one stage
    ``pretrain@NAME`` per entry, which writes ``models/weights/NAME.pt`` (an ``encoder.weights``
    path). With no runs (``{}``, as in the presets), no pretraining stage exists and the pipeline
    needs no trimmed dataset. Runs share these hyper-parameters. The seed is separate from the
    top-level ``seed`` (the fine-tuning seed), so that changing that one reuses the same initial
    encoder, as a Kinetics checkpoint would be reused.
    """

    seed: int = 0
    runs: dict[str, str] = Field(
        default_factory=dict,
        description="run name -> dataset name; stage pretrain@NAME writes models/weights/NAME.pt "
        "(none by default; the demo's params.yaml has demo-tac: pretrain)",
    )


class TrainParams(OptimParams):
    """TSP/TAC fine-tuning on the target dataset (objective and gvf are top-level keys)."""

    alpha_action: float = Field(1.0, ge=0)
    alpha_region: float = Field(1.0, ge=0)
    gvf_pool: Literal["max", "avg"] = "max"
    gvf_file: str | None = Field(
        None,
        description="a GVF table (HDF5, one vector per video keyed by video file stem, e.g. the "
        "official r2plus1d_34-max_gvf.h5) used instead of pooling the initial encoder's "
        "features; keep it in data/gvf/ so that DVC tracks it",
    )


class ExtractParams(ShardedSection):
    """Sliding-window feature extraction."""

    stride: int = Field(16, ge=1, description="frames between clip starts")
    batch_size: int = Field(32, ge=1)
    device: str = "auto"
    # Extra copies of the features, rebuilt from the per-video .npy files after extraction
    # (see tsp_pretrain.features.outputs and docs/localizers.md).
    h5: bool = Field(False, description="also write features.hdf5, one dataset per video")
    fixed_length: int = Field(
        0, ge=0, description="0: off; L: also write resized_L/, every video resampled to L rows"
    )
    # Throughput (tsp_pretrain.features.extract; docs/performance.md). None changes the features
    # on the CPU; on CUDA, dtype float16/bfloat16 and channels_last_3d change them slightly.
    workers: int | Literal["auto"] = Field(
        "auto",
        description="input processes; auto: tsp_pretrain.runtime.input_workers (0 on "
        "the CPU, up to 8 per GPU process on CUDA)",
    )
    dtype: Precision = Field(
        "auto", description="autocast dtype; auto: float16 on CUDA, float32 (no autocast) on CPU"
    )
    channels_last_3d: bool = Field(False, description="channels-last 3D memory format (CUDA)")

    @model_validator(mode="after")
    def _check_workers(self) -> ExtractParams:
        if isinstance(self.workers, int) and self.workers < 0:
            raise ValueError(f"extract.workers must be >= 0 or 'auto', got {self.workers}")
        return self


class EvaluateParams(Section):
    """Foreground/background separability probes."""

    fg_threshold: float = Field(0.5, gt=0, le=1, description="fg fraction making a clip fg")
    n_bootstrap: int = Field(
        2000, ge=100, description="bootstrap resamples of the validation videos (every interval)"
    )
    num_timeline_videos: int = Field(4, ge=1)


class LocalizeParams(Section):
    """The localization read-out (tsp_pretrain.localization.readout) and its evaluation.

    Defaults were fixed before any validation score was seen (and are not tuned on it): they
    follow the common choices of TAG grouping and of BMN / ActionFormer post-processing.
    """

    tiou: Literal["activitynet", "thumos14"] = Field(
        "activitynet", description="detection tIoU thresholds: 0.5:0.05:0.95 or 0.3:0.1:0.7"
    )
    smoothing: float = Field(
        1.0, ge=0, description="seconds: Gaussian sigma smoothing the actionness; 0: none"
    )
    thresholds: list[Annotated[float, Field(gt=0, lt=1)]] = Field(
        default_factory=lambda: [round(0.1 * k, 1) for k in range(1, 10)],
        min_length=1,
        description="actionness levels; each run of clips at or above one is a candidate",
    )
    score: Literal["contrast", "inner"] = Field(
        "contrast",
        description="candidate score: contrast = (1 + inner mean - outer mean) / 2; inner = mean",
    )
    margin: float = Field(
        0.25, gt=0, description="outer region of the contrast, each side, x segment length"
    )
    nms: Literal["soft", "hard"] = "soft"
    soft_sigma: float = Field(0.5, gt=0, description="soft-NMS: score x exp(-tIoU^2 / sigma)")
    nms_threshold: float = Field(0.5, gt=0, le=1, description="hard NMS: drop above this tIoU")
    max_proposals: int = Field(100, ge=1, description="proposals kept per video")
    top_classes: int = Field(2, ge=1, description="classes per proposal in the detections")


class Params(Section):
    """The whole ``params.yaml``."""

    clip_len: int = Field(16, ge=1, description="frames per clip")
    frame_rate: float = Field(15.0, gt=0, description="clips are sampled at this fps")
    gvf: bool = True
    objective: Literal["tsp", "tac"] = "tsp"
    seed: int = 0
    demo: DemoParams = DemoParams()
    datasets: dict[str, DatasetParams] = Field(default_factory=dict)
    annotations: AnnotationParams = AnnotationParams()
    decode: DecodeParams = DecodeParams()
    transform: TransformParams = TransformParams()
    encoder: EncoderParams = EncoderParams()
    pretrain: PretrainParams = PretrainParams()
    train: TrainParams = TrainParams()
    extract: ExtractParams = ExtractParams()
    evaluate: EvaluateParams = EvaluateParams()
    localize: LocalizeParams = LocalizeParams()

    @model_validator(mode="after")
    def _check_pretrain_runs(self) -> Params:
        for run, dataset in self.pretrain.runs.items():
            if dataset not in self.datasets:
                known = ", ".join(sorted(self.datasets)) or "(none)"
                raise ValueError(
                    f"pretrain.runs.{run} names dataset {dataset!r}, which is not under "
                    f"'datasets' (known: {known})"
                )
        return self

    def check_inputs(self) -> list[str]:
        """Check every path a dataset names (:meth:`DatasetParams.check_paths`), except those a
        stage of the pipeline writes (inside a ``demo.runs`` folder); returns what was checked.

        Stage ``check`` runs this before anything else: a missing annotation file is then an
        error naming its param, instead of DVC's missing-dependency error naming only the path.
        """
        made = [Path(folder) for folder in self.demo.runs.values()]
        checked = []
        for name, dataset in sorted(self.datasets.items()):
            if any(Path(dataset.annotations).is_relative_to(folder) for folder in made):
                continue
            dataset.check_paths(name)
            checked.append(f"datasets.{name}")
        return checked

    @property
    def clip(self) -> ClipSpec:
        """What one clip is, for every stage that cuts clips (training, extraction)."""
        return ClipSpec(self.clip_len, self.frame_rate, self.transform.crop_size)

    def dataset(self, name: str) -> DatasetParams:
        """The named dataset, or an error listing the names that exist."""
        try:
            return self.datasets[name]
        except KeyError:
            known = ", ".join(sorted(self.datasets)) or "(none)"
            raise ConfigError(
                f"params: no dataset named {name!r} under 'datasets' (known: {known})"
            ) from None


def _format_errors(path: Path, err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key (a typo? remove it or fix its name)")
        elif isinstance(e.get("input"), dict):  # a whole section: its message names the keys
            lines.append(f"  {key}: {e['msg'].removeprefix('Value error, ')}")
        else:
            lines.append(f"  {key}: {e['msg']} (got {e.get('input')!r})")
    return (
        f"{path}: invalid parameters:\n" + "\n".join(lines) + f"\n{_EXP_RUN_NOTE.format(path=path)}"
    )


# `dvc exp run -S key=value` writes the value into params.yaml before any stage runs and leaves
# it there when a stage refuses it (DVC 3 behaviour): say how to get the committed file back.
_EXP_RUN_NOTE = (
    "(if `dvc exp run -S` set this value, {path} still holds it: `git checkout {path}` restores "
    "the committed one)"
)


def parse_params(data: dict, source: str | Path = "params.yaml") -> Params:
    """Validate an already-loaded params mapping."""
    try:
        return Params.model_validate(data or {})
    except ValidationError as err:
        raise ConfigError(_format_errors(Path(source), err)) from None


def load_params(path: str | Path = "params.yaml") -> Params:
    """Load and validate ``params.yaml``; raises :class:`ConfigError` naming the bad keys."""
    path = Path(path)
    try:
        with path.open() as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found (run from the repository root)") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level")
    return parse_params(data, path)
