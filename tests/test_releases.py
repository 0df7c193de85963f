"""R(2+1)D-34 as the official code builds it, and the official TSP releases by name (no network)."""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn

from tsp_pretrain.models import BACKBONES, RELEASES, Release, WeightsError, build_encoder, releases
from tsp_pretrain.models.releases import RECORD_SUFFIX, release_sha256
from tsp_pretrain.models.weights import describe_weights

#: The released checkpoints, as listed in the official extract_features/extract_features.py.
OFFICIAL_NAMES = {
    "r2plus1d_34": [
        "tsp_on_activitynet",
        "tsp_on_thumos14",
        "tac_on_activitynet",
        "tac_on_thumos14",
        "tac_on_kinetics",
        "tsp_on_activitynet-avg_gvf",
        "tsp_on_activitynet-no_gvf",
    ],
    "r2plus1d_18": ["tsp_on_activitynet", "tac_on_activitynet", "tac_on_kinetics"],
    "r3d_18": ["tsp_on_activitynet", "tac_on_activitynet", "tac_on_kinetics"],
}


@dataclass
class TorchHome:
    cache: Path  # $TORCH_HOME/hub/checkpoints
    download_calls: list[tuple[str, str | None]]


@pytest.fixture
def torch_home(tmp_path, monkeypatch) -> TorchHome:
    """An empty TORCH_HOME; downloads go through torch.hub (file:// URLs only) and are recorded."""
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    calls: list[tuple[str, str | None]] = []
    real_download = torch.hub.download_url_to_file

    def local_only(url, dst, hash_prefix=None, progress=True):
        calls.append((url, hash_prefix))
        if not url.startswith("file://"):
            raise OSError("network is unreachable (test)")
        real_download(url, dst, hash_prefix=hash_prefix, progress=progress)

    monkeypatch.setattr(torch.hub, "download_url_to_file", local_only)
    return TorchHome(home / "hub" / "checkpoints", calls)


def cache_files(home: TorchHome) -> list[str]:
    return sorted(p.name for p in home.cache.iterdir()) if home.cache.exists() else []


def plant_verified(path: Path, release: Release) -> None:
    """The record a verified release file leaves beside it, for a file planted under a real
    release's name: no test file can have the release's SHA-256 prefix, so the record says the
    check passed (what it would say for the real file). Used by tests of what comes after."""
    stat = path.stat()
    record = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    record["sha256"] = release.hash_prefix + "0" * (64 - len(release.hash_prefix))
    path.with_name(path.name + RECORD_SUFFIX).write_text(json.dumps(record))


# --- release-layout checkpoints ------------------------------------------------------------------


def random_backbone_state(backbone: str, seed: int) -> dict[str, torch.Tensor]:
    """A backbone state dict in which every tensor is random: weights, BN affine and BN stats."""
    torch.manual_seed(seed)
    with torch.device("meta"):
        shapes = build_encoder(backbone).module.state_dict()
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, meta in shapes.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(1234 + seed)
        elif key.endswith("running_var"):
            state[key] = torch.rand(meta.shape, generator=g) + 0.1
        else:
            state[key] = torch.randn(meta.shape, generator=g)
    return state


