"""bench/interval_coverage.py --small-samples still runs against the library (smallest sizes;
the coverages themselves are the bench's business, docs/evaluation.md)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tsp_pretrain.evaluation import MIN_VIDEOS_FOR_VERDICT

ROOT = Path(__file__).resolve().parents[1]


def test_small_samples_section_prints_both_tables_and_the_minimum():
    args = ["--small-samples", "--sizes", "3", "12", "--repeats", "20", "--bootstrap", "50"]
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "interval_coverage.py"), *args, "--map-repeats", "4"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for row in ("per-video AUC differences", "heavy-tailed t(3)", "2 classes", "5 classes"):
        cells = re.search(rf"^{re.escape(row)}\s+([\d.]+)\s+([\d.]+)\s", out, re.MULTILINE)
        assert cells is not None, out
        assert all(0.0 <= float(c) <= 1.0 for c in cells.groups())
    assert f"MIN_VIDEOS_FOR_VERDICT = {MIN_VIDEOS_FOR_VERDICT}" in out
