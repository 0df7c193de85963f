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
import shlex
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from tsp_pretrain.atomic import write_json
from tsp_pretrain.sharding import (
    SHARD_FILE,
    SHARDS_DIR,
    FinishedShard,
    ShardError,
    check_shard_files,
    check_shard_folders,
    check_shard_settings,
    claim_share,
    finished_shard,
    resolve_shard,
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
    remove_unindexed_files,
    write_pending_entry,
)

log = logging.getLogger(__name__)

#: The report lists a shard records in ``shard.json`` (those of :class:`DecodeReport`).
REPORT_KEYS = ("decoded", "reused", "skipped", "damaged")


@dataclass(frozen=True)
class DecodeSpec:
    """What a decode run reads, writes and how, built once (by the stage) and passed down: the
    videos folder, the frame store, its settings, the worker processes, the fraction of a damaged
    video that must decode for it to be kept, and whether to show a progress bar."""

    videos_dir: Path
    out_dir: Path
    settings: StoreSettings
    workers: int = 1
    min_readable_fraction: float = 0.5
    progress: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "videos_dir", Path(self.videos_dir))
        object.__setattr__(self, "out_dir", Path(self.out_dir))

    def jobs(self, videos: pd.DataFrame) -> list[DecodeJob]:
        """The decode jobs of ``videos`` (:func:`~tsp_pretrain.video.decode.decode_jobs`) into
        the store ``out_dir``."""
        return decode_jobs(
            videos, self.videos_dir, self.out_dir, self.settings, self.min_readable_fraction
        )

    def decode(self, videos: pd.DataFrame, out_dir: Path) -> DecodeReport:
        """:func:`~tsp_pretrain.video.decode.decode_dataset` of ``videos`` into ``out_dir``."""
        return decode_dataset(
            videos,
            self.videos_dir,
            out_dir,
            self.settings,
            self.workers,
            progress=self.progress,
            min_readable_fraction=self.min_readable_fraction,
        )


def settings_record(spec: DecodeSpec) -> dict:
    """What every shard must decode with, as ``shard.json`` records it (JSON values): the store
    settings and ``min_readable_fraction``, which decides which damaged videos are kept."""
    record = asdict(spec.settings) | {"min_readable_fraction": spec.min_readable_fraction}
    return json.loads(json.dumps(record))