def release_checkpoint(backbone: str, features: dict[str, torch.Tensor], objective: str) -> dict:
    """A checkpoint laid out exactly like the official train/train.py saves it.

    ``model`` is ``Model.state_dict()`` without DDP: the backbone under ``features.`` (its ``fc`` is
    an identity, so no ``features.fc.*``), the heads ``fc`` (TAC, one head) or ``fc1`` / ``fc2``
    (TSP: action on F, region on concat(F, GVF) = 2F).
    """
    g = torch.Generator().manual_seed(99)
    if objective == "tsp":
        heads = {
            "fc1.weight": torch.randn(200, 512, generator=g),
            "fc1.bias": torch.zeros(200),
            "fc2.weight": torch.randn(2, 1024, generator=g),
            "fc2.bias": torch.zeros(2),
        }
    else:
        heads = {"fc.weight": torch.randn(200, 512, generator=g), "fc.bias": torch.zeros(200)}
    model = {f"features.{k}": v for k, v in features.items()} | heads
    n_stem = sum(1 for k in features if k.startswith("stem.") and k.endswith("weight"))
    n_params = len(features) + len(heads)  # an upper bound is enough for plausible indices
    group = {
        "momentum": 0.9,
        "dampening": 0,
        "weight_decay": 0.005,
        "nesterov": False,
        "maximize": False,
        "foreach": None,
        "differentiable": False,
        "fused": None,
    }
    head_ids = list(range(n_params - len(heads), n_params))
    optimizer = {
        "state": {i: {"momentum_buffer": torch.zeros(3)} for i in head_ids},
        "param_groups": [
            group | {"lr": 0.0, "initial_lr": 0.0, "name": "stem", "params": list(range(n_stem))},
            group
            | {
                "lr": 1e-6,
                "initial_lr": 1e-4,
                "name": "backbone",
                "params": list(range(n_stem, n_params - len(heads))),
            },
            group | {"lr": 2e-5, "initial_lr": 2e-3, "name": "fc", "params": head_ids},
        ],
    }
    lr_scheduler = {
        "milestones": [4000, 6000],
        "gamma": 0.01,
        "warmup_factor": 1e-5,
        "warmup_iters": 2000,
        "warmup_method": "linear",
        "base_lrs": [0.0, 1e-4, 2e-3],
        "last_epoch": 8000,
        "_step_count": 8001,
        "_get_lr_called_within_step": False,
        "_last_lr": [0.0, 1e-8, 2e-7],
    }
    args = argparse.Namespace(
        root_dir="/data/activitynet",
        train_subdir="train",
        valid_subdir="val",
        train_csv_filename="data/activitynet/activitynet_v1-3_train_tsp_groundtruth.csv",
        valid_csv_filename="data/activitynet/activitynet_v1-3_valid_tsp_groundtruth.csv",
        label_mapping_jsons=["data/activitynet/activitynet_v1-3_action_label_mapping.json"],
        label_columns=["action-label", "temporal-region-label"],
        global_video_features="data/activitynet/global_video_features/r2plus1d_34-max_gvf.h5",
        backbone=backbone,
        clip_len=16,
        frame_rate=15,
        clips_per_segment=5,
        batch_size=32,
        epochs=8,
        backbone_lr=1e-4,
        fc_lr=2e-3,
        loss_alphas=[1.0, 1.0],
        lr_warmup_epochs=2,
        lr_milestones=[4, 6],
        lr_gamma=0.01,
        momentum=0.9,
        weight_decay=0.005,
        device="cuda",
        workers=6,
        output_dir="output",
        resume="",
        start_epoch=0,
        sync_bn=False,
        world_size=2,
        distributed=True,
        dist_url="env://",
        dist_backend="nccl",
        rank=0,
        gpu=0,
        debug=False,
    )
    return {
        "model": model,
        "optimizer": optimizer,
        "lr_scheduler": lr_scheduler,
        "epoch": 7,
        "args": args,
    }


@pytest.mark.parametrize(
    ("backbone", "release", "objective"),
    [
        ("r2plus1d_34", "tsp_on_activitynet", "tsp"),
        ("r2plus1d_18", "tac_on_activitynet", "tac"),
        ("r3d_18", "tsp_on_activitynet", "tsp"),
    ],
)
def test_planted_release_loads_every_backbone_tensor(
    backbone, release, objective, torch_home, caplog
):
    name = f"tsp:{backbone}-{release}"
    features = random_backbone_state(backbone, seed=3)
    target = torch_home.cache / Path(RELEASES[name].url).name
    target.parent.mkdir(parents=True)
    torch.save(release_checkpoint(backbone, features, objective), target)
    plant_verified(target, RELEASES[name])

    torch.manual_seed(0)  # another random init, so equality below proves the load
    with caplog.at_level(logging.INFO, logger="tsp_pretrain.models"):
        state = build_encoder(backbone, name).module.state_dict()
    assert state.keys() == features.keys()  # every parameter and buffer of the model, no more
    for key, value in features.items():
        assert torch.equal(state[key], value), key
    assert "'features.'" in caplog.text
    dropped = ["fc1.weight", "fc2.weight"] if objective == "tsp" else ["fc.weight", "fc.bias"]
    for head_key in dropped:
        assert head_key in caplog.text
    assert torch_home.download_calls == []


