"""Sharding a per-video stage over processes or machines: which shard this is, and its share.

Used by the decode stage (:mod:`tsp_pretrain.video.shards`) and by feature extraction
(:mod:`tsp_pretrain.features.shards`), so that both split the same way and take the shard from
the same sources (:func:`resolve_shard`). Shard ``i`` of ``n`` takes the videos whose rank in the
sorted video ids is ``i`` modulo ``n`` (deterministic, disjoint, balanced) and writes into
``<out>/.shards/<i>-of-<n>/``, with ``shard.json`` written last when it finished; a merge checks
the shards (:func:`check_shard_folders`, :func:`finished_shard`, :func:`check_shard_settings`,
:func:`claim_share`, :func:`check_shard_files`) and writes ``<out>`` from them.

This module sits below ``video`` and ``features``: it imports neither.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import NamedTuple

import pandas as pd

SHARDS_DIR = ".shards"
SHARD_FILE = "shard.json"


class ShardError(ValueError):
    """Shards that cannot be merged or a shard request that cannot be met (names shard and fix)."""


def _slurm_array(env: Mapping[str, str]) -> tuple[tuple[int, int], str] | None:
    """``((shard, num_shards), description)`` from a SLURM job array's environment, or None.

    The shard is ``SLURM_ARRAY_TASK_ID`` minus ``SLURM_ARRAY_TASK_MIN`` (so ``--array=1-8``
    gives shards 0 .. 7), of ``SLURM_ARRAY_TASK_COUNT``.
    """
    if "SLURM_ARRAY_TASK_ID" not in env or "SLURM_ARRAY_TASK_COUNT" not in env:
        return None
    task, count = int(env["SLURM_ARRAY_TASK_ID"]), int(env["SLURM_ARRAY_TASK_COUNT"])
    first = int(env.get("SLURM_ARRAY_TASK_MIN", "0"))
    described = f"SLURM_ARRAY_TASK_ID={task} SLURM_ARRAY_TASK_COUNT={count}"
    if "SLURM_ARRAY_TASK_MIN" in env:
        described += f" SLURM_ARRAY_TASK_MIN={first}"
    return (task - first, count), f"a SLURM array ({described})"


def resolve_shard(
    shard: int | None, num_shards: int | None, env: Mapping[str, str] | None = None
) -> tuple[int, int]:
    """``(shard, num_shards)`` of this process, from the first of these that splits (``n > 1``):

    1. explicit values (``--shard`` / ``--num-shards``, or the stage's ``shard`` / ``num_shards``
       params);
    2. torchrun's ``RANK`` / ``WORLD_SIZE``, so ``torchrun --nproc-per-node 8 stages/extract.py
       ...`` runs 8 shards;
    3. a SLURM job array: ``SLURM_ARRAY_TASK_ID`` (minus ``SLURM_ARRAY_TASK_MIN`` when set) of
       ``SLURM_ARRAY_TASK_COUNT``, so ``sbatch --array=0-7`` runs 8 shards.

    None of them: ``(0, 1)``, one process. Two of them that split differently is an error naming
    both rather than a guess.
    """
    env = os.environ if env is None else env
    explicit = (shard or 0, num_shards or 1)
    if explicit[1] == 1 and explicit[0] != 0:
        raise ShardError(f"shard {explicit[0]} requested without a number of shards (--num-shards)")
    sources = [
        (explicit, f"--shard/--num-shards or the params (shard {explicit[0]} of {explicit[1]})"),
        (
            (int(env.get("RANK", "0")), int(env.get("WORLD_SIZE", "1"))),
            f"torchrun (RANK={env.get('RANK', '0')} WORLD_SIZE={env.get('WORLD_SIZE', '1')})",
        ),
    ]
    slurm = _slurm_array(env)
    if slurm is not None:
        sources.append(slurm)
    splitting = [(value, name) for value, name in sources if value[1] > 1]
    if not splitting:
        return 0, 1
    chosen, chosen_name = splitting[0]
    for value, name in splitting[1:]:
        if value != chosen:
            raise ShardError(
                f"shard {chosen[0]} of {chosen[1]} from {chosen_name}, but shard {value[0]} of "
                f"{value[1]} from {name}: give one or the other (e.g. drop --shard/--num-shards "
                "under torchrun or in a SLURM array)"
            )
    if not 0 <= chosen[0] < chosen[1]:
        raise ShardError(
            f"shard {chosen[0]} (from {chosen_name}) is not in 0..{chosen[1] - 1} "
            f"(num_shards {chosen[1]})"
        )
    return chosen


def shard_name(shard: int, num_shards: int) -> str:
    """Folder name of a shard, e.g. ``0-of-2``."""
    return f"{shard}-of-{num_shards}"


def shard_dir(out_dir: str | Path, shard: int, num_shards: int) -> Path:
    """Where shard ``shard`` of ``num_shards`` writes (inside the final output folder)."""
    return Path(out_dir) / SHARDS_DIR / shard_name(shard, num_shards)


def shard_ids(video_ids: Iterable[str], shard: int, num_shards: int) -> list[str]:
    """Shard ``shard``'s share of ``video_ids``: every ``num_shards``-th of the sorted ids."""
    return sorted(set(video_ids))[shard::num_shards]


