"""Content digests: how resumable stages tell "the same input" from "a new input of equal size"."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_digest(path: str | Path) -> str:
    """BLAKE2b of a file's bytes (16 hex digits); reads in 1 MiB chunks."""
    digest = hashlib.blake2b(digest_size=8)
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
