"""The benchmarks still run against the library they measure (smallest sizes; no timings checked).

A benchmark is not exercised by any other test, so an API change of the library can break it
unnoticed (it happened: the clip dataset became keyed and bench/input_pipeline.py stopped
running). These runs only check that each completes and prints its figures.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _bench(script: str, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _rates(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"([\d.]+) clips/s", text)]


def test_training_bench_runs_and_prints_ratios():
    out = _bench("training.py", "--settings", "demo", "--workers", "0", "--steps", "2")
    assert "model alone on the same batches" in out and "end-to-end, 0 workers" in out
    assert len(_rates(out)) == 2 and all(r > 0 for r in _rates(out))


def test_input_pipeline_bench_runs_and_prints_the_table():
    out = _bench(
        "input_pipeline.py",
        *("--videos", "1", "--seconds", "3", "--clips", "32", "--cores", "1", "--no-levers"),
    )
    assert re.search(r"npy\s+1\s+[\d.]+", out) and re.search(r"mp4\s+1\s+[\d.]+", out), out


def test_numerics_bench_runs_and_prints_ratios():
    out = _bench("numerics.py", "--settings", "demo", "--steps", "1", "--repeats", "1")
    rows = re.findall(r"demo\s+(train|extract)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", out)
    assert [r[0] for r in rows] == ["train", "extract"] and all(float(r[3]) > 0 for r in rows)
    assert "pinned ATen AVX2, 2 threads" in out


def test_fidelity_bench_runs_and_the_npy_store_matches_the_official_preprocessing():
    out = _bench(
        "fidelity.py", "--seconds", "2", "--rates", "25", "--sizes", "64x48", "--stores", "npy"
    )
    median = re.search(r"npy\s+median\s+([\d.]+)\s+max\s+([\d.]+)", out)
    assert median is not None, out
    assert float(median.group(1)) < 0.5 and float(median.group(2)) < 1.0, out


def test_feature_bookkeeping_bench_shows_one_new_video_extracts_one_video():
    out = _bench("feature_bookkeeping.py", "--sizes", "20", "--incremental", "20")
    assert re.search(r"^\s+20\s+[\d.]+\s+[\d.]+$", out, re.MULTILINE), out
    before = re.search(r"before: whole frame index\s+20 in\s+[\d.]+ s\s+(\d+) in", out)
    now = re.search(r"now: per-video frame entry\s+20 in\s+[\d.]+ s\s+(\d+) in", out)
    assert before is not None and now is not None, out
    assert (int(before.group(1)), int(now.group(1))) == (21, 1), out
