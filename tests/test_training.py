"""One-epoch training smoke tests, checkpoint resume, and extraction resume on a tiny store."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from videos import tiny_store_segments, write_tiny_store

from tsp_pretrain.config import ClipSpec, OptimParams, Params
from tsp_pretrain.features.extract import extract_dataset
from tsp_pretrain.features.spec import ExtractionRun, FeatureSpec
from tsp_pretrain.features.store import load_features
from tsp_pretrain.models.encoder import build_encoder
from tsp_pretrain.models.tsp import build_tsp_model
from tsp_pretrain.training import loop
from tsp_pretrain.training.health import LossHistory
from tsp_pretrain.training.loop import ClipSource, RunOutputs, train
from tsp_pretrain.training.stage import InitialEncoder, TrainingStage, training_fingerprint
from tsp_pretrain.video.store import INDEX_FILE, FrameStore

PARAMS = OptimParams(
    epochs=2,
    batch_size=4,
    clips_per_segment=2,
    lr_backbone=0.01,
    lr_heads=0.01,
    warmup_epochs=0.5,
    lr_milestones=(1,),
    device="cpu",
)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return FrameStore(write_tiny_store(tmp_path_factory.mktemp("store")))


def _segments():
    return tiny_store_segments()


def _model(objective="tsp", gvf=True):
    return build_tsp_model("r2plus1d_tiny", 2, objective=objective, gvf=gvf, seed=0)


def _source(store, gvf=None):
    seg = _segments()
    return ClipSource(store, seg, seg, ClipSpec(clip_len=4, frame_rate=15, crop_size=16), gvf=gvf)


def _train(model, store, tmp_path, fingerprint="run", gvf=None, params=PARAMS):
    """Train ``model``; its objective decides the segments (TAC: foreground only)."""
    outputs = RunOutputs(tmp_path / "ckpt.pt", tmp_path / "live", fingerprint)
    return train(model, _source(store, gvf), params, outputs, seed=0)


def test_tsp_with_gvf_trains_and_logs(store, tmp_path):
    gvf = {v: torch.randn(128) for v in ("a", "b")}
    metrics = _train(_model(), store, tmp_path, gvf=gvf)
    for key in (
        "train/loss",
        "train/acc_action",
        "train/acc_region",
        "valid/acc_action",
        "valid/acc_region",
        "lr/stem",
        "lr/backbone",
        "lr/heads",
        "seen/fg_clips",
    ):
        assert key in metrics, key
    assert np.isfinite(metrics["train/loss"])
    logged = json.loads((tmp_path / "live" / "metrics.json").read_text())
    assert logged["step"] == 1 and "acc_region" in logged["valid"]
    assert logged["health"]["valid_loss_last"] == pytest.approx(metrics["valid/loss"])
    assert logged["health"]["valid_loss_initial"] > 0 and logged["health"]["healthy"] in (0, 1)
    assert (tmp_path / "live" / "plots" / "metrics" / "train" / "loss.tsv").is_file()
    assert not (tmp_path / "live" / "plots" / "metrics" / "health").exists()  # no plot
    assert torch.load(tmp_path / "ckpt.pt", weights_only=False)["epoch"] == 1


def _skip_validation_before_training(monkeypatch, initial_valid: float) -> None:
    """Replace the pass before training by a fixed starting loss (no validation at all)."""
    monkeypatch.setattr(
        loop, "validate_before_training", lambda *a: LossHistory(initial_valid=initial_valid)
    )


@pytest.mark.parametrize("workers", [0, 2])
def test_validating_before_training_leaves_weights_and_plots_byte_identical(
    store, tmp_path, monkeypatch, workers
):
    """The pass must consume no random number, touch no BatchNorm statistic and shift no
    dvclive step (with workers too: the DataLoader's generator seeds them)."""
    params = PARAMS.model_copy(update={"workers": workers})
    calls = []
    real = loop.validate_before_training
    monkeypatch.setattr(loop, "validate_before_training", lambda *a: calls.append(1) or real(*a))
    with_pass = _model("tac", gvf=False)
    _train(with_pass, store, tmp_path / "with", params=params)
    assert calls == [1]
    _skip_validation_before_training(monkeypatch, float("inf"))
    without = _model("tac", gvf=False)
    _train(without, store, tmp_path / "without", params=params)
    for (name, a), b in zip(
        with_pass.state_dict().items(), without.state_dict().values(), strict=True
    ):
        assert a.dtype == b.dtype and a.numpy().tobytes() == b.numpy().tobytes(), name
    plots = sorted((tmp_path / "with" / "live" / "plots").rglob("*.tsv"))
    assert plots and [p.read_bytes() for p in plots] == [
        (tmp_path / "without" / p.relative_to(tmp_path / "with")).read_bytes() for p in plots
    ]
    first = (tmp_path / "with" / "live" / "plots" / "metrics" / "valid" / "loss.tsv").read_text()
    assert [row.split("\t")[0] for row in first.splitlines()] == ["step", "0", "1"]


def test_a_run_that_ends_above_its_starting_loss_is_flagged(store, tmp_path, monkeypatch, caplog):
    _skip_validation_before_training(monkeypatch, 0.0)  # any trained model's loss is above 0
    with caplog.at_level("WARNING", logger="tsp_pretrain.training.health"):
        metrics = _train(_model("tac", gvf=False), store, tmp_path)
    health = json.loads((tmp_path / "live" / "metrics.json").read_text())["health"]
    assert health["valid_loss_rose"] == 1 and health["healthy"] == 0
    assert health["valid_loss_initial"] == 0.0
    assert health["valid_loss_last"] == pytest.approx(metrics["valid/loss"])
    text = caplog.text
    assert "TRAINING WENT WRONG" in text and "train.lr_backbone=0.01" in text, text
    for key in ("train.lr_heads", "train.warmup_epochs", "train.epochs", "train.batch_size"):
        assert key in text
    caplog.clear()
    with caplog.at_level("WARNING", logger="tsp_pretrain.training.health"):  # all epochs done:
        _train(_model("tac", gvf=False), store, tmp_path)  # still reported
    assert "TRAINING WENT WRONG" in caplog.text


def test_tac_sees_only_foreground(store, tmp_path):
    metrics = _train(_model("tac", gvf=False), store, tmp_path)
    assert "train/acc_region" not in metrics
    assert metrics["seen/fg_clips"] == metrics["seen/clips"] == 2 * 2 * 2  # epochs x segs x clips


def _stop_at_call(monkeypatch, name: str, n: int) -> None:
    """Make ``loop.<name>`` raise KeyboardInterrupt (Ctrl-C) at its ``n``-th call."""
    real, calls = getattr(loop, name), {"n": 0}

    def stop(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == n:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, name, stop)


def _interrupt_then_resume(store, run_dir, monkeypatch, name: str, n: int) -> torch.nn.Module:
    """Stop a run at the ``n``-th call of ``loop.<name>``, then run it again to the end."""
    with monkeypatch.context() as patch:
        _stop_at_call(patch, name, n)
        with pytest.raises(KeyboardInterrupt):
            _train(_model("tac", gvf=False), store, run_dir)
    resumed = _model("tac", gvf=False)
    _train(resumed, store, run_dir)
    return resumed


def test_interrupted_run_resumes_to_the_same_weights(store, tmp_path, monkeypatch):
    straight = _model("tac", gvf=False)
    _train(straight, store, tmp_path / "straight")
    # validate: 1st call before training, 2nd after epoch 1 (then its checkpoint), 3rd epoch 2
    resumed = _interrupt_then_resume(store, tmp_path / "resumed", monkeypatch, "validate", 3)
    for (name, a), b in zip(
        straight.state_dict().items(), resumed.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(a, b, msg=name)
    steps = tmp_path / "resumed" / "live" / "plots" / "metrics" / "train" / "loss.tsv"
    assert steps.read_text().splitlines()[1:] != [] and len(steps.read_text().splitlines()) == 3


def test_a_run_stopped_after_logging_an_epoch_logs_it_once(store, tmp_path, monkeypatch):
    """dvclive writes an epoch's rows before its checkpoint exists: stopped between the two, the
    resumed run does that epoch again and must not log its step twice."""
    _train(_model("tac", gvf=False), store, tmp_path / "straight")
    _interrupt_then_resume(store, tmp_path / "resumed", monkeypatch, "save_atomic", 2)
    straight, resumed = tmp_path / "straight" / "live", tmp_path / "resumed" / "live"
    files = sorted(p.relative_to(straight) for p in straight.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(resumed) for p in resumed.rglob("*") if p.is_file())
    for rel in files:
        assert (resumed / rel).read_bytes() == (straight / rel).read_bytes(), rel


def test_checkpoint_of_another_run_is_not_resumed(store, tmp_path):
    _train(_model("tac", gvf=False), store, tmp_path, fingerprint="one")
    first = torch.load(tmp_path / "ckpt.pt", weights_only=False)
    _train(_model("tac", gvf=False), store, tmp_path, fingerprint="two")
    second = torch.load(tmp_path / "ckpt.pt", weights_only=False)
    assert first["fingerprint"] == "one" and second["fingerprint"] == "two"
    assert second["epoch"] == 1


def _fine_tuning_stage(tmp_path) -> TrainingStage:
    """A train stage's files: only their bytes matter to the fingerprint."""
    for name in ("annotations/segments.csv", f"frames/{INDEX_FILE}", "initial.pt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    initial = InitialEncoder(tmp_path / "initial.pt", tmp_path / "features", tmp_path / "gvf")
    return TrainingStage(
        "target",
        *(tmp_path / "annotations", tmp_path / "frames", tmp_path / "out" / "encoder.pt"),
        *(tmp_path / "out" / "checkpoint.pt", tmp_path / "live"),
        initial=initial,
    )


@pytest.mark.parametrize(("objective", "gvf_matters"), [("tac", False), ("tsp", True)])
def test_the_gvf_param_changes_the_fingerprint_only_where_the_model_uses_a_gvf(
    tmp_path, objective, gvf_matters
):
    """TAC trains the same with gvf true or false (no region head): the same run, so its
    checkpoint resumes; for TSP the region head's input differs: another run."""
    stage = _fine_tuning_stage(tmp_path)
    runs = {
        gvf: training_fingerprint(
            Params(objective=objective, gvf=gvf), stage, _model(objective, gvf), gvf_file=None
        )
        for gvf in (True, False)
    }
    assert (runs[True] != runs[False]) == gvf_matters


def test_extraction_writes_one_array_per_video_and_resumes(store, tmp_path):
    encoder = build_encoder("r2plus1d_tiny", "none").module
    videos = pd.DataFrame(
        {"video_id": ["a", "b", "gone"], "filename": ["v_a.mp4", "v_b.mp4", "v_gone.mp4"]}
    )
    spec = FeatureSpec(ClipSpec(clip_len=8, frame_rate=15, crop_size=16), stride=8)
    run = ExtractionRun(
        spec, identity={"v": 1}, batch_size=3, device=torch.device("cpu"), progress=False
    )
    counts = extract_dataset(encoder, store, videos, tmp_path, run)
    assert counts == {"extracted": 2, "reused": 0, "missing": 1}
    features, clips = load_features(tmp_path)
    assert sorted(features) == ["a", "b"] and (tmp_path / "v_a.npy").is_file()
    n = store.open("a").num_frames
    assert features["a"].shape == ((n - 8) // 8 + 1, 128)
    table = clips[clips["video_id"] == "a"]
    assert table["t_start"].tolist() == pytest.approx(np.arange(len(table)) * 8 / 15, abs=1e-3)
    # deterministic, and equal to encoding a clip directly
    from tsp_pretrain.data.transforms import ClipTransform

    video, transform = store.open("a"), ClipTransform(crop_size=16, layout=store.layout)
    window = transform.window(False, video.entry.height, video.entry.width)
    raw = torch.from_numpy(transform.crop(video.read_stored(8, 8), window))
    clip = transform.to_model(raw[None], window[None])[0]
    with torch.inference_mode():
        direct = encoder.eval()(clip[None]).numpy()[0]
    np.testing.assert_allclose(features["a"][1], direct, rtol=1e-4, atol=1e-5)

    again = extract_dataset(encoder, store, videos, tmp_path, run)
    assert again == {"extracted": 0, "reused": 2, "missing": 1}
    changed = extract_dataset(encoder, store, videos, tmp_path, replace(run, identity={"v": 2}))
    assert changed["extracted"] == 2
