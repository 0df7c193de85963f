"""Atomic file writes: every output of every stage appears whole or not at all.

A stage can be stopped at any moment (Ctrl-C, SIGKILL, out of memory, a full disk). Readers and
resumed runs must then never find half a file under its final name, and DVC must never cache a
stray temporary file as part of an output folder. So every file is written under a temporary
name *in the same folder*, ``<stem>.partial<suffix>``, and renamed over the final name when, and
only when, the writer finished. The suffix is kept because writers such as ``np.save`` and PyAV
pick the format from it. The name has no process id or random part because some writers store
it in the file: ``torch.save`` names its zip archive after it, so a name that changed from run to
run would change the bytes of every checkpoint (and the hashes in dvc.lock).

A Python exception removes the temporary file; a killed process cannot, so resumable stages
call :func:`remove_partial_files` on their output folder when they start (the decode and
extraction stages' sweeps of unknown files remove them too).

This module is the one place where that pattern is written.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import pandas as pd

log = logging.getLogger(__name__)

PARTIAL_MARKER = ".partial"


def partial_path(path: str | Path) -> Path:
    """The temporary name :func:`atomic_path` writes ``path`` under (same folder and suffix)."""
    path = Path(path)
    return path.with_name(f"{path.stem}{PARTIAL_MARKER}{path.suffix}")


def is_partial(path: str | Path) -> bool:
    """Whether ``path`` is a temporary file left by an interrupted atomic write."""
    return PARTIAL_MARKER in Path(path).name


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write ``path`` through; publish it by rename on success.

    The caller's writer (``torch.save``, ``np.save``, ``av.open``, ``savefig``, ...) writes the
    yielded path. On any exception, ``KeyboardInterrupt`` included, the temporary file is removed
    and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_open(path: str | Path, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """``open()`` for writing, through :func:`atomic_path` (``mode`` ``"w"`` or ``"wb"``)."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes whole files: mode must be 'w' or 'wb', got {mode!r}")
    with atomic_path(path) as tmp, tmp.open(mode, **kwargs) as f:
        yield f


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_open(path) as f:
        f.write(text)


def write_json(
    path: str | Path, document: Any, *, indent: int | None = 2, sort_keys: bool = True
) -> None:
    """Write ``document`` as JSON (sorted keys by default: equal content gives equal bytes)."""
    write_text(path, json.dumps(document, indent=indent, sort_keys=sort_keys, default=str) + "\n")


def remove_partial_files(folder: str | Path) -> list[Path]:
    """Delete temporary files that killed writers left anywhere under ``folder``; return them.

    Called by resumable stages before they resume, so that neither the stage nor DVC (which
    caches whole output folders) ever sees them.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = sorted(p for p in folder.rglob(f"*{PARTIAL_MARKER}*") if p.is_file())
    for path in stale:
        path.unlink()
    if stale:
        log.warning(
            "%s: removed %d partial file(s) left by an interrupted run (first: %s)",
            folder,
            len(stale),
            stale[0].name,
        )
    return stale


def write_csv(path: str | Path, table: pd.DataFrame, **to_csv: Any) -> None:
    """``table.to_csv(path, index=False, **to_csv)``, atomically."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, **to_csv)
