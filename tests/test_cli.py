"""Stage scripts: a user error prints its message (no traceback) and exits 1; a bug keeps its
traceback; TSP_LOG_LEVEL=DEBUG or --verbose shows the traceback of user errors too."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tsp_pretrain.annotations import AnnotationError
from tsp_pretrain.cli import is_user_error, run_stage
from tsp_pretrain.config import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def _stage(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "stages" / "annotations.py"), *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
    )


def test_a_bad_param_prints_the_message_without_traceback(tmp_path):
    (tmp_path / "params.yaml").write_text("annotations:\n  workers: 0\n")
    args = ["--dataset", "target", "--manifest", "m.csv", "--labels-record", "r.json"]
    done = _stage([*args, "--out", "out"], tmp_path)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "ERROR in annotations.py" in done.stderr
    assert "annotations.workers: Input should be greater than or equal to 1" in done.stderr
    verbose = _stage([*args, "--out", "out", "--verbose"], tmp_path)
    assert verbose.returncode == 1 and "Traceback" in verbose.stderr
    debug = _stage([*args, "--out", "out"], tmp_path, TSP_LOG_LEVEL="DEBUG")
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_run_stage_exits_1_for_user_errors_and_lets_bugs_through(capsys, monkeypatch):
    monkeypatch.delenv("TSP_LOG_LEVEL", raising=False)

    def bad_input() -> None:
        raise AnnotationError("x.json:3: end < start; fix the row")

    with pytest.raises(SystemExit) as exit_info:
        run_stage(bad_input, "annotations@t")
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "ERROR in annotations@t: x.json:3: end < start; fix the row" in err
    assert "Traceback" not in err

    def bug() -> None:
        raise KeyError("column")

    with pytest.raises(KeyError):
        run_stage(bug, "annotations@t")
    assert is_user_error(ConfigError("x")) and is_user_error(FileNotFoundError("x"))
    assert not is_user_error(ValueError("x")) and not is_user_error(TypeError("x"))


STAGE_SCRIPTS = sorted(p for p in (ROOT / "stages").glob("*.py") if not p.name.startswith("_"))
# the library's commands (`python -m tsp_pretrain.<module>`)
COMMANDS = sorted(
    p for p in (ROOT / "tsp_pretrain").rglob("*.py") if 'if __name__ == "__main__"' in p.read_text()
)


@pytest.mark.parametrize("script", STAGE_SCRIPTS + COMMANDS, ids=lambda p: p.name)
def test_every_stage_and_command_ends_with_run_stage(script):
    """One handling of user errors and Ctrl-C for every entry point a user runs."""
    tree = ast.parse(script.read_text())
    last = tree.body[-1]
    assert isinstance(last, ast.If) and "__main__" in ast.unparse(last.test)
    assert "run_stage(main" in ast.unparse(last)


def test_every_listed_user_error_is_a_real_exception_class():
    """The list names classes as strings (so cli.py imports no torch): a typo would silently turn
    a user error into a 'bug' with a traceback. Each must import and be an exception class."""
    import importlib

    from tsp_pretrain.cli import USER_ERRORS
    from tsp_pretrain.video.decode import DiskSpaceError

    for name in USER_ERRORS:
        module_name, _, class_name = name.partition(":")
        cls = getattr(importlib.import_module(module_name), class_name, None)
        assert isinstance(cls, type) and issubclass(cls, Exception), name
    assert is_user_error(DiskSpaceError("needs ~3 GB in data/frames, 1 GB free"))
