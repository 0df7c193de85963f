"""Stage scripts import the library of their own checkout, not an installed copy.

DVC runs queued and temporary experiments in a copy of the repository; with the editable
install of requirements.txt a plain import would load the workspace's library instead, so the
experiment would run other code than its dvc.lock records (see stages/_checkout.py).
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STAGES = sorted(p for p in (ROOT / "stages").glob("*.py") if not p.name.startswith("_"))


@pytest.mark.parametrize("script", STAGES, ids=lambda p: p.name)
def test_every_stage_imports_its_checkout_before_the_library(script):
    imports = [
        node
        for node in ast.parse(script.read_text()).body
        if isinstance(node, ast.Import | ast.ImportFrom)
    ]
    names = [n.names[0].name if isinstance(n, ast.Import) else (n.module or "") for n in imports]
    assert "_checkout" in names, f"{script.name} does not import _checkout"
    first_library = next(i for i, n in enumerate(names) if n.startswith("tsp_pretrain"))
    assert names.index("_checkout") < first_library


def test_a_copy_of_the_repository_runs_its_own_library(tmp_path):
    copy = tmp_path / "copy"
    (copy / "stages").mkdir(parents=True)
    shutil.copy(ROOT / "stages" / "_checkout.py", copy / "stages")
    (copy / "tsp_pretrain").mkdir()
    (copy / "tsp_pretrain" / "__init__.py").write_text("")
    probe = "import tsp_pretrain\nprint(tsp_pretrain.__file__)\n"
    (copy / "stages" / "with_checkout.py").write_text("import _checkout\n" + probe)
    (copy / "stages" / "without.py").write_text(probe)

    def imported(script: str) -> Path:
        done = subprocess.run(
            [sys.executable, f"stages/{script}"], cwd=copy, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return Path(done.stdout.strip()).resolve()

    assert imported("with_checkout.py") == (copy / "tsp_pretrain" / "__init__.py").resolve()
    # Without it, Python takes the installed (editable: the workspace's) package.
    assert imported("without.py") != (copy / "tsp_pretrain" / "__init__.py").resolve()
