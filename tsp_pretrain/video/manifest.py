"""The videos manifest: what is in a dataset's videos folder, as a small file DVC can track.

DVC cannot depend on a user's videos folder directly: hashing it aborts the whole ``dvc repro``
on the first entry it cannot read (a dangling symbolic link, a file without read permission),
before any stage runs. So stage ``videos@<dataset>`` (always run) lists the folder *recursively*
(the official TSP layout keeps videos in ``train/``, ``valid/``, ``test/`` subfolders), writes one
row per entry -- relative path, size, content digest, or the reason it cannot be read -- and the
stages that read videos depend on that manifest instead. A broken entry is a reported skip, never
a crash: ``data/reports/videos-<dataset>.json`` lists each with its cause and fix.

The manifest holds no mtimes, so the same content gives the same bytes (and DVC re-runs nothing).
Digests of unchanged files are not recomputed: a small cache keyed by (path, size, mtime_ns,
inode) lives outside DVC's outputs and git.

:meth:`VideoIndex.locate` is the one place that maps an annotated video to its file, for every
annotation format.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import pandas as pd

from tsp_pretrain.atomic import write_csv, write_json
from tsp_pretrain.digest import file_digest
from tsp_pretrain.video.probe import VIDEO_EXTENSIONS  # tried in this order

if TYPE_CHECKING:
    from tsp_pretrain.config import DatasetParams

log = logging.getLogger(__name__)

MANIFEST_COLUMNS = ["path", "size", "digest", "problem"]
CACHE_VERSION = 1


class ManifestError(ValueError):
    """The videos folder itself cannot be used (missing, a file, unreadable) or a bad manifest."""


@dataclass(frozen=True)
class Entry:
    """One entry under the videos folder: a readable file (``problem`` "") or why it is not."""

    path: str  # relative to the videos folder, POSIX separators
    size: int = -1
    digest: str = ""
    problem: str = ""


def scan_videos(
    videos_dir: str | Path,
    *,
    param: str = "videos",
    cache: Mapping[str, Any] | None = None,
    digests: bool = True,
    new_cache: dict[str, Any] | None = None,
) -> tuple[list[Entry], dict[str, Any]]:
    """Every entry under ``videos_dir`` (recursively, symbolic links followed), sorted by path.

    ``param`` names the setting in error messages. ``cache`` maps a relative path to
    ``[size, mtime_ns, inode, digest]`` from an earlier scan; a file whose first three still match
    keeps its digest; ``digests=False`` only lists (digest "": for callers that only locate
    files). Returns the entries and the new cache (readable files only), which is filled into
    ``new_cache`` when given, file by file, so that an interrupted scan keeps its digests. Raises
    :class:`ManifestError` when ``videos_dir`` is not a readable folder; everything inside it that
    cannot be read is an entry with a ``problem``.
    """
    root = Path(videos_dir)
    _check_videos_dir(root, param)
    cache = cache or {}
    new_cache = {} if new_cache is None else new_cache
    entries: list[Entry] = []
    for folder, files in _walk(root, entries):
        for name in sorted(files):
            path = folder / name
            entry, st = _entry(path, _relative(path, root), cache, digests)
            entries.append(entry)
            if digests and not entry.problem:
                new_cache[entry.path] = [st.st_size, st.st_mtime_ns, st.st_ino, entry.digest]
    entries.sort(key=lambda e: e.path)
    return entries, new_cache


def _check_videos_dir(root: Path, param: str) -> None:
    """A :class:`ManifestError` with the fix unless ``root`` is a readable folder."""
    if not root.exists():
        raise ManifestError(
            f"{param} = {str(root)!r}: no such folder; point it at the folder holding the video "
            "files"
        )
    if not root.is_dir():
        raise ManifestError(
            f"{param} = {str(root)!r}: is a file, expected the folder holding the video files; "
            "use its parent folder"
        )
    if not os.access(root, os.R_OK | os.X_OK):
        raise ManifestError(f"{param} = {str(root)!r}: permission denied; make the folder readable")


def _walk(root: Path, entries: list[Entry]) -> Iterator[tuple[Path, list[str]]]:
    """``(folder, file names)`` of every folder under ``root``, subfolders in sorted order,
    symbolic links followed; a folder that cannot be listed and a link back to a folder already
    listed are appended to ``entries`` as problems, never walked."""
    visited: set[tuple[int, int]] = set()

    def walk_error(err: OSError) -> None:
        rel = _relative(Path(err.filename), root)
        entries.append(
            Entry(
                rel,
                problem=f"folder cannot be listed ({err.strerror}); fix its "
                "permissions or remove it",
            )
        )

    for folder, dirs, files in os.walk(root, onerror=walk_error, followlinks=True):
        here = Path(folder)
        info = here.stat()
        if (info.st_dev, info.st_ino) in visited:  # a link back to a folder already listed
            dirs[:] = []
            entries.append(
                Entry(_relative(here, root), problem="symbolic link loop; remove the link")
            )
            continue
        visited.add((info.st_dev, info.st_ino))
        dirs.sort()
        yield here, files


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _entry(
    path: Path, rel: str, cache: Mapping[str, Any], digests: bool
) -> tuple[Entry, os.stat_result | None]:
    """One file's entry and its stat (``None`` when it cannot be read); OS errors become the
    entry's problem (with the fix), never a crash."""
    try:
        st = path.stat()  # follows links
    except FileNotFoundError:
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        problem = f"dangling symbolic link (to {target}); fix or remove the link"
        return Entry(rel, problem=problem), None
    except PermissionError:
        return Entry(rel, problem="permission denied; make it readable or remove it"), None
    except OSError as err:
        return Entry(rel, problem=f"cannot be read ({err.strerror}); fix or remove it"), None
    if not stat.S_ISREG(st.st_mode):
        return Entry(rel, problem="not a regular file (a pipe, socket or device); remove it"), None
    if not os.access(path, os.R_OK):
        return Entry(rel, problem="permission denied; make it readable or remove it"), None
    if not digests:
        return Entry(rel, st.st_size), st
    cached = cache.get(rel)
    if isinstance(cached, list) and cached[:3] == [st.st_size, st.st_mtime_ns, st.st_ino]:
        return Entry(rel, st.st_size, str(cached[3])), st
    try:
        digest = file_digest(path)
    except PermissionError:
        return Entry(rel, problem="permission denied; make it readable or remove it"), None
    except OSError as err:
        return Entry(rel, problem=f"cannot be read ({err.strerror}); fix or remove it"), None
    return Entry(rel, st.st_size, digest), st


