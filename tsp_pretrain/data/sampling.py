"""Which clips an epoch sees: the recipe's "N clips per segment" rule.

Every segment of the canonical table (foreground and background) yields ``clips_per_segment``
clips per epoch. In training the clip start is ``t_start + U(0, 1) * (t_end - t_start -
clip.seconds)`` (a fresh draw every epoch); in validation the starts are evenly spaced
(``linspace(0, 1, clips_per_segment)``), so validation sees the same clips every epoch. The
foreground/background balance comes from the roughly equal numbers of action and background
segments. TAC uses the foreground segments only, so per epoch it sees the same foreground clips
as TSP (and fewer steps; both counts are logged).

Times become frame indices of the frame store with ``round(t * frame_rate)``; a clip is
``clip_len`` frames from there (:class:`~tsp_pretrain.config.ClipSpec`, counted in frames).

Each epoch's order and its split over processes (:func:`epoch_order`, :func:`rank_batches`):
one permutation of the epoch's clips per ``(seed, epoch)``, cut into global batches of
``world_size x batch_size`` consecutive clips; rank ``r`` takes the ``r``-th ``batch_size`` of
each, so ``W`` processes with batch ``B`` see the same global batches as one process with batch
``W x B``. The rest (fewer clips than one global batch) is split over the ranks (``rest[r::W]``);
in training it is left out of that epoch when at least one whole global batch exists, as the
one-process loop always did (its ``drop_last``; the next epoch's permutation leaves out other
clips, and the count is logged), otherwise it is the epoch's only, smaller, batch.

Lost frames (corrupt source stretches, recorded per video in the frame store's index) are never
trained on: a clip that would overlap them moves to the nearest start inside its segment whose
clip does not, and is dropped (and counted in the log) when the segment has no such start.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from tsp_pretrain.config import ClipSpec
from tsp_pretrain.regions import BACKGROUND, BACKGROUND_LABEL_ID, FOREGROUND, REGIONS

log = logging.getLogger(__name__)

#: Targets of the region head in a sampled clip's ``region`` column: the index of the segment's
#: region in :data:`tsp_pretrain.regions.REGIONS` (1 and 0).
FOREGROUND_TARGET, BACKGROUND_TARGET = REGIONS.index(FOREGROUND), REGIONS.index(BACKGROUND)


def sample_clips(
    segments: pd.DataFrame,
    *,
    clip: ClipSpec,
    clips_per_segment: int,
    rng: np.random.Generator | None,
    lost: Mapping[str, Sequence[tuple[int, int]]] | None = None,
) -> pd.DataFrame:
    """One epoch's clips: columns video_id, start_frame, action, region.

    ``rng=None`` gives the evenly spaced validation clips. Segments shorter than one clip
    (``clip.seconds``) are expected to have been dropped by the annotation stage; here they start
    at ``t_start``. ``lost`` maps video ids to their lost frame ranges ``[start, stop)``
    (:attr:`tsp_pretrain.video.store.StoredVideo.lost`); clips of ``clip.clip_len`` frames are
    kept off them (:func:`avoid_lost_frames`). Background clips get the action target
    :data:`~tsp_pretrain.regions.BACKGROUND_LABEL_ID` (no action class).
    """
    k = clips_per_segment
    room = np.maximum(
        segments["t_end"].to_numpy() - segments["t_start"].to_numpy() - clip.seconds, 0.0
    )
    if rng is None:
        frac = np.tile(np.linspace(0.0, 1.0, k), len(segments))
    else:
        frac = rng.random(len(segments) * k)
    first = np.repeat(segments["t_start"].to_numpy(), k)  # each clip's earliest start (seconds)
    room = np.repeat(room, k)
    start_frames = np.round((first + frac * room) * clip.frame_rate).astype(np.int64)
    video_ids = np.repeat(segments["video_id"].to_numpy(), k)
    keep = np.ones(len(start_frames), dtype=bool)
    if lost:
        keep = _keep_off_lost(start_frames, video_ids, (first, room), clip, lost)
    fg = np.repeat((segments["region"] == FOREGROUND).to_numpy(), k)
    table = pd.DataFrame(
        {
            "video_id": video_ids,
            "start_frame": start_frames,
            "action": np.where(
                fg, np.repeat(segments["label_id"].to_numpy(), k), BACKGROUND_LABEL_ID
            ),
            "region": np.where(fg, FOREGROUND_TARGET, BACKGROUND_TARGET),
        }
    )
    return table[keep].reset_index(drop=True)


def _keep_off_lost(
    start_frames: np.ndarray,
    video_ids: np.ndarray,
    span: tuple[np.ndarray, np.ndarray],
    clip: ClipSpec,
    lost: Mapping[str, Sequence[tuple[int, int]]],
) -> np.ndarray:
    """Move clips that overlap lost frames within their segment (``span``: each clip's earliest
    start and room, in seconds), in place; returns which clips are kept (the others have no
    start free of lost frames, and are counted in the log)."""
    first, room = span
    lo = np.round(first * clip.frame_rate)
    hi = np.round((first + room) * clip.frame_rate)
    keep = np.ones(len(start_frames), dtype=bool)
    for i in np.flatnonzero(np.isin(video_ids, list(lost))):
        start = avoid_lost_frames(
            int(start_frames[i]), int(lo[i]), int(hi[i]), clip.clip_len, lost[video_ids[i]]
        )
        if start is None:
            keep[i] = False
        else:
            start_frames[i] = start
    if not keep.all():
        log.warning(
            "%d clips dropped: their segments hold no clip free of lost (corrupt) frames",
            int((~keep).sum()),
        )
    return keep


def epoch_order(num_clips: int, seed: int) -> np.ndarray:
    """The epoch's shuffled clip order, drawn from ``seed`` (the loop's ``(seed, epoch)`` value).

    Exactly the order a ``DataLoader(shuffle=True, generator=torch.Generator().manual_seed(seed))``
    gives: the loader's iterator first draws its workers' base seed from the generator, then its
    ``RandomSampler`` draws ``randperm``. Kept identical so that one process trains on the same
    clips in the same order as before the loop was distributed.
    """
    generator = torch.Generator().manual_seed(seed)
    torch.empty((), dtype=torch.int64).random_(generator=generator)
    return torch.randperm(num_clips, generator=generator).numpy()


def rank_batches(
    order: np.ndarray, *, world_size: int, rank: int, batch_size: int, drop_last: bool
) -> list[np.ndarray]:
    """This rank's batches (positions into the epoch's clips), in the module docstring's split.

    Every rank gets the same number of batches (DistributedDataParallel needs as many steps on
    each); the ranks' batches are disjoint and, with the rest, cover ``order`` exactly once. With
    ``drop_last`` the rest is left out when at least one whole global batch exists (training);
    without, it is a last, smaller batch per rank (validation: every clip counts); a rank left
    with no clip of the rest (fewer clips than ranks) has no such batch.
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside world size {world_size}")
    step = world_size * batch_size
    full = len(order) // step
    batches = [
        order[s * step + rank * batch_size : s * step + (rank + 1) * batch_size]
        for s in range(full)
    ]
    rest = order[full * step :]
    if len(rest[rank::world_size]) and not (drop_last and full):
        batches.append(rest[rank::world_size])
    return batches


