"""Sharded extraction: each of ``n`` processes (GPUs, machines) extracts a disjoint share.

Shard ``i`` of ``n`` takes the videos whose rank in the sorted video ids is ``i`` modulo ``n``
(deterministic, disjoint, balanced) and writes them, with its own ``index.json`` (resumable per
video, like a single-process run), into ``<out>/.shards/<i>-of-<n>/``. The split, the shard
folders and where a process's shard comes from (:func:`resolve_shard`: options, params, torchrun,
a SLURM array) are :mod:`tsp_pretrain.sharding`, shared with the decode stage. Videos whose
features in ``<out>`` itself (the last merge or single-process run) are still valid, by the same
per-video rule as a single-process run (:func:`tsp_pretrain.features.extract.features_are_current`),
are left there: after one video is added, one video is extracted, whatever the number of shards.
``shard.json`` written last says the shard finished and records its folder identity
(:meth:`~tsp_pretrain.features.spec.FeatureSpec.identity`), its share, the videos it left in
``<out>`` and its videos missing from the frame store.
:func:`tsp_pretrain.features.extract.merge_shards` checks the shards (:func:`check_shards`: all
present and finished, the same identity, every video exactly once; then every video's features
against the frame store) and writes the feature folder, byte-identical to a single-process run,
then deletes ``.shards/``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from tsp_pretrain.atomic import write_json
from tsp_pretrain.features.store import IDENTITY_KEY
from tsp_pretrain.sharding import (
    SHARD_FILE,
    SHARDS_DIR,
    ShardError,
    check_shard_files,
    check_shard_folders,
    check_shard_settings,
    claim_share,
    finished_shard,
    resolve_shard,
    shard_dir,
    shard_name,
    shard_videos,
)
from tsp_pretrain.video.store import INDEX_FILE

# the generic names live in tsp_pretrain.sharding; imported from here by extraction and its tests
__all__ = [
    "SHARDS_DIR",
    "SHARD_FILE",
    "Shard",
    "ShardError",
    "check_shards",
    "finish_shard",
    "merged_entries",
    "resolve_shard",
    "shard_dir",
    "shard_name",
    "shard_videos",
]


def merged_entries(out_dir: str | Path, identity: dict) -> dict[str, dict]:
    """The entries of the merged feature folder ``out_dir`` (its ``index.json``, as the last merge
    or single-process run wrote it) that a shard may leave in place: same identity, file present.

    Read only, without the folder's progress records: every shard reads it at once, and the
    merge re-checks each video it keeps.
    """
    path = Path(out_dir) / INDEX_FILE
    if not path.is_file():
        return {}
    document = json.loads(path.read_text())
    if document[IDENTITY_KEY] != identity:
        return {}
    return {
        vid: entry
        for vid, entry in document["videos"].items()
        if (Path(out_dir) / entry["file"]).is_file()
    }


def finish_shard(
    folder: Path,
    identity: dict,
    *,
    videos: Iterable[str],
    missing: Iterable[str],
    reused_from_merged: Iterable[str],
    shard: int,
    num_shards: int,
) -> None:
    """Mark a shard finished: its folder identity, share, the videos whose still valid features
    it left in the merged folder, and its videos missing from the store."""
    record = {
        "shard": shard,
        "num_shards": num_shards,
        IDENTITY_KEY: identity,
        "videos": sorted(videos),
        "reused_from_merged": sorted(reused_from_merged),
        "missing": sorted(missing),
    }
    write_json(folder / SHARD_FILE, record)


@dataclass(frozen=True)
class Shard:
    """A finished shard: its number and folder, per-video entries (from its index), the videos
    it left in the merged folder and its missing videos."""

    number: int
    folder: Path
    entries: dict[str, dict]
    reused_from_merged: list[str]
    missing: list[str]


def check_shards(
    out_dir: str | Path, table: pd.DataFrame, identity: dict, num_shards: int, rerun: str
) -> list[Shard]:
    """The ``num_shards`` finished shards of ``out_dir``, checked; a :class:`ShardError` naming
    the shard and the fix otherwise. ``rerun`` is the command that runs a shard, with ``{i}``.

    Checked: every shard folder exists and finished (``shard.json``), has exactly the folder
    ``identity`` (encoder digest, clip_len, stride, frame_rate, crop, code digest, precision),
    holds exactly its share, and every video of ``table`` is in exactly one shard. Each video's
    frames are checked by the merge, per video, with the rule every run uses.
    """
    check_shard_folders(out_dir, num_shards, rerun)
    owner: dict[str, str] = {}
    shards = []
    for i in range(num_shards):
        shard = finished_shard(out_dir, i, num_shards, rerun, INDEX_FILE)
        index = json.loads((shard.folder / INDEX_FILE).read_text())
        for got in (shard.record[IDENTITY_KEY], index[IDENTITY_KEY]):
            check_shard_settings(
                shard, identity, got, made="extracted", same="encoder, params and code"
            )
        record, folder = shard.record, shard.folder
        held = set(index["videos"]) | set(record["reused_from_merged"]) | set(record["missing"])
        share = shard_videos(table, i, num_shards)["video_id"]
        claim_share(owner, held, share, name=shard.name, folder=folder, fix=shard.fix)
        check_shard_files(
            shard,
            [e["file"] for e in index["videos"].values() if not (folder / e["file"]).is_file()],
        )
        shards.append(
            Shard(i, folder, index["videos"], record["reused_from_merged"], record["missing"])
        )
    return shards