# --- R(2+1)D-34 --------------------------------------------------------------------------------


def official_r2plus1d_34_parameter_count() -> int:
    """Parameters of R(2+1)D-34 without its classifier, counted from the architecture's rules.

    Stem: 1x7x7 conv 3 -> 45, BN, 3x1x1 conv 45 -> 64, BN. Stages of (planes, blocks) =
    (64, 3), (128, 4), (256, 6), (512, 3); every (2+1)D convolution in -> out has
    m = (in*out*27) // (in*9 + 3*out) intermediate channels: a 1x3x3 conv in -> m, BN(m), a
    3x1x1 conv m -> out; each is followed by BN(out). A 1x1x1 conv + BN shortcut where the width
    changes. Convolutions have no bias, BN has weight and bias.
    """

    def conv2plus1d(cin: int, cout: int) -> int:
        mid = (cin * cout * 27) // (cin * 9 + 3 * cout)
        return cin * mid * 9 + 2 * mid + mid * cout * 3 + 2 * cout

    total = 3 * 45 * 49 + 2 * 45 + 45 * 64 * 3 + 2 * 64
    cin = 64
    for planes, blocks in ((64, 3), (128, 4), (256, 6), (512, 3)):
        for _ in range(blocks):
            total += conv2plus1d(cin, planes) + conv2plus1d(planes, planes)
            if cin != planes:
                total += cin * planes + 2 * planes
            cin = planes
    return total


def test_r2plus1d_34_has_the_official_shapes_and_batchnorm():
    with torch.device("meta"):
        encoder = build_encoder("r2plus1d_34")
        r18 = build_encoder("r2plus1d_18").module.state_dict()
    state = encoder.module.state_dict()
    assert encoder.feature_dim == 512
    assert state["layer2.0.conv2.0.0.weight"].shape == (288, 128, 1, 3, 3)
    assert r18["layer2.0.conv2.0.0.weight"].shape == (230, 128, 1, 3, 3)  # torchvision's rule
    assert state["layer3.0.conv2.0.0.weight"].shape == (576, 256, 1, 3, 3)
    assert state["layer4.0.conv2.0.0.weight"].shape == (1152, 512, 1, 3, 3)
    assert [len(getattr(encoder.module, f"layer{i}")) for i in range(1, 5)] == [3, 4, 6, 3]
    count = sum(p.numel() for p in encoder.module.parameters())
    assert count == official_r2plus1d_34_parameter_count() == 63_491_975
    norms = [m for m in encoder.module.modules() if isinstance(m, nn.BatchNorm3d)]
    assert len(norms) == 1 + 1 + 16 * 2 * 2 + 3  # stem (2), 16 blocks x 2 convs x 2, shortcuts
    assert all(m.eps == 1e-3 and m.momentum == 0.9 for m in norms)


def test_r2plus1d_34_encodes_a_small_clip():
    torch.manual_seed(0)
    encoder = build_encoder("r2plus1d_34")
    encoder.module.eval()
    with torch.no_grad():
        out = encoder(torch.randn(1, 3, 4, 16, 16))
    assert out.shape == (1, 512)
    assert torch.isfinite(out).all()


# --- the release table -------------------------------------------------------------------------


def test_release_table_holds_the_13_official_checkpoints():
    expected = {f"tsp:{b}-{r}" for b, releases in OFFICIAL_NAMES.items() for r in releases}
    assert set(RELEASES) == expected
    for name, release in RELEASES.items():
        backbone, official_key = release.backbone, name.removeprefix("tsp:")
        assert official_key.startswith(f"{backbone}-")
        assert release.url.startswith(
            "https://github.com/HumamAlwassel/TSP/releases/download/model_weights/"
        )
        assert release.file_name.startswith(official_key)
        assert re.fullmatch(r"[0-9a-f]{8}", release.hash_prefix)
        assert release.file_name.endswith(f"-{release.hash_prefix}.pth")
        assert backbone in BACKBONES
    # two spot checks of exact file names, copied from the official MODEL_URLS
    assert RELEASES["tsp:r2plus1d_34-tsp_on_activitynet"].file_name == (
        "r2plus1d_34-tsp_on_activitynet-max_gvf-backbone_lr_0.0001-fc_lr_0.002-epoch_5-0d2cf854.pth"
    )
    assert RELEASES["tsp:r3d_18-tac_on_kinetics"].file_name == "r3d_18-tac_on_kinetics-dcd952c6.pth"


