"""Sharded extraction: each of ``n`` processes (GPUs, machines) extracts a disjoint share.

Shard ``i`` of ``n`` takes the videos whose rank in the sorted video ids is ``i`` modulo ``n``
(deterministic, disjoint, balanced) and writes them, with its own ``index.json`` (resumable per
video, like a single-process run), into ``<out>/.shards/<i>-of-<n>/``. Videos whose features in
``<out>`` itself (the last merge or single-process run) are still valid, by the same per-video
rule as a single-process run (:func:`tsp_pretrain.features.extract.features_are_current`), are
left there: after one video is added, one video is extracted, whatever the number of shards.
``shard.json`` written last says the shard finished and records its settings, its share, the
videos it left in ``<out>`` and its videos missing from the frame store.
:func:`tsp_pretrain.features.extract.merge_shards` checks the shards (:func:`check_shards`: all
present and finished, the same settings, every video exactly once; then every video's features
against the frame store) and writes the feature folder, byte-identical to a single-process run,
then deletes ``.shards/``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from tsp_pretrain.atomic import write_json
from tsp_pretrain.features.store import INDEX_FILE

SHARDS_DIR = ".shards"
SHARD_FILE = "shard.json"


class ShardError(ValueError):
    """Shards that cannot be merged or a shard request that cannot be met (names shard and fix)."""


def resolve_shard(
    shard: int | None, num_shards: int | None, env: Mapping[str, str] | None = None
) -> tuple[int, int]:
    """``(shard, num_shards)`` from explicit values (CLI or params), else torchrun's environment.

    Explicit values win when ``num_shards > 1``; otherwise ``RANK`` / ``WORLD_SIZE`` (set by
    ``torchrun``) give the shard, so ``torchrun --nproc-per-node 8 stages/extract.py ...`` runs 8
    shards. Both set and different is an error rather than a guess.
    """
    env = os.environ if env is None else env
    world = int(env.get("WORLD_SIZE", "1"))
    rank = int(env.get("RANK", "0"))
    explicit = (shard or 0, num_shards or 1)
    if explicit[1] > 1 and world > 1 and explicit != (rank, world):
        raise ShardError(
            f"shard {explicit[0]} of {explicit[1]} requested, but torchrun says RANK={rank} "
            f"WORLD_SIZE={world}; give one or the other (drop --shard/--num-shards under torchrun)"
        )
    chosen = explicit if explicit[1] > 1 else (rank, world)
    if not 0 <= chosen[0] < chosen[1]:
        raise ShardError(f"shard {chosen[0]} is not in 0..{chosen[1] - 1} (num_shards {chosen[1]})")
    return chosen


def shard_name(shard: int, num_shards: int) -> str:
    """Folder name of a shard, e.g. ``0-of-2``."""
    return f"{shard}-of-{num_shards}"


def shard_dir(out_dir: str | Path, shard: int, num_shards: int) -> Path:
    """Where shard ``shard`` of ``num_shards`` writes (inside the final feature folder)."""
    return Path(out_dir) / SHARDS_DIR / shard_name(shard, num_shards)


def shard_videos(table: pd.DataFrame, shard: int, num_shards: int) -> pd.DataFrame:
    """The rows of ``table`` (column video_id) that shard ``shard`` extracts, in table order."""
    ids = sorted(set(table["video_id"]))
    share = set(ids[shard::num_shards])
    return table[table["video_id"].isin(share)]


def merged_entries(out_dir: str | Path, settings: dict) -> dict[str, dict]:
    """The entries of the merged feature folder ``out_dir`` (its ``index.json``, as the last merge
    or single-process run wrote it) that a shard may leave in place: same settings, file present.

    Read only, without the folder's progress records: every shard reads it at once, and the
    merge re-checks each video it keeps.
    """
    path = Path(out_dir) / INDEX_FILE
    if not path.is_file():
        return {}
    document = json.loads(path.read_text())
    if document["settings"] != settings:
        return {}
    return {
        vid: entry
        for vid, entry in document["videos"].items()
        if (Path(out_dir) / entry["file"]).is_file()
    }


def finish_shard(
    folder: Path,
    settings: dict,
    *,
    videos: Iterable[str],
    missing: Iterable[str],
    reused_from_merged: Iterable[str],
    shard: int,
    num_shards: int,
) -> None:
    """Mark a shard finished: its settings, share, the videos whose still valid features it left
    in the merged folder, and its videos missing from the store."""
    record = {
        "shard": shard,
        "num_shards": num_shards,
        "settings": settings,
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


def _settings_diff(expected: dict, got: dict) -> str:
    keys = sorted(set(expected) | set(got))
    return ", ".join(
        f"{k}: {got.get(k)!r} (expected {expected.get(k)!r})"
        for k in keys
        if expected.get(k) != got.get(k)
    )


def check_shards(
    out_dir: str | Path, table: pd.DataFrame, settings: dict, num_shards: int, rerun: str
) -> list[Shard]:
    """The ``num_shards`` finished shards of ``out_dir``, checked; a :class:`ShardError` naming
    the shard and the fix otherwise. ``rerun`` is the command that runs a shard, with ``{i}``.

    Checked: every shard folder exists and finished (``shard.json``), used exactly ``settings``
    (encoder digest, clip_len, stride, frame_rate, crop, code digest, precision),
    holds exactly its share, and every video of ``table`` is in exactly one shard. Each video's
    frames are checked by the merge, per video, with the rule every run uses.
    """
    root = Path(out_dir) / SHARDS_DIR
    if not root.is_dir():
        raise ShardError(f"{root}: no shards; run each shard first ({rerun.format(i='<i>')})")
    names = {shard_name(i, num_shards) for i in range(num_shards)}
    others = sorted(p.name for p in root.iterdir() if p.name not in names)
    if others:
        raise ShardError(
            f"{root} holds {others}, which are not shards of a {num_shards}-way split: merge with "
            f"the --num-shards they were run with, or delete them"
        )
    owner: dict[str, str] = {}
    shards = []
    for i in range(num_shards):
        folder = shard_dir(out_dir, i, num_shards)
        name = shard_name(i, num_shards)
        fix = f"run it (it resumes): {rerun.format(i=i)}"
        if not (folder / SHARD_FILE).is_file() or not (folder / INDEX_FILE).is_file():
            raise ShardError(f"shard {name} ({folder}) has not finished: {fix}")
        record = json.loads((folder / SHARD_FILE).read_text())
        index = json.loads((folder / INDEX_FILE).read_text())
        for got in (record["settings"], index["settings"]):
            if got != settings:
                raise ShardError(
                    f"shard {name} ({folder}) was extracted with other settings "
                    f"({_settings_diff(settings, got)}): every shard must use the same encoder, "
                    f"params and code; delete {folder} and {fix}"
                )
        if (record["shard"], record["num_shards"]) != (i, num_shards):
            raise ShardError(f"{folder}/{SHARD_FILE} is not shard {name}: delete {folder}; {fix}")
        held = sorted(
            set(index["videos"]) | set(record["reused_from_merged"]) | set(record["missing"])
        )
        for vid in held:
            if vid in owner:
                raise ShardError(
                    f"video {vid} is in shards {owner[vid]} and {name}: the shards were split "
                    f"differently; delete {root} and run every shard again"
                )
            owner[vid] = name
        share = set(shard_videos(table, i, num_shards)["video_id"])
        lacking = sorted(share - set(held))
        if lacking:
            raise ShardError(
                f"shard {name} ({folder}) lacks {len(lacking)} of its videos "
                f"({', '.join(lacking[:5])}{', ...' if len(lacking) > 5 else ''}): {fix}"
            )
        extra = sorted(set(held) - share)
        if extra:
            raise ShardError(
                f"shard {name} ({folder}) holds videos outside its share "
                f"({', '.join(extra[:5])}): it was run on another video list; delete {folder} "
                f"and {fix}"
            )
        absent = [e["file"] for e in index["videos"].values() if not (folder / e["file"]).is_file()]
        if absent:
            raise ShardError(f"shard {name} ({folder}) lacks its files {absent[:5]}: {fix}")
        shards.append(
            Shard(i, folder, index["videos"], record["reused_from_merged"], record["missing"])
        )
    return shards
