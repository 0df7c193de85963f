"""Backbone registry, TSP heads, loss, parameter groups (the device: tests/test_runtime.py)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tsp_pretrain.models import (
    BACKBONES,
    TSPModel,
    UnknownBackboneError,
    build_encoder,
    build_tsp_model,
    check_clips,
    forward_and_loss,
    get_backbone,
    param_groups,
)

FEATURE_DIMS = {
    "r2plus1d_18": 512,
    "r2plus1d_34": 512,
    "r3d_18": 512,
    "mc3_18": 512,
    "s3d": 1024,
    "mvit_v1_b": 768,
    "mvit_v2_s": 768,
    "swin3d_t": 768,
    "swin3d_s": 768,
    "swin3d_b": 1024,
    "r2plus1d_tiny": 128,
}
CLASSIFIERS = {"s3d": "classifier", "mvit_v1_b": "head", "mvit_v2_s": "head"}
CLASSIFIERS.update({n: "head" for n in ("swin3d_t", "swin3d_s", "swin3d_b")})


def meta_model(name: str, **kwargs) -> TSPModel:
    """A TSP model on the meta device: real structure and names, no memory or init cost."""
    with torch.device("meta"):
        return TSPModel(build_encoder(name), num_classes=5, **kwargs)


@pytest.fixture
def tiny() -> TSPModel:
    torch.manual_seed(0)
    return build_tsp_model("r2plus1d_tiny", num_classes=4)


def batch(n: int = 4, shape=(8, 32, 32), action=(2, -1, 0, -1), gvf_dim: int | None = 128):
    g = torch.Generator().manual_seed(1)
    action_t = torch.tensor(action[:n])
    b = {
        "clips": torch.randn(n, 3, *shape, generator=g),
        "action": action_t,
        "region": (action_t >= 0).long(),
    }
    if gvf_dim is not None:
        b["gvf"] = torch.randn(n, gvf_dim, generator=g)
    return b


# --- registry ---------------------------------------------------------------------------------


def test_registry_holds_the_required_backbones():
    assert set(FEATURE_DIMS) <= set(BACKBONES)


def test_unknown_backbone_lists_valid_names():
    with pytest.raises(UnknownBackboneError) as err:
        get_backbone("r2plus1d_50")
    message = str(err.value)
    assert "r2plus1d_50" in message
    for name in ("r2plus1d_18", "r2plus1d_34", "r3d_18", "s3d", "r2plus1d_tiny"):
        assert name in message
    with pytest.raises(UnknownBackboneError):
        build_encoder("resnet50")


@pytest.mark.parametrize("name", sorted(FEATURE_DIMS))
def test_classifier_removed_and_feature_size_read_from_model(name):
    with torch.device("meta"):
        encoder = build_encoder(name)
    assert encoder.feature_dim == FEATURE_DIMS[name]
    assert isinstance(getattr(encoder.module, CLASSIFIERS.get(name, "fc")), nn.Identity)
    dropouts = [m for m in encoder.module.modules() if isinstance(m, nn.Dropout) and m.p > 0]
    assert not dropouts  # the classifier's dropout went with it


@pytest.mark.parametrize("name", ["r2plus1d_tiny", "mc3_18", "s3d"])
def test_encoder_outputs_one_feature_vector_per_clip(name):
    encoder = build_encoder(name)
    encoder.module.eval()
    with torch.no_grad():
        out = encoder(torch.randn(2, 3, 8, 32, 32))
    assert out.shape == (2, FEATURE_DIMS[name])
    assert torch.isfinite(out).all()


def test_tiny_has_torchvision_layout():
    encoder = build_encoder("r2plus1d_tiny")
    names = [n for n, _ in encoder.module.named_children()]
    assert names == ["stem", "layer1", "layer2", "layer3", "layer4", "avgpool", "fc"]


def test_clip_shape_checks():
    with pytest.raises(ValueError, match=r"B x 3 x T x H x W"):
        check_clips(get_backbone("r3d_18"), torch.zeros(1, 8, 32, 32, device="meta"))
    with pytest.raises(ValueError, match=r"\(16, 224, 224\)"):
        check_clips(get_backbone("mvit_v2_s"), torch.zeros(1, 3, 8, 32, 32, device="meta"))
    check_clips(get_backbone("mvit_v2_s"), torch.zeros(1, 3, 16, 224, 224, device="meta"))


# --- TSP model --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("objective", "gvf", "heads", "region_in"),
    [
        ("tsp", True, {"action", "region"}, 2 * 128),
        ("tsp", False, {"action", "region"}, 128),
        ("tac", True, {"action"}, None),
        ("tac", False, {"action"}, None),
    ],
)
def test_heads_follow_objective_and_gvf(objective, gvf, heads, region_in):
    model = build_tsp_model("r2plus1d_tiny", num_classes=7, objective=objective, gvf=gvf)
    assert isinstance(model.heads, nn.ModuleDict)
    assert set(model.heads) == heads
    assert model.heads["action"].in_features == 128
    assert model.heads["action"].out_features == 7
    if region_in is not None:
        assert model.heads["region"].in_features == region_in
        assert model.heads["region"].out_features == 2
    assert model.uses_gvf == (objective == "tsp" and gvf)


def test_head_initialisation():
    torch.manual_seed(0)
    model = build_tsp_model("r2plus1d_tiny", num_classes=50)
    for head in model.heads.values():
        assert torch.count_nonzero(head.bias) == 0
    weight = model.heads["action"].weight  # 128 x 50 = 6400 samples of N(0, 0.01)
    assert weight.std().item() == pytest.approx(0.01, rel=0.1)
    assert abs(weight.mean().item()) < 0.001


def test_forward_outputs_and_gvf_is_constant(tiny):
    b = batch()
    gvf = b["gvf"].requires_grad_(True)
    out = tiny(b["clips"], gvf)
    assert out["action"].shape == (4, 4)
    assert out["region"].shape == (4, 2)
    assert out["features"].shape == (4, 128)
    out["region"].sum().backward()
    assert gvf.grad is None
    assert tiny.heads["region"].weight.grad is not None


def test_encode_matches_forward_features(tiny):
    tiny.eval()
    b = batch()
    with torch.no_grad():
        assert torch.equal(tiny.encode(b["clips"]), tiny(b["clips"], b["gvf"])["features"])


def test_gvf_must_match_the_model(tiny):
    b = batch()
    with pytest.raises(ValueError, match="uses a GVF"):
        tiny(b["clips"])
    with pytest.raises(ValueError, match="shape"):
        tiny(b["clips"], b["gvf"][:, :10])
    tac = build_tsp_model("r2plus1d_tiny", num_classes=4, objective="tac")
    with pytest.raises(ValueError, match="without a GVF"):
        tac(b["clips"], b["gvf"])


def test_bad_objective_rejected():
    with pytest.raises(ValueError, match="objective"):
        TSPModel(build_encoder("r2plus1d_tiny"), num_classes=3, objective="tsn")


# --- loss -------------------------------------------------------------------------------------


def test_loss_is_weighted_sum_over_foreground_for_action(tiny):
    tiny.eval()  # BatchNorm in eval mode: the two forward passes below give the same logits
    b = batch()
    loss, logs = forward_and_loss(tiny, b, alpha_action=2.0, alpha_region=0.5)
    with torch.no_grad():
        out = tiny(b["clips"], b["gvf"])
    fg = b["action"] >= 0
    expected_action = F.cross_entropy(out["action"][fg], b["action"][fg])
    expected_region = F.cross_entropy(out["region"], b["region"])
    assert loss.item() == pytest.approx(
        (2.0 * expected_action + 0.5 * expected_region).item(), rel=1e-5
    )
    assert logs["loss_action"] == pytest.approx(expected_action.item(), rel=1e-5)
    assert logs["loss_region"] == pytest.approx(expected_region.item(), rel=1e-5)
    assert logs["n_action"] == 2 and logs["n_region"] == 4
    correct = (out["action"].argmax(1)[fg] == b["action"][fg]).sum().item()
    assert logs["acc_action"] == pytest.approx(correct / 2)
    assert logs["acc_region"] == pytest.approx(
        (out["region"].argmax(1) == b["region"]).float().mean().item()
    )


def test_all_background_batch_gives_finite_loss_and_gradients(tiny):
    b = batch(action=(-1, -1, -1, -1))
    loss, logs = forward_and_loss(tiny, b)
    assert math.isfinite(loss.item())
    assert logs["loss_action"] == 0.0 and logs["n_action"] == 0
    assert math.isnan(logs["acc_action"])
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in tiny.parameters() if p.grad is not None)
    assert torch.count_nonzero(tiny.heads["action"].weight.grad) == 0


def test_loss_ignores_batch_gvf_for_a_model_without_gvf():
    torch.manual_seed(0)
    model = build_tsp_model("r2plus1d_tiny", num_classes=4, gvf=False)
    loss, logs = forward_and_loss(model, batch())  # the batch carries a gvf; not passed on
    assert math.isfinite(loss.item()) and "acc_region" in logs


def test_tac_loss_has_action_term_only():
    torch.manual_seed(0)
    model = build_tsp_model("r2plus1d_tiny", num_classes=4, objective="tac").eval()
    b = batch(action=(1, 3, 0, 2), gvf_dim=None)
    del b["region"]
    loss, logs = forward_and_loss(model, b, alpha_action=1.0, alpha_region=1.0)
    with torch.no_grad():
        expected = F.cross_entropy(model(b["clips"])["action"], b["action"])
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert "loss_region" not in logs and "acc_region" not in logs


# --- parameter groups -------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(BACKBONES))
@pytest.mark.parametrize("objective", ["tsp", "tac"])
def test_every_parameter_in_exactly_one_group(name, objective):
    model = meta_model(name, objective=objective)
    groups = param_groups(model, lr_stem=0.0, lr_backbone=1e-4, lr_heads=2e-3, weight_decay=5e-3)
    assert [g["name"] for g in groups] == ["stem", "backbone", "heads"]
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids))
    assert set(ids) == {id(p) for p in model.parameters()}
    by_name = {g["name"]: g for g in groups}
    assert by_name["stem"]["params"], f"{name}: no stem parameter matched"
    assert {id(p) for p in by_name["heads"]["params"]} == {id(p) for p in model.heads.parameters()}
    assert [g["lr"] for g in groups] == [0.0, 1e-4, 2e-3]
    assert all(g["weight_decay"] == 5e-3 for g in groups)
    assert not any(p.requires_grad for p in by_name["stem"]["params"])
    assert all(p.requires_grad for g in groups[1:] for p in g["params"])


def test_stem_trainable_again_with_positive_lr():
    model = meta_model("r3d_18")
    param_groups(model, 0.0, 1e-4, 1e-3, 0.0)
    groups = param_groups(model, 1e-5, 1e-4, 1e-3, 0.0)
    assert all(p.requires_grad for p in groups[0]["params"])


def test_negative_lr_rejected():
    with pytest.raises(ValueError, match="lr_heads"):
        param_groups(meta_model("r2plus1d_tiny"), 0.0, 1e-4, -1.0, 0.0)


def test_sgd_step_leaves_frozen_stem_unchanged(tiny):
    groups = param_groups(tiny, lr_stem=0.0, lr_backbone=0.1, lr_heads=0.1, weight_decay=0.01)
    optimizer = torch.optim.SGD(groups, momentum=0.9)
    before = {n: p.detach().clone() for n, p in tiny.named_parameters()}
    loss, _ = forward_and_loss(tiny, batch())
    loss.backward()
    optimizer.step()
    after = dict(tiny.named_parameters())
    stem = [n for n in before if n.startswith("backbone.stem.")]
    assert stem and all(torch.equal(before[n], after[n]) for n in stem)
    assert not torch.equal(
        before["backbone.layer4.0.conv1.0.0.weight"], after["backbone.layer4.0.conv1.0.0.weight"]
    )
    assert not torch.equal(before["heads.region.weight"], after["heads.region.weight"])


@pytest.mark.parametrize("weights", ["none", "planted"])
def test_seed_fixes_the_random_initialisation_and_leaves_the_global_rng(weights, tmp_path):
    if weights == "planted":  # heads random, backbone loaded: only the heads depend on the seed
        path = tmp_path / "encoder.pt"
        torch.save(build_tsp_model("r2plus1d_tiny", 3, seed=9).backbone.state_dict(), path)
        weights = str(path)
    before = torch.random.get_rng_state()
    a = build_tsp_model("r2plus1d_tiny", 3, weights=weights, seed=1).state_dict()
    assert torch.equal(torch.random.get_rng_state(), before)
    torch.rand(5)  # another global RNG state must not matter
    b = build_tsp_model("r2plus1d_tiny", 3, weights=weights, seed=1).state_dict()
    c = build_tsp_model("r2plus1d_tiny", 3, weights=weights, seed=2).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    differ = {k for k in a if not torch.equal(a[k], c[k])}
    assert "heads.action.weight" in differ
    if weights == "none":
        assert any(k.startswith("backbone.") for k in differ)
    else:
        assert all(k.startswith("heads.") for k in differ)
