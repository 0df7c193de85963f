"""The clip dataset: (video, start frame) rows -> transformed clips with their targets.

One reading path for everything that needs clips in random order (pretraining, training and
validation); sequential extraction reads the same frame store through
:meth:`tsp_pretrain.video.store.StoredFrames.iter_frames`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pandas as pd
import torch
from torch.utils.data import Dataset

from tsp_pretrain.video.store import FrameStore


class ClipDataset(Dataset):
    """Clips of ``clip_len`` frames read from a frame store.

    ``samples`` has columns video_id, start_frame, action, region (see
    :func:`tsp_pretrain.data.sampling.sample_clips`). ``gvf`` maps video ids to their global
    video feature; when given, each item carries its video's GVF.
    """

    def __init__(
        self,
        store: FrameStore,
        samples: pd.DataFrame,
        clip_len: int,
        transform: Callable[[torch.Tensor], torch.Tensor],
        gvf: Mapping[str, torch.Tensor] | None = None,
    ) -> None:
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
        self.store = store
        self.video_ids = samples["video_id"].tolist()
        self.starts = samples["start_frame"].to_numpy()
        self.action = torch.tensor(samples["action"].to_numpy(), dtype=torch.long)
        self.region = torch.tensor(samples["region"].to_numpy(), dtype=torch.long)
        self.clip_len = clip_len
        self.transform = transform
        self.gvf = gvf

    def __len__(self) -> int:
        return len(self.video_ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        video_id = self.video_ids[i]
        clip = self.store.read_clip(video_id, int(self.starts[i]), self.clip_len)
        item = {"clips": self.transform(clip), "action": self.action[i], "region": self.region[i]}
        if self.gvf is not None:
            item["gvf"] = self.gvf[video_id]
        return item
