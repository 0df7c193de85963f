"""Training health: did fine-tuning make the model better on its own validation clips?

A run with bad learning rates can finish without an error and leave an encoder worse than the
one it started from (a user's 2 epochs: train loss 1.65 -> 2.84, within-video AUC 0.93 -> 0.55).
Nothing in the epoch log says so unless someone reads the numbers; this module reads them.

**Where the validation loss "started".** Before the first step the loop validates the initial
encoder with its freshly initialised heads (:func:`tsp_pretrain.training.loop.train`), on the
same fixed clips as every epoch. That pass changes nothing the training depends on: it runs in
eval mode (BatchNorm statistics untouched) under ``inference_mode``, the crops are the eval
preset's centre crops (no random numbers), each epoch reseeds torch and sets its own batches
before it trains, and the DataLoader's own generator seeds only worker processes, whose clips
carry their own seeds (``tests/test_training.py`` checks that the trained weights are
byte-identical with and without it). It costs one more validation pass (forward only, on the
validation clips), about 2% of the demo's training time (docs/evaluation.md). Against the first
epoch's validation loss instead, a run that is already broken after one epoch would never be
flagged.

**The flags** (0 or 1, so that ``dvc metrics`` shows them), in the ``health`` block of the
stage's dvclive ``metrics.json``:

* ``valid_loss_rose``: the last epoch's validation loss is above the initial one. The initial
  heads are random, so their loss is about ``ln(classes) + ln 2``; a run that ends above it
  learned nothing that generalises to the validation clips, or diverged.
* ``train_loss_rose``: the last epoch's mean train loss is above the first epoch's (runs of one
  epoch have no trend and are not flagged). The first epoch includes the warm-up from the
  initial heads, so a working run ends below it.

``healthy`` is 1 when neither flag is set. Both compare with a strict ``>``: the validation
clips are fixed, so the loss of a given model on them carries no sampling noise of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from tsp_pretrain.config import OptimParams, PretrainParams

log = logging.getLogger(__name__)

#: The params to look at when training went wrong, in each warning (``<section>.<key>``).
TRAINING_KEYS = ("lr_backbone", "lr_heads", "warmup_epochs", "epochs", "batch_size")
#: Where the warnings point for the numbers.
HEALTH_BLOCK = "health"


def keys_to_check(section: str = "train") -> str:
    """``train.lr_backbone, train.lr_heads, ...``: what a warning asks the user to look at."""
    return ", ".join(f"{section}.{key}" for key in TRAINING_KEYS)


def params_section(params: OptimParams) -> str:
    """The params.yaml section of a run's optimiser params: ``pretrain`` or ``train``."""
    return "pretrain" if isinstance(params, PretrainParams) else "train"


@dataclass
class LossHistory:
    """The losses health is judged on; kept in the checkpoint, so that a resumed run has them.

    ``initial_valid``: validation loss before the first step; ``valid`` and ``train``: one
    value per finished epoch (validation loss, mean train loss over the epoch's batches).
    """

    initial_valid: float
    valid: list[float] = field(default_factory=list)
    train: list[float] = field(default_factory=list)

    def add(self, metrics: Mapping[str, float]) -> None:
        """Record an epoch from the loop's metrics (``train/loss``, ``valid/loss``)."""
        self.train.append(float(metrics["train/loss"]))
        self.valid.append(float(metrics["valid/loss"]))

    def as_dict(self) -> dict:
        return {"initial_valid": self.initial_valid, "valid": self.valid, "train": self.train}

    @classmethod
    def from_dict(cls, state: Mapping) -> LossHistory:
        return cls(float(state["initial_valid"]), list(state["valid"]), list(state["train"]))


def assess(history: LossHistory) -> dict[str, float]:
    """The ``health`` block: the losses compared and the flags (module docstring)."""
    if not history.valid:
        raise ValueError("training health needs at least one finished epoch")
    valid_rose = history.valid[-1] > history.initial_valid
    train_rose = len(history.train) > 1 and history.train[-1] > history.train[0]
    return {
        "valid_loss_initial": history.initial_valid,
        "valid_loss_last": history.valid[-1],
        "valid_loss_rose": int(valid_rose),
        "train_loss_first": history.train[0],
        "train_loss_last": history.train[-1],
        "train_loss_rose": int(train_rose),
        "healthy": int(not (valid_rose or train_rose)),
    }


def problems(health: Mapping[str, float]) -> list[str]:
    """One line per flag set in a ``health`` block, with its numbers (empty when healthy)."""
    out = []
    if health["valid_loss_rose"]:
        out.append(
            f"validation loss rose: {health['valid_loss_initial']:.4g} before training -> "
            f"{health['valid_loss_last']:.4g} after the last epoch"
        )
    if health["train_loss_rose"]:
        out.append(
            f"train loss rose: {health['train_loss_first']:.4g} in the first epoch -> "
            f"{health['train_loss_last']:.4g} in the last"
        )
    return out


def warn_if_unhealthy(health: Mapping[str, float], params: OptimParams, metrics_file: str) -> bool:
    """Log a loud WARNING naming the params to check (with their values) when a flag is set;
    True if it did."""
    found = problems(health)
    if not found:
        return False
    section = params_section(params)
    values = ", ".join(f"{section}.{key}={getattr(params, key)}" for key in TRAINING_KEYS)
    bar = "=" * 78
    log.warning(
        "\n%s\nTRAINING WENT WRONG: the model ended worse than it started\n  %s\n"
        "Look at %s: learning rates too high or too low for this data, a warm-up too short, "
        "too few epochs or too small batches.\nRecorded in %s, block %r.\n%s",
        bar,
        "\n  ".join(found),
        values,
        metrics_file,
        HEALTH_BLOCK,
        bar,
    )
    return True
