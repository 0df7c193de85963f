"""The clip dataset: clip keys (video, start frame, targets) -> transformed clips with targets.

One reading path for everything that needs clips in random order (pretraining, training and
validation); sequential extraction reads the same frame store through
:meth:`tsp_pretrain.video.store.StoredFrames.iter_stored`.

The dataset is indexed by :class:`ClipKey` rather than by a row number: a key carries all that
an item depends on (which clip, train or eval transform, the random seed of its crop and flip), so
one DataLoader with persistent workers serves every epoch and the validation, its workers forked
once, while each epoch's clips come from the batch sampler (:class:`KeyBatches`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, Sampler

from tsp_pretrain.data.transforms import ClipTransform
from tsp_pretrain.video.store import FrameStore


class ClipKey(NamedTuple):
    """One clip to read. ``seed``: the seed of its crop and flip's random generator (worker
    processes; ``None`` draws from torch's global stream, as the single-process loop does)."""

    video_id: str
    start_frame: int
    action: int
    region: int
    train: bool
    seed: int | None = None


def clip_keys(
    samples: pd.DataFrame, *, train: bool, seeds: Sequence[int] | None = None
) -> list[ClipKey]:
    """Keys of ``samples`` (columns video_id, start_frame, action, region), in their order."""
    rows = zip(
        samples["video_id"].tolist(),
        samples["start_frame"].tolist(),
        samples["action"].tolist(),
        samples["region"].tolist(),
        strict=True,
    )
    seeds = [None] * len(samples) if seeds is None else list(seeds)
    return [
        ClipKey(v, s, a, r, train, seed) for (v, s, a, r), seed in zip(rows, seeds, strict=True)
    ]


def check_samples(
    store: FrameStore, samples: pd.DataFrame, gvf: Mapping[str, torch.Tensor] | None
) -> None:
    """Fail early, naming the fix, when a sampled video has no frames or no GVF."""
    missing = sorted(set(samples["video_id"]) - set(store.video_ids))
    if missing:
        raise KeyError(
            f"{store.root}: {len(missing)} sampled videos are not in the frame store "
            f"(first: {missing[:3]}); re-run the decode stage"
        )
    if gvf is not None:
        absent = sorted(set(samples["video_id"]) - set(gvf))
        if absent:
            raise KeyError(f"no global video feature for {len(absent)} videos: {absent[:3]}")


class ClipDataset(Dataset):
    """Clips of ``clip_len`` frames read from a frame store, indexed by :class:`ClipKey`.

    An item is the clip's crop in the store's pixel layout (``clips``, uint8) and where it was
    cut (``window``: top, left, flip), drawn by ``transform`` (random for keys with
    ``train=True``, central otherwise); the batch becomes the model's input on its device
    (:meth:`ClipTransform.to_model`, see :mod:`tsp_pretrain.data.transforms`). ``gvf`` maps video
    ids to their global video feature; when given, each item carries its video's GVF.
    """

    def __init__(
        self,
        store: FrameStore,
        clip_len: int,
        transform: ClipTransform,
        gvf: Mapping[str, torch.Tensor] | None = None,
    ) -> None:
        self.store = store
        self.clip_len = clip_len
        self.transform = transform
        self.gvf = gvf

    def __getitem__(self, key: ClipKey) -> dict[str, torch.Tensor]:
        video = self.store.open(key.video_id)
        raw = video.read_stored(int(key.start_frame), self.clip_len)
        # a generator of its own: torch.manual_seed also reseeds every accelerator's generator
        # (0.13 ms a clip, 2 % of an mp4 clip read); the draws are the same
        generator = None if key.seed is None else torch.Generator().manual_seed(key.seed)
        h, w = video.entry.height, video.entry.width
        window = self.transform.window(key.train, h, w, generator)
        item = {
            "clips": torch.from_numpy(self.transform.crop(raw, window)),
            "window": window,
            "action": torch.tensor(key.action, dtype=torch.long),
            "region": torch.tensor(key.region, dtype=torch.long),
        }
        if self.gvf is not None:
            item["gvf"] = self.gvf[key.video_id]
        return item


class KeyBatches(Sampler[list[ClipKey]]):
    """The batch sampler of the one DataLoader: batches of keys, replaced before each pass."""

    def __init__(self) -> None:
        self.batches: list[list[ClipKey]] = []

    def set(self, keys: Sequence[ClipKey], batches: Sequence[np.ndarray]) -> None:
        """The next pass: ``batches`` are positions into ``keys``."""
        self.batches = [[keys[i] for i in batch] for batch in batches]

    def __iter__(self) -> Iterator[list[ClipKey]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)