def shard_videos(table: pd.DataFrame, shard: int, num_shards: int) -> pd.DataFrame:
    """The rows of ``table`` (column video_id) that shard ``shard`` takes, in table order."""
    share = set(shard_ids(table["video_id"], shard, num_shards))
    return table[table["video_id"].isin(share)]


def settings_diff(expected: Mapping, got: Mapping) -> str:
    """``key: got (expected value)`` for every key whose value differs, for error messages."""
    keys = sorted(set(expected) | set(got))
    return ", ".join(
        f"{k}: {got.get(k)!r} (expected {expected.get(k)!r})"
        for k in keys
        if expected.get(k) != got.get(k)
    )


def check_shard_folders(out_dir: str | Path, num_shards: int, rerun: str) -> Path:
    """``<out_dir>/.shards``, checked to hold nothing but shards of a ``num_shards``-way split;
    a :class:`ShardError` otherwise. ``rerun`` is the command that runs a shard, with ``{i}``."""
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
    return root


class FinishedShard(NamedTuple):
    """A shard folder whose run finished: where it is, its name, how to run it again (``fix``)
    and its ``shard.json`` (``record``)."""

    folder: Path
    name: str
    fix: str
    record: dict


def finished_shard(
    out_dir: str | Path, shard: int, num_shards: int, rerun: str, index_file: str
) -> FinishedShard:
    """Shard ``shard`` of ``num_shards``, finished; a :class:`ShardError` naming it and the command
    that finishes it otherwise. Finished means its ``shard.json``, written last, and its index
    (``index_file``) are there, and the ``shard.json`` is that shard's. ``rerun`` is the command
    that runs a shard, with ``{i}``.

    The one finished-shard check of every merge (decoding and feature extraction).
    """
    folder = shard_dir(out_dir, shard, num_shards)
    name = shard_name(shard, num_shards)
    fix = f"run it (it resumes): {rerun.format(i=shard)}"
    if not (folder / SHARD_FILE).is_file() or not (folder / index_file).is_file():
        raise ShardError(f"shard {name} ({folder}) has not finished: {fix}")
    record = json.loads((folder / SHARD_FILE).read_text())
    if (record["shard"], record["num_shards"]) != (shard, num_shards):
        raise ShardError(f"{folder}/{SHARD_FILE} is not shard {name}: delete {folder}; {fix}")
    return FinishedShard(folder, name, fix, record)


def check_shard_settings(
    shard: FinishedShard, expected: Mapping, got: Mapping, *, made: str, same: str
) -> None:
    """A :class:`ShardError` when ``shard`` was ``made`` ("decoded", "extracted") with settings
    ``got`` other than ``expected``, naming the differences; ``same``: what every shard must
    share (e.g. "encoder, params and code")."""
    if got != expected:
        raise ShardError(
            f"shard {shard.name} ({shard.folder}) was {made} with other settings "
            f"({settings_diff(expected, got)}): every shard must use the same {same}; delete "
            f"{shard.folder} and {shard.fix}"
        )


def check_shard_files(shard: FinishedShard, absent: list[str]) -> None:
    """A :class:`ShardError` when files the shard's index lists are ``absent``."""
    if absent:
        raise ShardError(
            f"shard {shard.name} ({shard.folder}) lacks its files {absent[:5]}: {shard.fix}"
        )


def claim_share(
    owner: dict[str, str],
    held: Iterable[str],
    share: Iterable[str],
    *,
    name: str,
    folder: Path,
    fix: str,
) -> None:
    """Record in ``owner`` (video id -> shard name) that shard ``name`` holds ``held``, checked
    against its ``share``: a :class:`ShardError` when a video is held by two shards, when the
    shard lacks videos of its share or holds others. ``fix``: how to run the shard again."""
    held = sorted(set(held))
    for vid in held:
        if vid in owner:
            raise ShardError(
                f"video {vid} is in shards {owner[vid]} and {name}: the shards were split "
                f"differently; delete {folder.parent} and run every shard again"
            )
        owner[vid] = name
    share = set(share)
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
