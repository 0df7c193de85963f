"""The ActivityNet and THUMOS14 presets: the paper's recipe, the full set of keys, the route.

The expected values are typed here from the recipe (the paper and the official repository's
scripts), independently of the preset files, so that an edit of a preset that leaves the recipe
fails here.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from repo_copy import copy_tracked_files, run

from tsp_pretrain.config import parse_params

ROOT = Path(__file__).resolve().parents[1]
PRESETS = {
    "activitynet": ROOT / "presets/activitynet.yaml",
    "thumos14": ROOT / "presets/thumos14.yaml",
    "own-videos": ROOT / "presets/own-videos.yaml",
}

# The recipe, per dataset: 2 GPUs (one process each) with batch 32 each, per-GPU learning rates
# multiplied by the number of processes.
COMMON = {
    "clip_len": 16,
    "frame_rate": 15,
    "gvf": True,
    "objective": "tsp",
    "decode.frame_size": (128, 171),
    "decode.method": "official",  # the released code's frame choice and bilinear resize
    "transform.crop_size": 112,
    "encoder.backbone": "r2plus1d_34",
    "encoder.weights": "tsp:r2plus1d_34-tac_on_kinetics",
    "pretrain.runs": {},
    "demo.runs": {},
    "train.epochs": 8,
    "train.batch_size": 32,
    "train.scale_lr_by_world_size": True,
    "train.clips_per_segment": 5,
    "train.lr_stem": 0.0,
    "train.lr_backbone": 1e-4,
    "train.momentum": 0.9,
    "train.weight_decay": 0.005,
    "train.warmup_epochs": 2,
    "train.warmup_factor": 1e-5,
    "train.lr_milestones": (4, 6),
    "train.lr_gamma": 0.01,
    "train.alpha_action": 1.0,
    "train.alpha_region": 1.0,
    "train.gvf_pool": "max",
    "extract.batch_size": 32,
}
RECIPE = {
    "activitynet": {
        **COMMON,
        "train.processes": 2,
        "train.lr_heads": 2e-3,
        "extract.stride": 16,
        "datasets.target.format": "activitynet",
        "datasets.target.train_subset": "training",
        "datasets.target.valid_subset": "validation",
    },
    "thumos14": {
        **COMMON,
        "train.processes": 2,
        "train.lr_heads": 4e-3,
        "extract.stride": 1,
        "datasets.target.format": "thumos14",
        "datasets.target.train_subset": "validation",
        "datasets.target.valid_subset": "testing",
    },
    # your own videos: the ActivityNet recipe per GPU, on one GPU
    "own-videos": {
        **COMMON,
        "train.processes": 1,
        "train.lr_heads": 2e-3,
        "extract.stride": 16,
        "datasets.target.format": "activitynet",
        "datasets.target.train_subset": "training",
        "datasets.target.valid_subset": "validation",
    },
}


def _get(params, dotted: str):
    node = params
    for part in dotted.split("."):
        node = node[part] if isinstance(node, dict) else getattr(node, part)
    return node


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_is_the_recipe(name):
    params = parse_params(yaml.safe_load(PRESETS[name].read_text()), PRESETS[name])
    wrong = {
        key: (_get(params, key), want)
        for key, want in RECIPE[name].items()
        if _get(params, key) != pytest.approx(want)
    }
    assert wrong == {}, f"{name}: (preset, recipe) differ: {wrong}"
    assert set(params.datasets) == {"target"}, "a preset needs no pretraining dataset"


def _keys(node, prefix="") -> set[str]:
    if not isinstance(node, dict):
        return {prefix}
    return {k for key, value in node.items() for k in _keys(value, f"{prefix}{key}.")}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_has_every_key_of_params_yaml(name):
    """`dvc exp run -S key=value` only sets keys that exist: a preset holds every key the demo's
    params.yaml holds (the datasets and pretraining runs excepted: they name other things)."""
    demo = _keys(yaml.safe_load((ROOT / "params.yaml").read_text()))
    preset = _keys(yaml.safe_load(PRESETS[name].read_text()))
    skip = ("datasets.", "pretrain.runs.", "demo.runs.")
    missing = sorted(k for k in demo - preset if not k.startswith(skip))
    assert missing == [], f"{name} lacks {missing}"


def _repo_with_preset(dest: Path, name: str) -> Path:
    """The tracked files (minus pipeline outputs) with the preset as params.yaml, and empty
    placeholders where the preset expects the dataset."""
    copy_tracked_files(dest)
    shutil.copy2(PRESETS[name], dest / "params.yaml")
    target = yaml.safe_load(PRESETS[name].read_text())["datasets"]["target"]
    (dest / target["videos"]).mkdir(parents=True)
    if target["format"] == "thumos14":
        (dest / target["annotations"]).mkdir(parents=True)
    else:
        (dest / target["annotations"]).write_text('{"database": {}}')
    run(["git", "init", "-q"], dest)
    run(["git", "add", "-A"], dest)
    run(["git", "commit", "-qm", "preset"], dest)
    return dest


def _route(repo: Path, target: str) -> set[str]:
    dot = run(["dvc", "dag", "--dot", *([target] if target else [])], repo)
    return set(re.findall(r'^"([^"]+)";$', dot, flags=re.M))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_routes_run_only_what_they_need_and_accept_overrides(name, tmp_path):
    repo = _repo_with_preset(tmp_path, name)
    data = {"check", "videos@target", "annotations@target", "decode@target"}
    assert _route(repo, "extract@initial") == data | {"init_encoder", "extract@initial"}
    assert _route(repo, "extract@trained") == data | {
        "init_encoder",
        "extract@initial",
        "train",
        "extract@trained",
    }
    # `dvc repro` / `dvc exp run` without a target: the study on this data, nothing of the demo
    assert _route(repo, "") == data | {
        "init_encoder",
        "extract@initial",
        "train",
        "extract@trained",
        "evaluate",
        "localize",
    }
    # an experiment on top of the preset: queued with an override (not run), then inspected
    run(
        ["dvc", "exp", "run", "--queue", "-n", "clip32", "-S", "clip_len=32", "extract@initial"],
        repo,
    )
    queued = json.loads(run(["dvc", "exp", "show", "--json"], repo))
    assert "clip32" in json.dumps(queued)
    assert '"clip_len": 32' in json.dumps(queued)
    assert yaml.safe_load((repo / "params.yaml").read_text())["clip_len"] == 16


def test_a_missing_annotation_file_is_an_error_naming_its_param(tmp_path):
    """Stage `check` runs first: DVC's own missing-dependency error would name only the path."""
    repo = _repo_with_preset(tmp_path, "own-videos")
    (repo / "data/own/annotations.json").unlink()
    done = subprocess.run(
        ["dvc", "repro", "extract@initial"], cwd=repo, capture_output=True, text=True
    )
    assert done.returncode != 0
    assert (
        "datasets.target.annotations = 'data/own/annotations.json': no such file" in done.stderr
    ), done.stderr
    assert "Running stage 'videos@target'" not in done.stdout