def test_release_of_another_backbone_names_both(torch_home):
    with pytest.raises(WeightsError) as err:
        build_encoder("r2plus1d_18", "tsp:r2plus1d_34-tsp_on_activitynet")
    message = str(err.value)
    assert "backbone r2plus1d_34" in message and "encoder is r2plus1d_18" in message
    assert "set encoder.backbone to r2plus1d_34" in message
    assert torch_home.download_calls == []  # checked before any download


def test_unknown_release_lists_valid_names(torch_home):
    with pytest.raises(WeightsError) as err:
        build_encoder("r2plus1d_34", "tsp:r2plus1d_34-tsp_on_kinetics")
    message = str(err.value)
    assert "'tsp:r2plus1d_34-tsp_on_kinetics'" in message
    for name in RELEASES:
        assert name in message
    assert torch_home.download_calls == []


# --- download path (file:// URLs, tiny backbone) ------------------------------------------------


def plant_tiny_release(folder: Path, monkeypatch, hash_prefix: str | None = None) -> tuple:
    """A release-layout checkpoint of r2plus1d_tiny outside the cache, registered as a release.

    Its file name carries ``hash_prefix``, by default the true first 8 hex digits of its SHA-256.
    """
    features = random_backbone_state("r2plus1d_tiny", seed=5)
    checkpoint = release_checkpoint("r2plus1d_tiny", features, "tac")
    checkpoint["model"]["fc.weight"] = torch.zeros(200, 128)
    folder.mkdir(parents=True, exist_ok=True)
    staging = folder / "staging.pth"
    torch.save(checkpoint, staging)
    digest = hashlib.sha256(staging.read_bytes()).hexdigest()
    source = folder / f"r2plus1d_tiny-tac_on_demo-{hash_prefix or digest[:8]}.pth"
    staging.rename(source)
    name = "tsp:r2plus1d_tiny-tac_on_demo"
    monkeypatch.setitem(RELEASES, name, Release(name, "r2plus1d_tiny", source.as_uri()))
    return name, source, features


def test_download_checks_the_hash_and_fills_the_cache(torch_home, tmp_path, monkeypatch):
    name, source, features = plant_tiny_release(tmp_path / "server", monkeypatch)
    state = build_encoder("r2plus1d_tiny", name).module.state_dict()
    assert all(torch.equal(state[k], v) for k, v in features.items())
    true_prefix = hashlib.sha256(source.read_bytes()).hexdigest()[:8]
    assert torch_home.download_calls == [(source.as_uri(), true_prefix)]
    # the file and its verified hash, no temporary leftovers
    assert cache_files(torch_home) == [source.name, source.name + RECORD_SUFFIX]
    assert (torch_home.cache / source.name).read_bytes() == source.read_bytes()
    build_encoder("r2plus1d_tiny", name)  # second time: from the cache
    assert len(torch_home.download_calls) == 1
    full = hashlib.sha256(source.read_bytes()).hexdigest()
    assert describe_weights(name, tmp_path)["sha256"] == full


def test_hand_placed_release_with_another_hash_fails_with_both(torch_home, tmp_path, monkeypatch):
    """The offline route: a file placed under the release's name is checked before it is used."""
    name, source, _ = plant_tiny_release(tmp_path / "server", monkeypatch)
    torch_home.cache.mkdir(parents=True)
    placed = torch_home.cache / source.name
    checkpoint = torch.load(source, weights_only=False)
    checkpoint["epoch"] = 8  # another checkpoint that loads just as well: another SHA-256
    torch.save(checkpoint, placed)
    wrong = hashlib.sha256(placed.read_bytes()).hexdigest()
    with pytest.raises(WeightsError) as err:
        build_encoder("r2plus1d_tiny", name)
    message = str(err.value)
    assert wrong in message and RELEASES[name].hash_prefix in message
    assert "Delete the file" in message and source.as_uri() in message
    assert torch_home.download_calls == []


