"""Content digests: how resumable stages tell "the same input" from "a new input of equal size"."""

from __future__ import annotations

import hashlib
import logging
import sys
from pathlib import Path


def code_digest(*modules: str | Path) -> str:
    """Digest of library source files: those named, or else every ``tsp_pretrain`` module this
    process has imported.

    Part of every resumable stage's identity: a run resumes from a checkpoint, or reuses a stored
    video or feature file, only if the code that produced it is the code running now. Otherwise
    `dvc repro` after a bug fix would find the old outputs "already done" and keep them.

    Only the imported modules count, not the whole package: dvc.yaml lists them as the stage's
    dependencies (``tests/test_dvc_yaml.py``), so whenever this digest changes DVC re-runs the
    stage. A digest of the whole package changed with files the stage never runs (the
    ``score`` command, say) while DVC, rightly, did not re-run it: the outputs of the workspace
    and of a fresh clone then recorded different digests.
    """
    package = Path(__file__).resolve().parent
    files = [Path(m) for m in modules] if modules else _imported_files(package)
    digest = hashlib.blake2b(digest_size=8)
    for path in files:
        path = path if path.is_absolute() else package / path
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _imported_files(package: Path) -> list[Path]:
    """Source files of the loaded modules of ``package`` (sorted; this module included)."""
    files = {
        Path(module.__file__).resolve()
        for name, module in list(sys.modules.items())
        if (name == package.name or name.startswith(package.name + "."))
        and getattr(module, "__file__", None)
    }
    return sorted(f for f in files if f.is_relative_to(package) and f.suffix == ".py")


def file_digest(path: str | Path) -> str:
    """BLAKE2b of a file's bytes (16 hex digits); reads in 1 MiB chunks."""
    digest = hashlib.blake2b(digest_size=8)
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def tracked_file_digest(path: str | Path, tracked_dir: str | Path, param: str) -> str:
    """:func:`file_digest` of a file a param names, warning when DVC cannot see it change.

    Stages depend on a whole folder (``models/weights``, ``data/gvf``) for the files such params
    may name, because a DVC dependency cannot be optional. A file outside that folder still works,
    but replacing it would not re-run the stage: the warning says so and how to fix it.
    """
    path = Path(path)
    if not path.resolve().is_relative_to(Path(tracked_dir).resolve()):
        logging.getLogger(__name__).warning(
            "%s = %s lies outside %s: DVC does not track it, so replacing the file will not "
            "re-run this stage; move it into %s and `dvc add` it",
            param,
            path,
            tracked_dir,
            tracked_dir,
        )
    return file_digest(path)
