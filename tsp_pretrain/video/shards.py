"""Sharded decoding: each of ``n`` machines decodes a disjoint share of a dataset, then a merge.

Shard ``i`` of ``n`` takes every ``n``-th video of the sorted video ids
(:func:`tsp_pretrain.sharding.shard_videos`, the split feature extraction uses) and decodes it
with :func:`~tsp_pretrain.video.decode.decode_dataset` into ``<out>/.shards/<i>-of-<n>/``, a frame
store of its own: resumable per video like a single-process run. Videos that the store ``<out>``
itself (a single-process run or the last merge) holds current, by the rule every run asks
(:func:`~tsp_pretrain.video.decode.is_current`), are left there: after one video is added, one
video is decoded, whatever the number of shards. ``shard.json``, written last, says the shard
finished and records its settings, its share, the videos it left in ``<out>`` (with their
sources' digests) and its report (decoded, reused, skipped, damaged).

:func:`merge_decode_shards` checks the shards (all present and finished, the same settings,
every video of the table exactly once: decoded in a shard, current in ``<out>`` or skipped), moves
their files into ``<out>`` (renames, never a frame read), writes the complete ``index.json`` and
the stage's report, both byte-identical to a single-process run on the same table, then deletes
``.shards/``. A merge that was stopped is run again: the files it moved are recorded in
``<out>``'s per-video entry files (:func:`~tsp_pretrain.video.store.write_pending_entry`), and a
re-run accepts them there.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from tsp_pretrain.atomic import write_json
from tsp_pretrain.sharding import (
    SHARD_FILE,
    SHARDS_DIR,
    ShardError,
    check_shard_folders,
    claim_share,
    finished_shard,
    settings_diff,
    shard_dir,
    shard_ids,
    shard_name,
    shard_videos,
)
from tsp_pretrain.video.decode import (
    DecodeJob,
    DecodeReport,
    current_entries,
    decode_dataset,
    decode_jobs,
    reused_entry,
    sort_report,
    stored_entries,
    write_report,
)
from tsp_pretrain.video.store import (
    INDEX_FILE,
    PENDING_SUFFIX,
    StoredVideo,
    StoreSettings,
    commit_index,
    read_index,
    write_pending_entry,
)

log = logging.getLogger(__name__)

#: The report lists a shard records in ``shard.json`` (those of :class:`DecodeReport`).
REPORT_KEYS = ("decoded", "reused", "skipped", "damaged")


def settings_record(settings: StoreSettings, min_readable_fraction: float) -> dict:
    """What every shard must decode with, as ``shard.json`` records it (JSON values): the store
    settings and ``min_readable_fraction``, which decides which damaged videos are kept."""
    record = asdict(settings) | {"min_readable_fraction": min_readable_fraction}
    return json.loads(json.dumps(record))


def decode_shard(
    videos: pd.DataFrame,
    videos_dir: str | Path,
    out_dir: str | Path,
    settings: StoreSettings,
    workers: int = 1,
    *,
    shard: int,
    num_shards: int,
    progress: bool = True,
    min_readable_fraction: float = 0.5,
) -> tuple[DecodeReport, list[str]]:
    """Decode shard ``shard`` of ``num_shards`` of ``videos`` into its folder under ``out_dir``.

    Returns the shard's :class:`DecodeReport` (its folder's run) and the videos it left in
    ``out_dir``, current there. ``shard.json`` is removed first and written last: a shard that
    stops on the way (killed, Ctrl-C, an error) is not finished, and running it again resumes.
    """
    out_dir = Path(out_dir)
    folder = shard_dir(out_dir, shard, num_shards)
    (folder / SHARD_FILE).unlink(missing_ok=True)
    share = shard_videos(videos, shard, num_shards)
    jobs = decode_jobs(share, videos_dir, out_dir, settings, min_readable_fraction)
    kept = current_entries(jobs, stored_entries(out_dir), out_dir)  # read only: shared by shards
    if kept:
        log.info(
            "%d videos of shard %d are decoded in %s already: left there", len(kept), shard, out_dir
        )
    report = decode_dataset(
        share[~share["video_id"].isin(kept)],
        videos_dir,
        folder,
        settings,
        workers,
        progress=progress,
        min_readable_fraction=min_readable_fraction,
    )
    record = {
        "shard": shard,
        "num_shards": num_shards,
        "settings": settings_record(settings, min_readable_fraction),
        "videos": sorted(share["video_id"]),
        "kept": {vid: kept[vid].source_digest for vid in sorted(kept)},
        "report": {key: getattr(report, key) for key in REPORT_KEYS},
    }
    write_json(folder / SHARD_FILE, record, indent=1, sort_keys=False)
    log.info(
        "shard %s -> %s: decoded %d, reused %d (this shard's earlier run), left %d in %s, "
        "skipped %d, damaged %d; merge when every shard finished (--merge --num-shards %d)",
        shard_name(shard, num_shards),
        folder,
        len(report.decoded),
        len(report.reused),
        len(kept),
        out_dir,
        len(report.skipped),
        len(report.damaged),
        num_shards,
    )
    return report, sorted(kept)


def refuse_unmerged_shards(out_dir: str | Path, merge: str) -> None:
    """A :class:`~tsp_pretrain.sharding.ShardError` when ``out_dir`` holds shards: a
    single-process run would decode every video again beside them (and DVC would cache them
    with the store). ``merge``: the command that merges them."""
    root = Path(out_dir) / SHARDS_DIR
    if root.is_dir():
        names = ", ".join(sorted(p.name for p in root.iterdir())) or "none"
        raise ShardError(
            f"{root} holds the shards of a sharded decode ({names}): merge them ({merge}), or "
            f"delete {root} to decode in one process"
        )


@dataclass(frozen=True)
class DecodeShard:
    """A finished shard, checked: its number and folder, the entries of its store, the videos it
    left in the merged store (id -> source digest) and its report lists (:data:`REPORT_KEYS`)."""

    number: int
    folder: Path
    entries: dict[str, StoredVideo]
    kept: dict[str, str]
    report: dict[str, list]


def check_decode_shards(
    out_dir: str | Path,
    jobs: list[DecodeJob],
    stored: dict[str, StoredVideo],
    settings: StoreSettings,
    num_shards: int,
    rerun: str,
    min_readable_fraction: float = 0.5,
) -> list[DecodeShard]:
    """The ``num_shards`` finished shards of the store ``out_dir`` for ``jobs`` (the videos
    table), checked; a :class:`~tsp_pretrain.sharding.ShardError` naming the shard and the fix
    otherwise. ``stored``: ``out_dir``'s entries now; ``rerun``: the command that runs shard
    ``{i}``.

    Checked: every shard folder exists and finished (``shard.json``), used exactly ``settings``
    and ``min_readable_fraction``, holds exactly its share (each video decoded there, left in
    ``out_dir`` or skipped), every video is in exactly one shard, every file it decoded is there
    (or already moved into ``out_dir`` by a merge that was stopped), and every video it left in
    ``out_dir`` is still there as it found it.
    """
    out_dir = Path(out_dir)
    check_shard_folders(out_dir, num_shards, rerun)
    expected = settings_record(settings, min_readable_fraction)
    ids = [job.video_id for job in jobs]
    owner: dict[str, str] = {}
    shards = []
    for i in range(num_shards):
        folder, name, fix, record = finished_shard(out_dir, i, num_shards, rerun, INDEX_FILE)
        if record["settings"] != expected:
            raise ShardError(
                f"shard {name} ({folder}) was decoded with other settings "
                f"({settings_diff(expected, record['settings'])}): every shard must use the same "
                f"params (frame_rate, decode) and code (the same commit); delete {folder} and "
                f"{fix}"
            )
        if (record["shard"], record["num_shards"]) != (i, num_shards):
            raise ShardError(f"{folder}/{SHARD_FILE} is not shard {name}: delete {folder}; {fix}")
        entries = read_index(folder)
        other = sorted(vid for vid, entry in entries.items() if entry.settings != settings)
        if other or list(folder.glob(f"*{PENDING_SUFFIX}")):
            raise ShardError(f"shard {name} ({folder}) is inconsistent: delete {folder} and {fix}")
        kept = record["kept"]
        skipped = [s["video_id"] for s in record["report"]["skipped"]]
        held = [*entries, *kept, *skipped]
        if len(held) != len(set(held)):
            raise ShardError(f"shard {name} ({folder}) lists a video twice: delete it and {fix}")
        claim_share(owner, held, shard_ids(ids, i, num_shards), name=name, folder=folder, fix=fix)
        absent = [
            entry.file
            for vid, entry in sorted(entries.items())
            if not (folder / entry.file).is_file()
            and not (stored.get(vid) == entry and (out_dir / entry.file).is_file())  # moved
        ]
        if absent:
            raise ShardError(f"shard {name} ({folder}) lacks its files {absent[:5]}: {fix}")
        for vid, digest in sorted(kept.items()):
            entry = stored.get(vid)
            if (
                entry is None
                or entry.settings != settings
                or entry.source_digest != digest
                or not (out_dir / entry.file).is_file()
            ):
                raise ShardError(
                    f"shard {name}: video {vid} was decoded in {out_dir} when the shard ran and "
                    f"is no longer there as it was (the store changed since): {fix}"
                )
        report = {key: record["report"][key] for key in REPORT_KEYS}
        shards.append(DecodeShard(i, folder, entries, kept, report))
    return shards


def merge_decode_shards(
    videos: pd.DataFrame,
    videos_dir: str | Path,
    out_dir: str | Path,
    settings: StoreSettings,
    *,
    num_shards: int,
    rerun: str = "python stages/decode.py ... --shard {i} --num-shards N",
    report_path: str | Path | None = None,
    min_readable_fraction: float = 0.5,
) -> DecodeReport:
    """Check the shards of the store ``out_dir`` (:func:`check_decode_shards`), move their files
    into it, write its ``index.json`` and (``report_path``) the stage's report, then delete them.

    The store and the report are byte-identical to a single-process
    :func:`~tsp_pretrain.video.decode.decode_dataset` run on ``videos`` (columns video_id,
    filename, duration): the same entries (the sources as the table names them), the videos no
    longer in the table removed, the report's lists in table order. Files are renamed, never
    read: memory stays flat. The shards' machines must have decoded the same source files (their
    digests are in the entries; the merge does not read the sources). Returns the combined
    report: ``decoded`` the videos taken from the shards, ``reused`` those left in ``out_dir``.
    """
    out_dir = Path(out_dir)
    jobs = decode_jobs(videos, videos_dir, out_dir, settings)
    stored = stored_entries(out_dir)
    shards = check_decode_shards(
        out_dir, jobs, stored, settings, num_shards, rerun, min_readable_fraction
    )
    by_id = {job.video_id: job for job in jobs}
    report = DecodeReport(removed=sorted(set(stored) - set(by_id)))
    entries: dict[str, StoredVideo] = {}
    for shard in shards:
        for vid in shard.kept:
            entries[vid] = reused_entry(stored[vid], by_id[vid])
            report.reused.append(vid)
        report.decoded += shard.report["decoded"] + shard.report["reused"]
        report.skipped += shard.report["skipped"]
        report.damaged += shard.report["damaged"]
        for vid, entry in sorted(shard.entries.items()):
            source = shard.folder / entry.file
            if source.is_file():  # else moved by a merge that was stopped (checked)
                os.replace(source, out_dir / entry.file)
                write_pending_entry(out_dir, entry)  # after the file, as a decode run does
            entries[vid] = entry
    commit_index(out_dir, entries)
    known = {INDEX_FILE} | {entry.file for entry in entries.values()}
    for path in out_dir.iterdir():  # removed and outdated videos, partial files
        if path.is_file() and path.name not in known:
            path.unlink()
    sort_report(report, jobs)
    if report_path is not None:
        write_report(report_path, settings, report)
    shutil.rmtree(out_dir / SHARDS_DIR)
    log.info(
        "merged %d shards -> %s: %d videos stored (%d from the shards, %d left in place), "
        "skipped %d, damaged %d, removed %d no longer in the table",
        num_shards,
        out_dir,
        len(entries),
        len(report.decoded),
        len(report.reused),
        len(report.skipped),
        len(report.damaged),
        len(report.removed),
    )
    return report
