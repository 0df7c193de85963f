"""Training health on synthetic loss histories: the flags, and the warning that names the keys."""

from __future__ import annotations

import logging

import pytest

from tsp_pretrain.config import OptimParams, PretrainParams
from tsp_pretrain.training.health import LossHistory, assess, problems, warn_if_unhealthy

LOGGER = "tsp_pretrain.training.health"


def _history(initial: float, valid: list[float], train: list[float]) -> LossHistory:
    history = LossHistory(initial_valid=initial)
    for v, t in zip(valid, train, strict=True):
        history.add({"valid/loss": v, "train/loss": t})
    return history


def test_the_users_run_is_flagged_on_both_losses():
    # 2 epochs with bad learning rates: train loss 1.65 -> 2.84, validation above its start
    health = assess(_history(2.30, [2.41, 2.95], [1.65, 2.84]))
    assert health == {
        "valid_loss_initial": 2.30,
        "valid_loss_last": 2.95,
        "valid_loss_rose": 1,
        "train_loss_first": 1.65,
        "train_loss_last": 2.84,
        "train_loss_rose": 1,
        "healthy": 0,
    }
    assert len(problems(health)) == 2


def test_a_run_that_learned_is_healthy_even_when_the_last_epoch_is_not_its_best():
    health = assess(_history(2.30, [0.9, 0.55, 0.60], [1.4, 0.5, 0.35]))
    assert health["valid_loss_rose"] == health["train_loss_rose"] == 0
    assert health["healthy"] == 1 and problems(health) == []


def test_only_the_validation_loss_rose():
    health = assess(_history(1.0, [1.2, 1.0001], [2.0, 1.5]))
    assert (health["valid_loss_rose"], health["train_loss_rose"], health["healthy"]) == (1, 0, 0)
    assert problems(health) == ["validation loss rose: 1 before training -> 1 after the last epoch"]


def test_one_epoch_has_no_train_trend_and_equal_losses_are_not_a_rise():
    health = assess(_history(1.5, [1.5], [2.0]))
    assert health["train_loss_rose"] == 0 and health["valid_loss_rose"] == 0
    with pytest.raises(ValueError, match="at least one finished epoch"):
        assess(LossHistory(initial_valid=1.0))


def test_the_history_survives_a_checkpoint_round_trip():
    history = _history(2.0, [1.0, 0.8], [1.5, 0.9])
    assert LossHistory.from_dict(history.as_dict()) == history


def test_the_warning_names_the_keys_their_values_and_the_numbers(caplog):
    params = OptimParams(
        lr_backbone=0.5,
        lr_heads=2.0,
        warmup_epochs=0,
        epochs=2,
        batch_size=4,
        lr_milestones=(),
    )
    health = assess(_history(2.30, [2.41, 2.95], [1.65, 2.84]))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert warn_if_unhealthy(health, params, "metrics/train/metrics.json")
    text = caplog.text
    for part in (
        "TRAINING WENT WRONG",
        "train.lr_backbone=0.5",
        "train.lr_heads=2.0",
        "train.warmup_epochs=0.0",
        "train.epochs=2",
        "train.batch_size=4",
        "2.3 before training -> 2.95",
        "1.65 in the first epoch -> 2.84",
        "metrics/train/metrics.json, block 'health'",
    ):
        assert part in text, part
    assert caplog.records[0].levelno == logging.WARNING


def test_pretraining_names_its_own_section_and_a_healthy_run_says_nothing(caplog):
    bad = assess(_history(1.0, [1.5], [1.0]))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        warn_if_unhealthy(bad, PretrainParams(), "metrics/pretrain/x/metrics.json")
    assert "pretrain.lr_heads=" in caplog.text and "train.lr_heads" not in caplog.text.replace(
        "pretrain.lr_heads", ""
    )
    caplog.clear()
    good = assess(_history(2.0, [1.0], [1.5]))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert not warn_if_unhealthy(good, OptimParams(), "m.json")
    assert caplog.records == []