def manifest_frame(entries: list[Entry]) -> pd.DataFrame:
    """The manifest table (:data:`MANIFEST_COLUMNS`), sorted by path."""
    frame = pd.DataFrame(
        [(e.path, e.size, e.digest, e.problem) for e in entries], columns=MANIFEST_COLUMNS
    )
    return frame.sort_values("path", kind="stable").reset_index(drop=True)


def read_cache(path: str | Path) -> dict[str, Any]:
    """The digest cache, or empty when absent or unusable (it is only a shortcut)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
        return {}
    files = data.get("files")
    return files if isinstance(files, dict) else {}


def write_manifest(
    videos_dir: str | Path,
    manifest: str | Path,
    report: str | Path,
    cache_file: str | Path,
    *,
    param: str = "videos",
) -> pd.DataFrame:
    """Scan ``videos_dir``; write the manifest CSV, the report JSON and the digest cache.

    Interrupted (Ctrl-C), it still writes the digests computed so far into the cache, so that
    the next run re-hashes only the rest (hours of reading on ActivityNet).
    """
    old_cache = read_cache(cache_file)
    cache: dict[str, Any] = {}
    try:
        entries, _ = scan_videos(videos_dir, param=param, cache=old_cache, new_cache=cache)
    except KeyboardInterrupt:
        write_json(cache_file, {"version": CACHE_VERSION, "files": old_cache | cache}, indent=None)
        raise
    frame = manifest_frame(entries)
    write_csv(manifest, frame)
    bad = frame[frame["problem"] != ""]
    write_json(
        report,
        {
            "videos_dir": str(videos_dir),
            "files": int((frame["problem"] == "").sum()),
            "skipped": len(bad),
            "skipped_entries": [
                {"path": p, "problem": q} for p, q in zip(bad["path"], bad["problem"], strict=True)
            ],
        },
        sort_keys=False,
    )
    write_json(cache_file, {"version": CACHE_VERSION, "files": cache}, indent=None)
    for p, q in zip(bad["path"], bad["problem"], strict=True):
        log.warning("%s: skipped: %s", Path(videos_dir) / p, q)
    return frame


def list_dataset_videos(
    dataset: DatasetParams,
    name: str,
    *,
    manifest: str | Path,
    labels_record: str | Path,
    report: str | Path,
    cache: str | Path,
) -> pd.DataFrame:
    """Stage ``videos@<name>``: the ``manifest`` of the dataset's videos folder with its
    ``report`` and digest ``cache`` (:func:`write_manifest`), and the record of its optional
    labels file (:func:`write_file_record`). Returns the manifest table."""
    prefix = f"datasets.{name}"
    frame = write_manifest(dataset.videos, manifest, report, cache, param=f"{prefix}.videos")
    write_file_record(dataset.labels, labels_record, param=f"{prefix}.labels")
    skipped = int((frame["problem"] != "").sum())
    log.info(
        "%d file(s) under %s, %d skipped (report: %s)",
        len(frame) - skipped,
        dataset.videos,
        skipped,
        report,
    )
    return frame


def read_manifest(path: str | Path) -> pd.DataFrame:
    """A manifest written by :func:`write_manifest`."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype={"path": str, "digest": str, "problem": str})
    except FileNotFoundError:
        raise ManifestError(f"{path}: no videos manifest; run `dvc repro` (stage videos)") from None
    if list(frame.columns) != MANIFEST_COLUMNS:
        raise ManifestError(f"{path}: expected columns {MANIFEST_COLUMNS}, got {list(frame)}")
    return frame.fillna({"digest": "", "problem": ""})