def overlaps_lost(
    starts: np.ndarray | int, clip_len: int, lost: Sequence[tuple[int, int]]
) -> np.ndarray:
    """Whether each clip ``[s, s + clip_len)`` overlaps a lost range ``[lo, stop)``.

    The one overlap rule for lost frames: training avoids these clips, extraction marks them.
    """
    starts = np.asarray(starts)
    hit = np.zeros(starts.shape, dtype=bool)
    for lo, stop in lost:
        hit |= (starts < stop) & (lo < starts + clip_len)
    return hit


def avoid_lost_frames(
    start: int, first: int, last: int, clip_len: int, lost: Sequence[tuple[int, int]]
) -> int | None:
    """The clip start nearest to ``start`` in ``[first, last]`` whose clip avoids ``lost``.

    A clip ``[s, s + clip_len)`` overlaps a range ``[lo, stop)`` (:func:`overlaps_lost`) when
    ``lo - clip_len < s < stop``; the allowed starts are the union of intervals whose ends are
    among ``first``, ``last``, ``lo - clip_len`` and ``stop``, so the nearest one is among those.
    ``None`` when no start in the segment avoids them.
    """

    def free(s: int) -> bool:
        return not overlaps_lost(s, clip_len, lost)

    if free(start):
        return start
    candidates = {first, last} | {lo - clip_len for lo, _ in lost} | {stop for _, stop in lost}
    valid = [s for s in candidates if first <= s <= last and free(s)]
    return min(valid, key=lambda s: (abs(s - start), s)) if valid else None


def sliding_windows(num_frames: int, clip_len: int, stride: int) -> np.ndarray:
    """Clip start frames for extraction: 0, stride, 2*stride, ... while a whole clip fits.

    The tail that does not fill a clip is dropped, as in the recipe
    (T = floor((num_frames - clip_len) / stride) + 1). A video shorter than one clip (on which the
    official code crashed) gets one clip at 0, padded by the clip reader with its last frame.
    """
    if num_frames < clip_len:
        return np.zeros(1, dtype=np.int64)
    return np.arange(0, num_frames - clip_len + 1, stride, dtype=np.int64)
