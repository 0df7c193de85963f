"""Encoder initialisation: torchvision cache (offline), checkpoint layouts, clear failures."""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from tsp_pretrain.models import (
    WeightsError,
    build_encoder,
    build_tsp_model,
    read_checkpoint,
)

R2PLUS1D_FILE = "r2plus1d_18-91a641e6.pth"  # torchvision's R2Plus1D_18_Weights.KINETICS400_V1


@dataclass
class TorchHome:
    path: Path
    download_calls: list[str]


@pytest.fixture
def torch_home(tmp_path, monkeypatch) -> TorchHome:
    """An empty TORCH_HOME, and a download function that records calls instead of networking."""
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # in case something called set_dir
    calls = []

    def no_network(url, dst, *args, **kwargs):
        calls.append(url)
        raise OSError("network is unreachable (test)")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    return TorchHome(home, calls)


def assert_state_equal(actual: dict, expected: dict) -> None:
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(actual[key], value), key


def tiny_backbone_state(seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return build_encoder("r2plus1d_tiny").module.state_dict()


# --- torchvision weights through the hub cache ---------------------------------------------------


def test_planted_torchvision_file_is_loaded_without_network(torch_home):
    from torchvision.models.video import r2plus1d_18

    torch.manual_seed(123)
    planted = r2plus1d_18().state_dict()  # with its 400-class fc, like the published file
    target = torch_home.path / "hub" / "checkpoints" / R2PLUS1D_FILE
    target.parent.mkdir(parents=True)
    torch.save(planted, target)

    torch.manual_seed(0)  # a different random init, so equality below proves the load
    encoder = build_encoder("r2plus1d_18", "KINETICS400_V1")
    state = encoder.module.state_dict()
    assert_state_equal(state, {k: v for k, v in planted.items() if not k.startswith("fc.")})
    assert torch_home.download_calls == []


def test_missing_torchvision_file_fails_naming_file_and_folder(torch_home):
    with pytest.raises(WeightsError) as err:
        build_encoder("r2plus1d_18", "KINETICS400_V1")
    message = str(err.value)
    assert R2PLUS1D_FILE in message
    assert str(torch_home.path / "hub" / "checkpoints") in message
    assert len(torch_home.download_calls) == 1  # one try, its failure turned into the error


def test_unknown_weight_name_lists_the_valid_ones(torch_home):
    with pytest.raises(WeightsError, match="KINETICS400_V1"):
        build_encoder("mc3_18", "KINETICS400_V9")
    with pytest.raises(WeightsError, match="none published"):
        build_encoder("r2plus1d_tiny", "KINETICS400_V1")
    assert torch_home.download_calls == []


# --- checkpoint files ---------------------------------------------------------------------------


def test_none_keeps_random_init(caplog):
    with caplog.at_level(logging.INFO, logger="tsp_pretrain.models"):
        build_encoder("r2plus1d_tiny", "none")
    assert "random initialisation" in caplog.text


def test_project_checkpoint_loads_backbone_and_drops_heads(tmp_path, caplog):
    torch.manual_seed(7)
    model = build_tsp_model("r2plus1d_tiny", num_classes=5)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    path = tmp_path / "checkpoint.pt"
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 3}, path)

    torch.manual_seed(0)
    with caplog.at_level(logging.INFO, logger="tsp_pretrain.models"):
        encoder = build_encoder("r2plus1d_tiny", str(path))
    assert_state_equal(encoder.module.state_dict(), model.backbone.state_dict())
    assert "'backbone.'" in caplog.text
    for head_key in ("heads.action.weight", "heads.region.bias"):
        assert head_key in caplog.text


def test_official_tsp_layout(tmp_path):
    """{"model": {"module.features.<key>", "module.fc1.*", "module.fc2.*"}, "args": Namespace}."""
    backbone = tiny_backbone_state(seed=3)
    state = {f"module.features.{k}": v for k, v in backbone.items()}
    state.update(
        {
            "module.fc1.weight": torch.zeros(10, 128),
            "module.fc1.bias": torch.zeros(10),
            "module.fc2.weight": torch.zeros(2, 256),
            "module.fc2.bias": torch.zeros(2),
        }
    )
    path = tmp_path / "r2plus1d_tiny-tsp.pth"
    torch.save({"model": state, "args": argparse.Namespace(lr=0.1, epochs=8)}, path)
    assert_state_equal(build_encoder("r2plus1d_tiny", str(path)).module.state_dict(), backbone)


