"""dvc.yaml stays in step with the code: every library module a stage imports is one of its deps,
and every declared param exists in params.yaml."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _stages() -> dict[str, dict]:
    with (ROOT / "dvc.yaml").open() as f:
        stages = yaml.safe_load(f)["stages"]
    return {name: spec.get("do", spec) for name, spec in stages.items()}


def _imported_library_files(script: Path) -> set[str]:
    code = (
        "import importlib.util, json, sys\n"
        f"sys.path.insert(0, {str(script.parent)!r})  # as `python stages/x.py` has it\n"
        f"spec = importlib.util.spec_from_file_location('stage', {str(script)!r})\n"
        "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)\n"
        "print(json.dumps(sorted(m.__file__ for n, m in list(sys.modules.items())\n"
        "    if n.startswith('tsp_pretrain') and getattr(m, '__file__', None))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return {
        str(Path(p).resolve().relative_to(ROOT)) for p in json.loads(out.stdout.splitlines()[-1])
    }


def _is_inert(path: Path) -> bool:
    """A package ``__init__.py`` holding only a docstring cannot change a stage's output."""
    if path.name != "__init__.py":
        return False
    code = [line for line in path.read_text().splitlines() if line.strip()]
    return all(
        line.startswith(('"""', "#"))
        or (
            not line.startswith((" ", "\t"))
            and not any(k in line for k in ("import", "=", "def ", "class "))
        )
        for line in code
    )


@pytest.mark.parametrize("name", sorted(_stages()))
def test_stage_deps_cover_its_library_imports(name):
    spec = _stages()[name]
    script = re.search(r"stages/\S+\.py", spec["cmd"]).group(0)
    deps = [d for d in spec["deps"] if "${" not in d]
    assert script in deps, f"{name}: its own script {script} is not a dep"
    uncovered = [
        f
        for f in _imported_library_files(ROOT / script)
        if not _is_inert(ROOT / f)
        if not any(f == d or f.startswith(d.rstrip("/") + "/") for d in deps)
    ]
    assert not uncovered, (
        f"stage {name} imports {uncovered} but dvc.yaml does not list them as deps"
    )


def test_declared_params_exist():
    with (ROOT / "params.yaml").open() as f:
        params = yaml.safe_load(f)
    for name, spec in _stages().items():
        for key in spec.get("params", []):
            node = params
            for part in key.split("."):
                if part in ("${key}", "${item}"):
                    break
                assert part in node, f"stage {name}: param {key} is not in params.yaml"
                node = node[part]