def test_verified_hash_is_recorded_and_reused_until_the_file_changes(
    torch_home, tmp_path, monkeypatch
):
    name, source, _ = plant_tiny_release(tmp_path / "server", monkeypatch)
    torch_home.cache.mkdir(parents=True)
    placed = torch_home.cache / source.name
    placed.write_bytes(source.read_bytes())  # placed by hand: no record yet
    hashed = []
    real = releases._sha256
    monkeypatch.setattr(releases, "_sha256", lambda p: hashed.append(p) or real(p))
    full = hashlib.sha256(source.read_bytes()).hexdigest()
    assert release_sha256(name) == full and len(hashed) == 1
    build_encoder("r2plus1d_tiny", name)
    assert release_sha256(name) == full and len(hashed) == 1  # the record, not a re-hash
    # the same size, a new modification time: hashed again (and still right)
    os.utime(placed, ns=(placed.stat().st_atime_ns, placed.stat().st_mtime_ns + 10**9))
    assert release_sha256(name) == full and len(hashed) == 2
    # replaced by another file of the same size and time: caught by the prefix
    data = bytearray(placed.read_bytes())
    data[-1] ^= 1
    stat = placed.stat()
    placed.write_bytes(bytes(data))
    os.utime(placed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(WeightsError, match="is not the file of release"):
        release_sha256(name)


def test_wrong_hash_prefix_fails_and_leaves_no_file(torch_home, tmp_path, monkeypatch):
    name, source, _ = plant_tiny_release(tmp_path / "server", monkeypatch, hash_prefix="00000000")
    with pytest.raises(WeightsError, match="invalid hash value") as err:
        build_encoder("r2plus1d_tiny", name)
    assert source.name in str(err.value)
    assert len(torch_home.download_calls) == 1
    assert cache_files(torch_home) == []


def test_unreachable_release_fails_naming_file_and_folder(torch_home, tmp_path, monkeypatch):
    name, source, _ = plant_tiny_release(tmp_path / "server", monkeypatch)
    source.unlink()  # the URL now leads nowhere
    with pytest.raises(WeightsError) as err:
        build_encoder("r2plus1d_tiny", name)
    message = str(err.value)
    assert f"Place the file {source.name}" in message
    assert str(torch_home.cache) in message
    assert cache_files(torch_home) == []


def test_real_release_offline_names_file_folder_and_hash(torch_home):
    release = RELEASES["tsp:r3d_18-tac_on_kinetics"]
    with pytest.raises(WeightsError) as err:
        build_encoder("r3d_18", release.name)
    message = str(err.value)
    assert "r3d_18-tac_on_kinetics-dcd952c6.pth" in message
    assert str(torch_home.cache) in message
    assert torch_home.download_calls == [(release.url, "dcd952c6")]
    assert cache_files(torch_home) == []


def test_cached_release_that_does_not_load_says_replace_it(torch_home, tmp_path, monkeypatch):
    name, source, _ = plant_tiny_release(tmp_path / "server", monkeypatch)
    torch_home.cache.mkdir(parents=True)
    (torch_home.cache / source.name).write_bytes(source.read_bytes()[:1000])  # truncated
    with pytest.raises(WeightsError, match="replace it with a fresh copy of file://"):
        build_encoder("r2plus1d_tiny", name)
    assert torch_home.download_calls == []


def test_args_of_another_class_are_refused_by_name(torch_home, tmp_path, monkeypatch):
    name, source, _ = plant_tiny_release(tmp_path / "server", monkeypatch)
    checkpoint = torch.load(source, weights_only=False)
    checkpoint["args"].output_dir = Path("output")  # a pathlib object, not a plain value
    torch_home.cache.mkdir(parents=True)
    torch.save(checkpoint, torch_home.cache / source.name)
    plant_verified(torch_home.cache / source.name, RELEASES[name])
    with pytest.raises(WeightsError, match=r"holds an object of class pathlib\.\w*PosixPath"):
        build_encoder("r2plus1d_tiny", name)
