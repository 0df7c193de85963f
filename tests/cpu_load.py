"""Keeping the CPU busy while a test runs: determinism must not depend on load or scheduling."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def busy_cpu(processes: int | None = None) -> Iterator[None]:
    """Run ``processes`` (default: one per core) spinning Python processes until the block ends.

    The test's own work then competes for every core, so worker processes start, interleave and
    finish in another order than on an idle machine. Nothing here measures time.
    """
    count = processes or os.cpu_count() or 2
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
        for spinner in spinners:
            spinner.wait()