def test_s3d_own_features_prefix_is_not_stripped(tmp_path):
    """S3D's own keys start with "features."; official checkpoints add another "features."."""
    torch.manual_seed(5)
    backbone = build_encoder("s3d").module.state_dict()
    plain, official = tmp_path / "plain.pth", tmp_path / "official.pth"
    torch.save(backbone, plain)
    torch.save({"model": {f"features.{k}": v for k, v in backbone.items()}}, official)
    for path in (plain, official):
        torch.manual_seed(0)
        assert_state_equal(build_encoder("s3d", str(path)).module.state_dict(), backbone)


def test_bare_state_dict_with_classifier(tmp_path):
    backbone = tiny_backbone_state(seed=4)
    path = tmp_path / "tv.pth"
    torch.save({**backbone, "fc.weight": torch.zeros(400, 128), "fc.bias": torch.zeros(400)}, path)
    assert_state_equal(build_encoder("r2plus1d_tiny", str(path)).module.state_dict(), backbone)


def test_missing_backbone_keys_fail_naming_checkpoint_and_key(tmp_path):
    backbone = tiny_backbone_state(seed=4)
    del backbone["layer3.0.conv2.0.3.weight"]
    path = tmp_path / "partial.pth"
    torch.save({"model": {f"backbone.{k}": v for k, v in backbone.items()}}, path)
    with pytest.raises(WeightsError) as err:
        build_encoder("r2plus1d_tiny", str(path))
    assert str(path) in str(err.value)
    assert "layer3.0.conv2.0.3.weight" in str(err.value)


def test_checkpoint_of_another_backbone_fails(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "mc3.pth"
    torch.save(build_encoder("mc3_18").module.state_dict(), path)
    with pytest.raises(WeightsError, match=r"wrong shape.*layer2\.0\.conv1\.0\.weight"):
        build_encoder("r3d_18", str(path))  # same module names, different kernel shapes


def test_shape_mismatch_fails(tmp_path):
    backbone = tiny_backbone_state(seed=4)
    backbone["layer1.0.conv1.1.weight"] = torch.ones(99)
    path = tmp_path / "bad.pth"
    torch.save(backbone, path)
    with pytest.raises(WeightsError, match=r"layer1\.0\.conv1\.1\.weight.*\(99,\)"):
        build_encoder("r2plus1d_tiny", str(path))


def test_missing_num_batches_tracked_is_tolerated(tmp_path):
    backbone = tiny_backbone_state(seed=4)
    path = tmp_path / "old.pth"
    torch.save({k: v for k, v in backbone.items() if "num_batches_tracked" not in k}, path)
    state = build_encoder("r2plus1d_tiny", str(path)).module.state_dict()
    assert torch.equal(state["stem.0.weight"], backbone["stem.0.weight"])


def test_unusable_inputs(tmp_path):
    # a path that does not exist is named as a missing file, with where such files come from
    with pytest.raises(WeightsError, match=r"missing\.pth: no such checkpoint file"):
        build_encoder("r2plus1d_tiny", str(tmp_path / "missing.pth"))
    # a word that is neither a path nor a known name lists what is accepted
    with pytest.raises(WeightsError, match="neither 'none', a torchvision weight name"):
        build_encoder("r2plus1d_tiny", "kinetics")
    (tmp_path / "list.pth").write_bytes(b"")
    with pytest.raises(WeightsError, match="not a loadable torch checkpoint"):
        read_checkpoint(tmp_path / "list.pth")
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(WeightsError, match="expected a state dict"):
        read_checkpoint(tmp_path / "list.pth")


def test_a_random_encoder_with_a_seed_is_the_same_network_every_time():
    """`encoder.weights: none` in stage init_encoder: the same params give the same encoder file
    (an unseeded draw made `dvc repro` give another initial encoder, features and dvc.lock)."""
    before = torch.random.get_rng_state()
    a, b = (build_encoder("r2plus1d_tiny", "none", seed=0).module.state_dict() for _ in range(2))
    other = build_encoder("r2plus1d_tiny", "none", seed=1).module.state_dict()
    assert torch.equal(torch.random.get_rng_state(), before)  # the global RNG is left alone
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], other[k]) for k in a)
