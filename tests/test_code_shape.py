"""The size rule of the library and the stages: a function a reader can hold in view.

No function of ``tsp_pretrain/`` or ``stages/`` is longer than :data:`MAX_LINES` lines unless a
``# long:`` comment inside it says why. (Signatures are held to 10 parameters by ruff's
PLR0913, pyproject.toml.)
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 60


def long_functions(root: Path) -> list[str]:
    """``path::name (N lines)`` of every function over MAX_LINES without a ``# long:`` reason."""
    found = []
    for folder in ("tsp_pretrain", "stages"):
        for path in sorted((root / folder).rglob("*.py")):
            lines = path.read_text().splitlines()
            for node in ast.walk(ast.parse("\n".join(lines))):
                if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                body = lines[node.lineno - 1 : node.end_lineno]
                if len(body) > MAX_LINES and not any("# long:" in line for line in body):
                    rel = path.relative_to(root)
                    found.append(f"{rel}::{node.name} ({len(body)} lines)")
    return found


def test_no_function_is_longer_than_a_screen_without_a_reason():
    assert long_functions(ROOT) == []


def test_the_rule_sees_a_long_function_and_its_reason(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    (tmp_path / "stages").mkdir()
    (tmp_path / "tsp_pretrain").mkdir()
    (tmp_path / "stages" / "s.py").write_text(f"def f():\n{body}\n")
    assert long_functions(tmp_path) == ["stages/s.py::f (61 lines)"]
    (tmp_path / "stages" / "s.py").write_text(f"def f():\n    # long: a table of cases\n{body}\n")
    assert long_functions(tmp_path) == []
