"""What stage ``extract@<encoder>`` runs: an encoder file and a frame store in, features out.

:func:`run_extraction` reads the encoder file, checks it was trained at the params' crop
(:mod:`tsp_pretrain.models.crop`), builds the run once from the params
(:meth:`~tsp_pretrain.features.spec.ExtractionRun.from_params`), then extracts this process's
shard (:func:`~tsp_pretrain.features.extract.extract_dataset`) or merges the shards
(:func:`~tsp_pretrain.features.extract.merge_shards`), and writes the annotation files the
localizers read beside a finished folder (:mod:`tsp_pretrain.features.localizers`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from tsp_pretrain.config import Params
from tsp_pretrain.features.extract import extract_dataset, merge_shards
from tsp_pretrain.features.localizers import write_localizer_annotations
from tsp_pretrain.features.outputs import annotated_but_skipped
from tsp_pretrain.features.spec import ExtractionRun
from tsp_pretrain.models.crop import CROP_KEY, check_crop
from tsp_pretrain.models.encoder import build_encoder
from tsp_pretrain.models.encoder_file import load_encoder_file
from tsp_pretrain.sharding import resolve_shard
from tsp_pretrain.tables import read_annotations
from tsp_pretrain.video.store import FrameStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExtractionPaths:
    """The stage's files: the ``encoder`` file, the canonical tables folder ``annotations``
    (videos, report of skipped videos), the frame store ``frames`` and the feature folder
    ``out``."""

    encoder: Path
    annotations: Path
    frames: Path
    out: Path


def run_extraction(
    params: Params,
    paths: ExtractionPaths,
    *,
    shard: int | None = None,
    num_shards: int | None = None,
    merge: bool = False,
    rerun: str = "python stages/extract.py ... --shard {i}",
) -> dict[str, int]:
    """Extract this process's shard of the videos, or with ``merge`` merge the shards; returns
    the counts of :func:`extract_dataset` or :func:`merge_shards` (both log what they did).

    ``shard`` / ``num_shards`` override ``extract.shard`` / ``extract.num_shards``
    (:func:`~tsp_pretrain.sharding.resolve_shard`); ``rerun`` is the command that runs shard
    ``{i}``, for the merge's error messages.
    """
    p = params.extract
    shard, num_shards = resolve_shard(
        p.shard if shard is None else shard, p.num_shards if num_shards is None else num_shards
    )
    state = load_encoder_file(paths.encoder)
    check_crop(
        state.get(CROP_KEY), params.clip.crop_size, str(paths.encoder), params.encoder.crop_check
    )
    run = ExtractionRun.from_params(
        params,
        paths.encoder,
        state,
        skipped=tuple(annotated_but_skipped(paths.annotations)),
        shard=shard,
        num_shards=num_shards,
    )
    videos = read_annotations(paths.annotations).videos
    store = FrameStore(paths.frames)
    if merge:
        counts = merge_shards(paths.out, videos, store, run, rerun)
    else:
        log.info("extracting on %s with %d input worker process(es)", run.device, run.workers)
        encoder = build_encoder(state["backbone"], str(paths.encoder)).module
        counts = extract_dataset(encoder, store, videos, paths.out, run)
    if merge or num_shards == 1:  # a shard's run leaves the folder to the merge
        write_localizer_annotations(paths.annotations, paths.out)
    return counts
