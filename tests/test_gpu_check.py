"""bench/gpu_check.py runs end to end (``--tiny`` on the CPU) and prints parseable figures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_tiny_on_cpu_prints_positive_figures():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--tiny", "--device", "cpu"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("device: cpu") and "backbone r2plus1d_tiny" in lines[0]
    figures = dict(line.split(": ", 1) for line in lines[1:])
    expected = {
        f"{phase}.{name}"
        for phase in ("train", "extract")
        for name in ("model_only_clips_per_s", "with_transfer_clips_per_s", "transfer_ratio")
    }
    assert set(figures) == expected  # no GPU memory lines on the CPU
    assert all(float(value) > 0 for value in figures.values())


def test_gpu_check_rejects_cuda_without_cuda_and_unknown_backbones():
    """A requested device or backbone that does not exist is an error naming it, no silent CPU."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": ""}
    script = str(ROOT / "bench" / "gpu_check.py")
    cuda = subprocess.run(
        [sys.executable, script, "--tiny", "--device", "cuda"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert cuda.returncode != 0 and "CUDA is not available" in cuda.stderr
    bad = subprocess.run(
        [sys.executable, script, "--tiny", "--device", "cpu", "--backbone", "r9d_99"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert bad.returncode != 0 and "unknown backbone 'r9d_99'" in bad.stderr
