"""The extract-only route on every dataset layout users have: one command, a release name.

`dvc repro extract@initial` with `encoder.weights: tsp:r2plus1d_18-tsp_on_activitynet` (planted in
a temporary torch hub cache in the official release layout, no network) must give one feature
file per video, named as localizers expect, for tiny datasets laid out as:

- the official TSP layout: videos in train/ valid/ test/, re-encoded at 30 fps, the official CSV
  ground-truth tables;
- ActivityNet: v_<id>.<ext> with any extension, the ActivityNet JSON (bare ids);
- THUMOS14: video_validation_* / video_test_* and the per-class txt folder;
- one's own flat folder of videos named freely, with an ActivityNet-style JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from repo_copy import copy_tracked_files, dvc_env
from test_releases import plant_verified
from videos import write_coded, write_video

from tsp_pretrain.models.registry import get_backbone
from tsp_pretrain.models.releases import get_release

ROOT = Path(__file__).resolve().parents[1]
RELEASE = "tsp:r2plus1d_18-tsp_on_activitynet"
FRAMES = 90  # 3 s at 30 fps

TSP_CSV_HEADER = (
    "video-name,t-start,t-end,action-label,video-duration,filename,fps,video-frames,"
    "temporal-region-label"
)


def _anet_json(videos: dict[str, tuple[str, list]]) -> str:
    database = {
        vid: {
            "subset": subset,
            "duration": FRAMES / 30,
            "annotations": [{"segment": seg, "label": label} for seg, label in actions],
        }
        for vid, (subset, actions) in videos.items()
    }
    return json.dumps({"version": "VERSION 1.3", "database": database})


JUMP = ([0.4, 2.0], "Jump")
RUN = ([1.0, 2.9], "Run")


def _official(root: Path) -> tuple[dict, dict[str, str]]:
    videos = root / "videos"
    for sub, name in (("train", "v_a1"), ("train", "v_a2"), ("valid", "v_b1"), ("test", "v_t1")):
        write_video(videos / sub / f"{name}.mp4", FRAMES)
    rows = lambda sub, vid, s, e, label, region: (  # noqa: E731
        f"{vid},{s},{e},{label},3.0,{vid}.mp4,30,{FRAMES},{region}"
    )
    (root / "train.csv").write_text(
        "\n".join(
            [
                TSP_CSV_HEADER,
                rows("train", "v_a1", 0.4, 2.0, "Jump", "Action"),
                rows("train", "v_a1", 2.0, 3.0, "", "No action"),
                rows("train", "v_a2", 1.0, 2.9, "Run", "Action"),
            ]
        )
        + "\n"
    )
    (root / "valid.csv").write_text(
        TSP_CSV_HEADER + "\n" + rows("valid", "v_b1", 0.4, 2.0, "Jump", "Action") + "\n"
    )
    dataset = {
        "format": "tsp_csv",
        "annotations": str(root),
        "csv_files": {"training": "train.csv", "validation": "valid.csv"},
        "videos": str(videos),
    }
    # the test videos have no ground truth row: they are not in the tables, so no features
    return dataset, {"v_a1": "v_a1", "v_a2": "v_a2", "v_b1": "v_b1"}


def _activitynet(root: Path) -> tuple[dict, dict[str, str]]:
    videos = root / "videos"
    write_video(videos / "v_a1.mp4", FRAMES)
    write_video(videos / "v_a2.mkv", FRAMES)
    write_coded(videos / "v_b1.webm", "libvpx-vp9", num_frames=FRAMES)
    write_video(videos / "v_t1.mp4", FRAMES)
    (root / "anet.json").write_text(
        _anet_json(
            {
                "a1": ("training", [JUMP]),
                "a2": ("training", [RUN]),
                "b1": ("validation", [JUMP]),
                "t1": ("testing", []),
            }
        )
    )
    dataset = {
        "format": "activitynet",
        "annotations": str(root / "anet.json"),
        "videos": str(videos),
    }
    return dataset, {"a1": "v_a1", "a2": "v_a2", "b1": "v_b1", "t1": "v_t1"}


def _thumos14(root: Path) -> tuple[dict, dict[str, str]]:
    videos = root / "videos"
    names = ["video_validation_0000051", "video_validation_0000052", "video_test_0000004"]
    for name in names:
        write_video(videos / f"{name}.mp4", FRAMES)
    ann = root / "annotations"
    (ann / "annotation_val").mkdir(parents=True)
    (ann / "annotation_test").mkdir(parents=True)
    (ann / "annotation_val/Jump_val.txt").write_text(
        "video_validation_0000051 0.4 2.0\nvideo_validation_0000052 1.0 2.9\n"
    )
    (ann / "annotation_test/Jump_test.txt").write_text("video_test_0000004 0.4 2.0\n")
    dataset = {
        "format": "thumos14",
        "annotations": str(ann),
        "videos": str(videos),
        "train_subset": "validation",
        "valid_subset": "testing",
    }
    return dataset, {name: name for name in names}


def _own(root: Path) -> tuple[dict, dict[str, str]]:
    videos = root / "my videos"
    for name in ("kitchen_cam_01", "yard", "garage.2024"):
        write_video(videos / f"{name}.mp4", FRAMES)
    (root / "mine.json").write_text(
        _anet_json(
            {
                "kitchen_cam_01": ("training", [JUMP]),
                "yard": ("training", [RUN]),
                "garage.2024": ("validation", [JUMP]),
            }
        )
    )
    dataset = {
        "format": "activitynet",
        "annotations": str(root / "mine.json"),
        "videos": str(videos),
    }
    return dataset, {
        "kitchen_cam_01": "kitchen_cam_01",
        "yard": "yard",
        "garage.2024": "garage.2024",
    }


LAYOUTS = {"official": _official, "activitynet": _activitynet, "thumos14": _thumos14, "own": _own}


def _plant_release(torch_home: Path) -> dict[str, torch.Tensor]:
    """A checkpoint in the official release layout (random weights) under the release's name."""
    spec = get_backbone("r2plus1d_18")
    torch.manual_seed(0)
    backbone = spec.build()
    spec.remove_classifier(backbone)
    state = {f"features.{k}": v for k, v in backbone.state_dict().items()}
    state |= {"fc1.weight": torch.zeros(200, 512), "fc1.bias": torch.zeros(200)}
    state |= {"fc2.weight": torch.zeros(2, 1024), "fc2.bias": torch.zeros(2)}
    path = torch_home / "hub/checkpoints" / get_release(RELEASE).file_name
    path.parent.mkdir(parents=True)
    torch.save(
        {
            "model": state,
            "optimizer": {},
            "lr_scheduler": {},
            "epoch": 7,
            "args": argparse.Namespace(backbone="r2plus1d_18", clip_len=16),
        },
        path,
    )
    plant_verified(path, get_release(RELEASE))
    return backbone


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> tuple[Path, Path]:
    """The tracked files of this repository (no outputs) and a torch hub cache with the release."""
    dest = copy_tracked_files(tmp_path_factory.mktemp("repo"))
    torch_home = tmp_path_factory.mktemp("torch_home")
    _plant_release(torch_home)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    return dest, torch_home


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_features_from_a_release_name_in_one_command(repo, layout, tmp_path):
    root, torch_home = repo
    dataset, expected = LAYOUTS[layout](tmp_path)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params.update(clip_len=8, datasets={"target": dataset})
    params["pretrain"]["runs"] = {}
    # tiny frames and crops keep the test fast; crop 16 for a release trained at 112 is refused
    # (tsp_pretrain.models.crop) unless the check is off on purpose
    params["encoder"] = {"backbone": "r2plus1d_18", "weights": RELEASE, "crop_check": True}
    params["decode"] |= {"short_side": 20, "workers": 1}
    params["transform"]["crop_size"] = 16
    params["extract"]["stride"] = 4

    def repro() -> subprocess.CompletedProcess:
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        return subprocess.run(
            ["dvc", "repro", "extract@initial"],
            cwd=root,
            env=dvc_env(TORCH_HOME=str(torch_home)),
            capture_output=True,
            text=True,
        )

    log = ""
    if layout == sorted(LAYOUTS)[0]:  # once: the refusal, at the stage that cuts the clips
        refused = repro()
        assert refused.returncode != 0
        assert "trained on 112 x 112 crops, but transform.crop_size is 16" in refused.stderr
        assert "encoder.crop_check: false" in refused.stderr and "Traceback" not in refused.stderr
        log = refused.stdout  # the stages before extraction ran then
    params["encoder"]["crop_check"] = False
    done = repro()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    log += done.stdout
    ran = {line.split("'")[1] for line in log.splitlines() if line.startswith("Running stage")}
    assert ran <= {
        "check",
        "videos@target",
        "annotations@target",
        "decode@target",
        "init_encoder",
        "extract@initial",
    }
    assert "decode@target" in ran and "extract@initial" in ran

    out = root / "data/features/initial"
    for video_id, stem in expected.items():
        feats = np.load(out / f"{stem}.npy")
        assert feats.dtype == np.float32 and feats.ndim == 2 and feats.shape[1] == 512, (
            video_id,
            feats.shape,
        )
        # 3 s at 15 fps = 45 frames; windows of 8 every 4 frames: floor((45 - 8) / 4) + 1
        assert len(feats) == (45 - 8) // 4 + 1, (video_id, feats.shape)
    produced = sorted(p.stem for p in out.glob("*.npy"))
    assert produced == sorted(expected.values())
    meta = json.loads((out / "meta.json").read_text())
    assert meta["encoder"]["weights"] == RELEASE and meta["encoder"]["backbone"] == "r2plus1d_18"
    assert meta["num_videos"] == len(expected) and meta["feature_dim"] == 512
    assert (out / "missing_files.txt").read_text() == ""
    # a localizer finds each video's file as prefix + video id + .npy
    assert all(meta["file_prefix"] + vid == stem for vid, stem in expected.items()), meta
