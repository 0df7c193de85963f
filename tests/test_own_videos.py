"""The README's "Your own videos" route, command by command, on a generated own-data example.

The example (`python -m tsp_pretrain.demo.own_example`) is laid out as own recordings are: plain
ids, subfolders (one with a space), .mp4 and .mkv, 25 and 30 fps. The preset
`presets/own-videos.yaml` is used as the README says, with its sizes shrunk for a CPU (the
recipe's R(2+1)D-34 and 128 x 171 frames would take hours here); every command is the README's.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from repo_copy import ROOT, copy_tracked_files, dvc_env, merge_params, run

# The preset, shrunk for a CPU test: a tiny backbone from scratch, small frames, few epochs.
CPU_SIZED = {
    "encoder": {"backbone": "r2plus1d_tiny", "weights": "none"},
    "decode": {"frame_size": [36, 48], "workers": 2},
    "transform": {"crop_size": 32},
    "train": {
        "epochs": 8,
        "batch_size": 16,
        "lr_backbone": 0.01,
        "lr_heads": 0.05,
        "warmup_epochs": 0.5,
        "lr_milestones": [6],
        "workers": 0,
    },
    "extract": {"stride": 4, "workers": 0},
    "evaluate": {"n_bootstrap": 200},
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    dest = copy_tracked_files(tmp_path_factory.mktemp("own"))
    run(["python", "-m", "tsp_pretrain.demo.own_example", "data/own"], dest)
    shutil.copy2(ROOT / "presets/own-videos.yaml", dest / "params.yaml")  # README step 2
    params = yaml.safe_load((dest / "params.yaml").read_text())
    (dest / "params.yaml").write_text(
        yaml.safe_dump(merge_params(params, CPU_SIZED), sort_keys=False)
    )
    run(["git", "init", "-q"], dest)
    run(["dvc", "add", "-q", "data/own"], dest)
    run(["git", "add", "-A"], dest)
    run(["git", "commit", "-qm", "own videos"], dest)
    return dest


@pytest.mark.integration
def test_features_then_tsp_then_the_verdict_without_any_demo_stage(repo):
    out = run(["dvc", "repro", "extract@initial"], repo)
    assert "demo@" not in out and "pretrain@" not in out
    features = repo / "data/features/initial"
    meta = json.loads((features / "meta.json").read_text())
    assert meta["num_videos"] == 28 and meta["num_missing"] == 0, meta
    names = sorted(p.stem for p in features.glob("*.npy"))
    assert names[0] == "s1_train_0000" and len(names) == 28
    for handoff in ("actionformer.json", "opentad.json", "category_idx.txt"):
        assert (features / handoff).is_file(), handoff

    out = run(["dvc", "exp", "run", "-n", "tsp"], repo)
    assert "demo@" not in out and "pretrain@" not in out
    for stage in ("'train'", "'extract@trained'", "'evaluate'", "'localize'"):
        assert f"Running stage {stage}" in out, stage

    verdict = run(["python", "-m", "tsp_pretrain.experiments", "verdict", "tsp"], repo)
    assert "within-video AUC" in verdict and "answer:" in verdict
    assert "training health:" in verdict and "not recorded" not in verdict
    diff = run(["dvc", "metrics", "diff", "HEAD", "tsp", "--md"], repo)
    assert "metrics/separability.json" in diff

    snippet = run(["python", "-m", "tsp_pretrain.features.localizers", str(features)], repo)
    assert f'feat_folder: "{features.resolve()}"' in snippet
    assert str((features / "actionformer.json").resolve()) in snippet


@pytest.mark.integration
def test_one_new_video_is_decoded_and_extracted_alone(repo):
    run(["dvc", "repro", "extract@initial"], repo)
    before = {p.name: p.stat().st_mtime_ns for p in (repo / "data/features/initial").glob("*.npy")}
    videos = repo / "data/own/videos"
    shutil.copy2(videos / "session 2/s2_valid_0000.mkv", videos / "session 2/s2_extra.mkv")
    annotations = json.loads((repo / "data/own/annotations.json").read_text())
    annotations["database"]["s2_extra"] = annotations["database"]["s2_valid_0000"]
    (repo / "data/own/annotations.json").write_text(json.dumps(annotations))

    done = subprocess.run(
        ["dvc", "repro", "extract@initial"], cwd=repo, env=dvc_env(), capture_output=True, text=True
    )
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-3000:]
    assert "decoded 1, reused 28" in log, log[-3000:]
    assert "1 video extracted, 28 kept unchanged" in log, log[-3000:]
    after = {p.name: p.stat().st_mtime_ns for p in (repo / "data/features/initial").glob("*.npy")}
    assert set(after) - set(before) == {"s2_extra.npy"}
    assert {k: after[k] for k in before} == before  # the others untouched
