"""The crop an encoder was trained at is known, recorded and enforced (tsp_pretrain.models.crop)."""

from __future__ import annotations

import pytest
import torch

from tsp_pretrain.models.crop import (
    RELEASE_CROP,
    CropMismatchError,
    check_crop,
    file_crop,
    torchvision_crop,
    weights_crop,
)
from tsp_pretrain.models.encoder_file import save_encoder
from tsp_pretrain.models.registry import get_backbone


def test_torchvision_weights_carry_their_crop():
    assert torchvision_crop("r2plus1d_18", "KINETICS400_V1") == 112
    assert torchvision_crop("mvit_v2_s", "KINETICS400_V1") == 224
    assert torchvision_crop("r2plus1d_tiny", "KINETICS400_V1") is None  # no torchvision model


def test_releases_are_112_and_unknown_files_unknown(tmp_path):
    assert RELEASE_CROP == 112
    assert weights_crop("r2plus1d_34", "tsp:r2plus1d_34-tsp_on_activitynet") == 112
    assert weights_crop("r2plus1d_18", "none") is None
    plain = tmp_path / "state_dict.pth"
    torch.save({"conv.weight": torch.zeros(1)}, plain)
    assert weights_crop("r2plus1d_18", str(plain)) is None
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    assert file_crop(tmp_path / "junk.pt") is None


def test_encoder_files_record_the_crop_they_were_trained_at(tmp_path):
    spec = get_backbone("r2plus1d_tiny")
    module = spec.build()
    dim = spec.remove_classifier(module)
    path = tmp_path / "enc.pt"
    save_encoder(
        path, module, backbone_name="r2plus1d_tiny", feature_dim=dim, info={}, crop_size=32
    )
    assert file_crop(path) == 32
    assert weights_crop("r2plus1d_tiny", str(path)) == 32


def test_a_mismatch_is_refused_with_the_keys_to_change():
    with pytest.raises(CropMismatchError) as err:
        check_crop(112, 32, "models/initial.pt", enabled=True)
    message = str(err.value)
    for key in ("transform.crop_size", "decode.frame_size", "encoder.crop_check", "112", "32"):
        assert key in message
    check_crop(112, 112, "models/initial.pt", enabled=True)  # the same crop
    check_crop(None, 32, "models/initial.pt", enabled=True)  # unknown: nothing to check
    check_crop(112, 32, "models/initial.pt", enabled=False)  # off on purpose


class _Trap:
    """Unpickling this runs ``touch`` on a file: what a checkpoint read with weights_only=False
    would do."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_reading_the_crop_executes_nothing_in_the_file(tmp_path):
    trap = tmp_path / "was-executed"
    path = tmp_path / "enc.pt"
    torch.save({"crop_size": 112, "extra": _Trap(trap)}, path)
    assert file_crop(path) is None  # refused as the weights loader refuses it
    assert not trap.exists()
