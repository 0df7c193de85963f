"""Where the GVF and the initial weights come from: a GVF table, pooled features, tracked files."""

from __future__ import annotations

import logging

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from tsp_pretrain.features.gvf import GVFTableError, read_gvf_table, training_gvf
from tsp_pretrain.models.registry import get_backbone
from tsp_pretrain.models.weights import WeightsError, describe_weights, load_encoder_weights

VIDEOS = pd.DataFrame(
    {
        "video_id": ["abc", "video_validation_0000051", "xyz"],
        "filename": ["train/v_abc.mp4", "video_validation_0000051.mp4", "xyz.mkv"],
    }
)


def _table(path, entries: dict[str, np.ndarray]):
    with h5py.File(path, "w") as f:
        for key, vector in entries.items():
            f.create_dataset(key, data=vector)
    return path


def test_gvf_table_is_read_by_file_stem_then_id(tmp_path):
    rng = np.random.default_rng(0)
    entries = {
        "v_abc": rng.normal(size=8),  # ActivityNet: keyed by the file stem v_<id>
        "video_validation_0000051": rng.normal(size=8),  # THUMOS14: the stem is the id
        "xyz": rng.normal(size=8),
        "unrelated": rng.normal(size=8),
    }
    gvf = read_gvf_table(_table(tmp_path / "t.h5", entries), VIDEOS)
    assert sorted(gvf) == sorted(VIDEOS["video_id"])
    np.testing.assert_allclose(gvf["abc"].numpy(), entries["v_abc"].astype(np.float32))
    np.testing.assert_allclose(
        gvf["video_validation_0000051"].numpy(), entries["video_validation_0000051"], rtol=1e-6
    )
    assert gvf["xyz"].dtype == torch.float32


def test_gvf_table_missing_videos_or_bad_shapes_fail_naming_the_file(tmp_path):
    path = _table(tmp_path / "t.h5", {"v_abc": np.zeros(8)})
    with pytest.raises(GVFTableError, match=r"t\.h5: no GVF for 2 of 3 videos"):
        read_gvf_table(path, VIDEOS)
    bad = _table(tmp_path / "b.h5", {"v_abc": np.zeros((3, 8))})
    with pytest.raises(GVFTableError, match="one vector per video"):
        read_gvf_table(bad, VIDEOS.head(1))
    ragged = _table(tmp_path / "r.h5", {"v_abc": np.zeros(8), "xyz": np.zeros(4)})
    with pytest.raises(GVFTableError, match="different lengths"):
        read_gvf_table(ragged, VIDEOS.iloc[[0, 2]])
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(GVFTableError, match="not an HDF5 file"):
        read_gvf_table(tmp_path / "text.h5", VIDEOS)
    with pytest.raises(GVFTableError, match="no such GVF table"):
        read_gvf_table(tmp_path / "absent.h5", VIDEOS)


def test_training_gvf_uses_the_table_or_pools_and_checks_the_feature_size(tmp_path):
    feats = {
        "abc": np.array([[0.0, 5.0], [3.0, 1.0]], dtype=np.float32),
        "video_validation_0000051": np.ones((1, 2), np.float32),
        "xyz": np.zeros((2, 2), np.float32),
        "other": np.ones((1, 2), np.float32),  # not trained on: not pooled
    }
    pooled = training_gvf(VIDEOS, feature_dim=2, gvf_file=None, initial_features=feats)
    assert sorted(pooled) == sorted(VIDEOS["video_id"])
    assert pooled["abc"].tolist() == [3.0, 5.0]
    table = _table(
        tmp_path / "t.h5", {"v_abc": [1, 2], "video_validation_0000051": [3, 4], "xyz": [5, 6]}
    )
    from_file = training_gvf(VIDEOS, feature_dim=2, gvf_file=table, initial_features=None)
    assert from_file["abc"].tolist() == [1.0, 2.0]
    with pytest.raises(GVFTableError, match="size \\[2\\], the encoder's features 512"):
        training_gvf(VIDEOS, feature_dim=512, gvf_file=table, initial_features=None)


def test_weights_source_records_file_digest_and_warns_outside_the_tracked_folder(tmp_path, caplog):
    tracked = tmp_path / "models/weights"
    tracked.mkdir(parents=True)
    inside, outside = tracked / "a.pt", tmp_path / "b.pt"
    inside.write_bytes(b"one")
    outside.write_bytes(b"two")
    with caplog.at_level(logging.WARNING):
        record = describe_weights(str(inside), tracked_dir=tracked)
    assert record["kind"] == "checkpoint file" and len(record["digest"]) == 16
    assert "DVC does not track" not in caplog.text
    with caplog.at_level(logging.WARNING):
        other = describe_weights(str(outside), tracked_dir=tracked)
    assert "DVC does not track" in caplog.text and "encoder.weights" in caplog.text
    assert other["digest"] != record["digest"]
    assert describe_weights("none", tracked)["kind"] == "random initialisation"
    assert describe_weights("KINETICS400_V1", tracked)["kind"] == "torchvision weights"


def test_missing_weights_path_names_the_pretraining_stage(tmp_path):
    spec = get_backbone("r2plus1d_tiny")
    model = spec.build()
    spec.remove_classifier(model)
    with pytest.raises(WeightsError, match=r"no such checkpoint file.*pretrain@<run>"):
        load_encoder_weights(model, spec, str(tmp_path / "models/weights/demo-tac.pt"))


def test_a_bad_gvf_table_is_a_user_error_not_a_bug():
    """The train stage prints its message (file, cause, fix) and exits 1, without a traceback."""
    from tsp_pretrain.cli import is_user_error

    assert is_user_error(GVFTableError("t.h5: no GVF for 2 of 3 videos"))