def decode_shard(
    videos: pd.DataFrame, spec: DecodeSpec, *, shard: int, num_shards: int
) -> tuple[DecodeReport, list[str]]:
    """Decode shard ``shard`` of ``num_shards`` of ``videos`` into its folder under the store.

    Returns the shard's :class:`DecodeReport` (its folder's run) and the videos it left in the
    store ``spec.out_dir``, current there. ``shard.json`` is removed first and written last: a
    shard that stops on the way (killed, Ctrl-C, an error) is not finished, and running it again
    resumes.
    """
    folder = shard_dir(spec.out_dir, shard, num_shards)
    (folder / SHARD_FILE).unlink(missing_ok=True)
    share = shard_videos(videos, shard, num_shards)
    # read only: every shard reads the store at once
    kept = current_entries(spec.jobs(share), stored_entries(spec.out_dir), spec.out_dir)
    if kept:
        log.info(
            "%d videos of shard %d are decoded in %s already: left there",
            len(kept),
            shard,
            spec.out_dir,
        )
    report = spec.decode(share[~share["video_id"].isin(kept)], folder)
    record = {
        "shard": shard,
        "num_shards": num_shards,
        "settings": settings_record(spec),
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
        spec.out_dir,
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


def _shard_entries(shard: FinishedShard, settings: StoreSettings) -> dict[str, StoredVideo]:
    """The entries of a finished shard's store, checked to be complete: all decoded with
    ``settings``, merged into its index (no entry file left)."""
    entries = read_index(shard.folder)
    other = sorted(vid for vid, entry in entries.items() if entry.settings != settings)
    if other or list(shard.folder.glob(f"*{PENDING_SUFFIX}")):
        raise ShardError(
            f"shard {shard.name} ({shard.folder}) is inconsistent: delete {shard.folder} and "
            f"{shard.fix}"
        )
    return entries


def _check_kept(
    shard: FinishedShard, kept: dict[str, str], stored: dict[str, StoredVideo], spec: DecodeSpec
) -> None:
    """A :class:`ShardError` unless every video the shard left in the store (id -> source
    digest) is still there as the shard found it: ``stored`` holds the store's entries now."""
    for vid, digest in sorted(kept.items()):
        entry = stored.get(vid)
        if (
            entry is None
            or entry.settings != spec.settings
            or entry.source_digest != digest
            or not (spec.out_dir / entry.file).is_file()
        ):
            raise ShardError(
                f"shard {shard.name}: video {vid} was decoded in {spec.out_dir} when the shard "
                f"ran and is no longer there as it was (the store changed since): {shard.fix}"
            )


def _checked_shard(
    shard: FinishedShard,
    share: list[str],
    owner: dict[str, str],
    stored: dict[str, StoredVideo],
    spec: DecodeSpec,
) -> DecodeShard:
    """``shard`` checked against its ``share`` of the videos and the store's entries ``stored``;
    ``owner`` (video id -> shard name) gets its videos, for the next shards' check."""
    record = shard.record
    check_shard_settings(
        shard,
        settings_record(spec),
        record["settings"],
        made="decoded",
        same="params (frame_rate, decode) and code (the same commit)",
    )
    entries = _shard_entries(shard, spec.settings)
    kept = record["kept"]
    skipped = [s["video_id"] for s in record["report"]["skipped"]]
    held = [*entries, *kept, *skipped]
    if len(held) != len(set(held)):
        raise ShardError(
            f"shard {shard.name} ({shard.folder}) lists a video twice: delete it and {shard.fix}"
        )
    claim_share(owner, held, share, name=shard.name, folder=shard.folder, fix=shard.fix)
    absent = [
        entry.file
        for vid, entry in sorted(entries.items())
        if not (shard.folder / entry.file).is_file()
        and not (stored.get(vid) == entry and (spec.out_dir / entry.file).is_file())  # moved
    ]
    check_shard_files(shard, absent)
    _check_kept(shard, kept, stored, spec)
    report = {key: record["report"][key] for key in REPORT_KEYS}
    return DecodeShard(int(record["shard"]), shard.folder, entries, kept, report)


def check_decode_shards(
    spec: DecodeSpec,
    jobs: list[DecodeJob],
    stored: dict[str, StoredVideo],
    num_shards: int,
    rerun: str,
) -> list[DecodeShard]:
    """The ``num_shards`` finished shards of the store ``spec.out_dir`` for ``jobs`` (the videos
    table), checked; a :class:`~tsp_pretrain.sharding.ShardError` naming the shard and the fix
    otherwise. ``stored``: the store's entries now; ``rerun``: the command that runs shard
    ``{i}``.

    Checked: every shard folder exists and finished (``shard.json``), used exactly the settings
    and ``min_readable_fraction`` of ``spec``, holds exactly its share (each video decoded there,
    left in the store or skipped), every video is in exactly one shard, every file it decoded is
    there (or already moved into the store by a merge that was stopped), and every video it left
    in the store is still there as it found it.
    """
    check_shard_folders(spec.out_dir, num_shards, rerun)
    ids = [job.video_id for job in jobs]
    owner: dict[str, str] = {}
    return [
        _checked_shard(
            finished_shard(spec.out_dir, i, num_shards, rerun, INDEX_FILE),
            shard_ids(ids, i, num_shards),
            owner,
            stored,
            spec,
        )
        for i in range(num_shards)
    ]


def _move_shards(
    shards: list[DecodeShard], jobs: list[DecodeJob], stored: dict[str, StoredVideo], out_dir: Path
) -> tuple[DecodeReport, dict[str, StoredVideo]]:
    """Move the shards' files into the store ``out_dir``: the combined report (not yet in table
    order) and the store's complete entries. Each moved file is recorded in an entry file of
    the store, so that a merge that is stopped and run again accepts it there."""
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
    return report, entries


def merge_decode_shards(
    videos: pd.DataFrame,
    spec: DecodeSpec,
    *,
    num_shards: int,
    rerun: str = "python stages/decode.py ... --shard {i} --num-shards N",
    report_path: str | Path | None = None,
) -> DecodeReport:
    """Check the shards of the store ``spec.out_dir`` (:func:`check_decode_shards`), move their
    files into it, write its ``index.json`` and (``report_path``) the stage's report, then delete
    them.

    The store and the report are byte-identical to a single-process
    :func:`~tsp_pretrain.video.decode.decode_dataset` run on ``videos`` (columns video_id,
    filename, duration): the same entries (the sources as the table names them), the videos no
    longer in the table removed, the report's lists in table order. Files are renamed, never
    read: memory stays flat. The shards' machines must have decoded the same source files (their
    digests are in the entries; the merge does not read the sources). Returns the combined
    report: ``decoded`` the videos taken from the shards, ``reused`` those left in the store.
    """
    out_dir = spec.out_dir
    jobs = spec.jobs(videos)
    stored = stored_entries(out_dir)
    shards = check_decode_shards(spec, jobs, stored, num_shards, rerun)
    report, entries = _move_shards(shards, jobs, stored, out_dir)
    commit_index(out_dir, entries)
    remove_unindexed_files(out_dir, entries)  # removed and outdated videos, partial files
    sort_report(report, jobs)
    if report_path is not None:
        write_report(report_path, spec.settings, report)
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


#: The decode stage's script, as the commands it prints name it.
STAGE_SCRIPT = "stages/decode.py"


def run_decode_stage(
    spec: DecodeSpec,
    videos_csv: Path,
    *,
    shard: int | None,
    num_shards: int | None,
    merge: bool,
    report_path: Path,
    argv: list[str],
) -> None:
    """The decode stage (``stages/decode.py``, whose arguments are ``argv``): decode the videos
    table ``videos_csv`` into ``spec.out_dir`` and write the stage's report at ``report_path``.

    ``shard`` / ``num_shards`` as given (options over params), resolved with the environment
    (:func:`~tsp_pretrain.sharding.resolve_shard`). ``merge``: merge the ``num_shards`` shards
    (:func:`merge_decode_shards`, which writes the report); several shards: this process's
    shard (:func:`decode_shard`; its report goes into its ``shard.json``); one: a
    single-process run (:func:`~tsp_pretrain.video.decode.decode_dataset`), refused while
    unmerged shards are there.
    """
    shard, num_shards = resolve_shard(shard, num_shards)
    videos = pd.read_csv(videos_csv, dtype={"video_id": str})
    if merge:  # merge_decode_shards logs what it did
        rerun = _stage_command([a for a in argv if a != "--merge"]) + " --shard {i}"
        merge_decode_shards(
            videos, spec, num_shards=num_shards, rerun=rerun, report_path=report_path
        )
        return
    if num_shards > 1:
        decode_shard(videos, spec, shard=shard, num_shards=num_shards)
        return
    refuse_unmerged_shards(spec.out_dir, _stage_command(argv) + " --merge --num-shards N")
    report = spec.decode(videos, spec.out_dir)
    write_report(report_path, spec.settings, report)
    log.info("%s (report: %s)", report.run_summary(), report_path)


def _stage_command(argv: list[str]) -> str:
    """The shell command that runs the decode stage with ``argv``."""
    return shlex.join(["python", STAGE_SCRIPT, *argv])
