"""A decode run SIGKILLed while it decodes its third video, in a child process: what a killed
run leaves on disk, for the tests of resuming (single-process runs and shards alike)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Child prelude: the third call of the per-video decode function kills the process, with no
#: chance to clean up (the decode runs in one process, so the run dies with it).
_DIES_ON_THE_THIRD = """
import os, signal
import pandas as pd
from tsp_pretrain.video import decode

real, calls = decode._decode_one, []

def dies_on_the_third(job):
    calls.append(job.video_id)
    if len(calls) == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(job)

decode._decode_one = dies_on_the_third
"""


def run_killed_on_the_third(call: str) -> subprocess.CompletedProcess:
    """Run the Python code ``call`` (a decode in one process; ``pd`` and ``decode`` imported)
    in a child process that is SIGKILLed when its third video starts decoding."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", _DIES_ON_THE_THIRD + call],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
