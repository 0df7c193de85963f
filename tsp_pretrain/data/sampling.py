"""Which clips an epoch sees: the recipe's "N clips per segment" rule.

Every segment of the canonical table (foreground and background) yields ``clips_per_segment``
clips per epoch. In training the clip start is ``t_start + U(0, 1) * (t_end - t_start -
clip_seconds)`` (a fresh draw every epoch); in validation the starts are evenly spaced
(``linspace(0, 1, clips_per_segment)``), so validation sees the same clips every epoch. The
foreground/background balance comes from the roughly equal numbers of action and background
segments. TAC uses the foreground segments only, so per epoch it sees the same foreground clips
as TSP (and fewer steps; both counts are logged).

Times become frame indices of the frame store with ``round(t * frame_rate)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Region targets of the region head.
FOREGROUND, BACKGROUND = 1, 0


def sample_clips(
    segments: pd.DataFrame,
    *,
    clips_per_segment: int,
    clip_seconds: float,
    frame_rate: float,
    rng: np.random.Generator | None,
) -> pd.DataFrame:
    """One epoch's clips: columns video_id, start_frame, action, region.

    ``rng=None`` gives the evenly spaced validation clips. Segments shorter than one clip are
    expected to have been dropped by the annotation stage; here they start at ``t_start``.
    """
    n = len(segments)
    room = np.maximum(
        segments["t_end"].to_numpy() - segments["t_start"].to_numpy() - clip_seconds, 0.0
    )
    if rng is None:
        frac = np.tile(np.linspace(0.0, 1.0, clips_per_segment), n)
    else:
        frac = rng.random(n * clips_per_segment)
    starts = np.repeat(segments["t_start"].to_numpy(), clips_per_segment)
    starts = starts + frac * np.repeat(room, clips_per_segment)
    fg = np.repeat((segments["region"] == "foreground").to_numpy(), clips_per_segment)
    return pd.DataFrame(
        {
            "video_id": np.repeat(segments["video_id"].to_numpy(), clips_per_segment),
            "start_frame": np.round(starts * frame_rate).astype(np.int64),
            "action": np.where(
                fg, np.repeat(segments["label_id"].to_numpy(), clips_per_segment), -1
            ),
            "region": np.where(fg, FOREGROUND, BACKGROUND),
        }
    )


def sliding_windows(num_frames: int, clip_len: int, stride: int) -> np.ndarray:
    """Clip start frames for extraction: 0, stride, 2*stride, ... while a whole clip fits.

    The tail that does not fill a clip is dropped, as in the recipe
    (T = floor((num_frames - clip_len) / stride) + 1). A video shorter than one clip (on which the
    official code crashed) gets one clip at 0, padded by the clip reader with its last frame.
    """
    if num_frames < clip_len:
        return np.zeros(1, dtype=np.int64)
    return np.arange(0, num_frames - clip_len + 1, stride, dtype=np.int64)
