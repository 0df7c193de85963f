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
    for layout in ("rgb", "yuv420p"):
        expected |= {
            f"input.to_model_{layout}_clips_per_s",
            f"input.copy_{layout}_clips_per_s",
            f"input.bytes_per_clip_{layout}",
        }
    expected.add("input.bytes_per_clip_float32")
    assert set(figures) == expected  # no GPU memory lines on the CPU
    assert all(float(value) > 0 for value in figures.values())
    assert "uint8 yuv420p crops" in lines[0]  # the mp4 store's layout by default
    # --tiny: 4 frames of 32 x 32; yuv420p packs Y and two 17 x 17 chroma windows per frame
    assert float(figures["input.bytes_per_clip_float32"]) == 4 * 3 * 32 * 32 * 4
    assert float(figures["input.bytes_per_clip_rgb"]) == 4 * 32 * 32 * 3
    assert float(figures["input.bytes_per_clip_yuv420p"]) == 4 * (32 * 32 + 2 * 17 * 17)


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