@dataclass(frozen=True)
class Located:
    """Where an annotated video's file is: ``path`` (relative) or why there is none."""

    path: str | None
    problem: str = ""  # "", "missing_video" or "unreadable_video"
    message: str = ""


class VideoIndex:
    """The manifest indexed by file stem: finds a video's file anywhere under the folder."""

    def __init__(self, manifest: pd.DataFrame, videos_dir: str | Path) -> None:
        self.videos_dir = Path(videos_dir)
        self.entries = {p: q for p, q in zip(manifest["path"], manifest["problem"], strict=True)}
        self.by_stem: dict[str, list[str]] = {}
        for path in sorted(self.entries):
            self.by_stem.setdefault(PurePosixPath(path).stem, []).append(path)

    def locate(self, video_id: str, filename: str | None = None) -> Located:
        """The file of ``video_id``: the annotation's ``filename`` when given, else by id.

        Tried in order: ``filename`` as a relative path; then, in any subfolder, ``filename``'s
        stem (or ``v_<id>`` then ``<id>`` when no filename is given) with its own extension
        first, then every extension of :data:`VIDEO_EXTENSIONS`. Files found in two different
        folders are ambiguous (which one is meant cannot be known): the video is unreadable.
        """
        if filename and filename in self.entries:
            return self._found(filename)
        stems = [PurePosixPath(filename).stem] if filename else [f"v_{video_id}", video_id]
        suffix = PurePosixPath(filename).suffix.lower() if filename else ""
        order = [suffix, *(e for e in VIDEO_EXTENSIONS if e != suffix)] if suffix else []
        order = order or list(VIDEO_EXTENSIONS)
        for stem in stems:
            candidates = [
                p for p in self.by_stem.get(stem, []) if PurePosixPath(p).suffix.lower() in order
            ]
            if not candidates:
                continue
            folders = sorted({str(PurePosixPath(p).parent) for p in candidates})
            if len(folders) > 1:
                return Located(
                    None,
                    "unreadable_video",
                    f"files for this video in {len(folders)} folders ({', '.join(candidates)}) "
                    f"under {self.videos_dir}; keep one",
                )
            candidates.sort(key=lambda p: order.index(PurePosixPath(p).suffix.lower()))
            return self._found(candidates[0])
        named = f" named {filename!r} (any extension)" if filename else ""
        return Located(
            None,
            "missing_video",
            f"no video file{named} found under {self.videos_dir} (subfolders included); "
            "download it",
        )

    def _found(self, path: str) -> Located:
        problem = self.entries[path]
        if problem:
            return Located(None, "unreadable_video", f"{self.videos_dir / path}: {problem}")
        return Located(path)


def write_file_record(path: str | None, out: str | Path, *, param: str) -> None:
    """Record an optional input file's digest, so that a stage can depend on the record.

    DVC's templating cannot list an optional file as a dependency (the labels map of a dataset).
    This record, rewritten on every run of the always-run ``videos`` stage, changes exactly when
    the file does. ``{"path": null}`` when the param is not set.
    """
    if path is None:
        write_json(out, {"param": param, "path": None})
        return
    file = Path(path)
    if file.is_dir():
        raise ManifestError(f"{param} = {path!r}: is a folder, expected a file")
    try:
        digest = file_digest(file)
    except FileNotFoundError:
        raise ManifestError(f"{param} = {path!r}: no such file; fix the path") from None
    write_json(out, {"param": param, "path": str(path), "digest": digest})


def check_file_record(path: str | None, record: str | Path) -> None:
    """Fail unless ``record`` (from :func:`write_file_record`) describes ``path`` as it is now."""
    try:
        data = json.loads(Path(record).read_text())
    except FileNotFoundError:
        raise ManifestError(f"{record}: missing; run `dvc repro` (stage videos)") from None
    now = None if path is None else str(path)
    if data.get("path") != now:
        raise ManifestError(
            f"{record}: records {data.get('param')} = {data.get('path')!r}, params say {now!r}; "
            "run `dvc repro` (stage videos first)"
        )
    if path is not None and data.get("digest") != file_digest(path):
        raise ManifestError(f"{path}: changed since {record} was written; run `dvc repro` again")
