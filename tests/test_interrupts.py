"""Ctrl-C and `python -m` commands end as the stages do: one line, no traceback, work kept."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from tsp_pretrain import cli
from tsp_pretrain.video import manifest

ROOT = Path(__file__).resolve().parents[1]

# A command whose pool workers block until killed; each announces itself with a file first.
_POOL_SCRIPT = """
import sys, time
from pathlib import Path
from tsp_pretrain.cli import run_stage
from tsp_pretrain.pools import process_pool

def work(i, folder):
    Path(folder, f"started-{i}").touch()
    time.sleep(3600)

def main():
    with process_pool(2) as pool:
        list(pool.map(work, range(4), [sys.argv[1]] * 4))

if __name__ == "__main__":
    run_stage(main, name="pooled", kept_on_interrupt="every item finished so far")
"""


def _wait_for(predicate, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("the condition never came true")
        time.sleep(0.2)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_ends_pool_workers_and_prints_one_line(tmp_path):
    script = tmp_path / "pooled.py"
    script.write_text(_POOL_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
        # and Ctrl-C's default action, as a terminal gives it: a test run started in the
        # background of a non-interactive shell (`cmd &`, as CI runners do) inherits SIGINT
        # ignored, and Python then keeps ignoring it (the command hung, in such a CI run)
        preexec_fn=_default_sigint,
    )
    try:
        _wait_for(lambda: len(list(tmp_path.glob("started-*"))) == 2, 300)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole group gets SIGINT
        _, err = proc.communicate(timeout=300)  # workers sleep for an hour: they were ended
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == cli.EXIT_INTERRUPTED
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert err.strip() == (
        "Interrupted: pooled stopped; every item finished so far is kept. Re-run the same "
        "command (or `dvc repro`) to resume from there."
    )


def test_ctrl_c_without_kept_work_says_so(capsys):
    def main():
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as stop:
        cli.run_stage(main, name="evaluate.py")
    assert stop.value.code == cli.EXIT_INTERRUPTED
    assert capsys.readouterr().err.strip() == (
        "Interrupted: evaluate.py stopped; nothing of it is kept. Re-run it to start again."
    )


def test_errors_of_a_module_run_with_python_m_are_user_errors(monkeypatch):
    """Under `python -m pkg.mod` the module's classes live in `__main__`, a second copy."""
    main = types.ModuleType("__main__")
    main.__spec__ = types.SimpleNamespace(name="tsp_pretrain.features.localizers")

    class LocalizerConfigError(ValueError):
        pass

    main.LocalizerConfigError = LocalizerConfigError
    monkeypatch.setitem(sys.modules, "__main__", main)
    assert cli.is_user_error(LocalizerConfigError("mixed names"))
    # a class of the same name in an unrelated __main__ is not taken for it
    main.__spec__ = types.SimpleNamespace(name="somebody.else")
    assert not cli.is_user_error(LocalizerConfigError("mixed names"))


def test_an_interrupted_scan_keeps_the_digests_it_computed(tmp_path, monkeypatch):
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in "abcde":
        (videos / f"{name}.mp4").write_bytes(name.encode() * 100)
    real = manifest.file_digest
    calls = []

    def digest_then_interrupt(path):
        calls.append(path)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(path)

    monkeypatch.setattr(manifest, "file_digest", digest_then_interrupt)
    cache = tmp_path / "cache.json"
    with pytest.raises(KeyboardInterrupt):
        manifest.write_manifest(videos, tmp_path / "m.csv", tmp_path / "r.json", cache)
    assert sorted(manifest.read_cache(cache)) == ["a.mp4", "b.mp4", "c.mp4"]
    # the next scan hashes only the two files it had not reached
    calls.clear()
    monkeypatch.setattr(manifest, "file_digest", lambda p: (calls.append(p), real(p))[1])
    frame = manifest.write_manifest(videos, tmp_path / "m.csv", tmp_path / "r.json", cache)
    assert sorted(Path(p).name for p in calls) == ["d.mp4", "e.mp4"]
    assert len(frame) == 5
