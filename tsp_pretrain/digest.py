"""Content digests: how resumable stages tell "the same input" from "a new input of equal size"."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path


def code_digest(*modules: str | Path) -> str:
    """Digest of library source files (all of ``tsp_pretrain`` when none are named).

    Part of every resumable stage's identity: a run resumes from a checkpoint, or reuses a stored
    video or feature file, only if the code that produced it is the code running now. Otherwise
    `dvc repro` after a bug fix would find the old outputs "already done" and keep them.
    """
    package = Path(__file__).resolve().parent
    files = [Path(m) for m in modules] if modules else sorted(package.rglob("*.py"))
    digest = hashlib.blake2b(digest_size=8)
    for path in files:
        path = path if path.is_absolute() else package / path
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


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
