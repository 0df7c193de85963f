"""Synthetic clip features with known foreground segments and classes, for the probe and
localization tests: the signal is planted, so what a read-out should find is known."""

from __future__ import annotations

import numpy as np
import pandas as pd


def clips_of(rows: list[tuple[str, float, float]]) -> pd.DataFrame:
    """Clips table from (video_id, t_start, t_end) rows, clip_index counted per video."""
    table = pd.DataFrame(rows, columns=["video_id", "t_start", "t_end"])
    table.insert(1, "clip_index", table.groupby("video_id").cumcount())
    return table


def segments_of(rows: list[tuple[str, float, float, int]]) -> pd.DataFrame:
    """Foreground segments table from (video_id, t_start, t_end, label_id) rows."""
    table = pd.DataFrame(rows, columns=["video_id", "t_start", "t_end", "label_id"])
    table["label"] = [f"class{i}" for i in table["label_id"]]
    table["region"] = "foreground"
    return table[["video_id", "t_start", "t_end", "label", "label_id", "region"]]


NUM_CLIPS = 20  # one-second clips, stride one second
NUM_CLASSES = 3


def make_dataset(
    num_train: int = 12,
    num_valid: int = 8,
    *,
    offset_scale: float = 0.0,
    separation: float = 1.0,
    noise: float = 0.5,
    class_signal: float = 2.0,
    seed: int = 0,
) -> dict:
    """Synthetic videos of 20 one-second clips, one action segment each, and their features.

    Feature 0 = per-video offset + ``separation`` on foreground clips + noise: the fg/bg direction
    is the same in every video, the offset (validation videos only, so that the probe learns the
    direction cleanly on training videos) differs per video. Features 1-3 carry the class on
    foreground clips (``class_signal``); feature 4 is noise.
    """
    rng = np.random.default_rng(seed)
    videos, clip_rows, seg_rows, features = [], [], [], {}
    for i in range(num_train + num_valid):
        vid = f"{'t' if i < num_train else 'v'}{i:03d}"
        subset = "training" if i < num_train else "validation"
        videos.append((vid, f"{vid}.mp4", subset, float(NUM_CLIPS), 15.0, NUM_CLIPS * 15))
        start = int(rng.integers(3, 9))
        end = start + int(rng.integers(4, 9))
        label_id = i % NUM_CLASSES
        seg_rows.append((vid, float(start), float(end), label_id))
        clip_rows += [(vid, float(k), float(k + 1)) for k in range(NUM_CLIPS)]
        fg = (np.arange(NUM_CLIPS) >= start) & (np.arange(NUM_CLIPS) < end)
        x = rng.normal(0.0, noise, size=(NUM_CLIPS, 5))
        offset = offset_scale * rng.normal() if subset == "validation" else 0.0
        x[:, 0] += offset + separation * fg
        x[fg, 1 + label_id] += class_signal
        features[vid] = x.astype(np.float32)
    videos = pd.DataFrame(
        videos, columns=["video_id", "filename", "subset", "duration", "fps", "num_frames"]
    )
    return {
        "features": features,
        "clips": clips_of(clip_rows),
        "segments": segments_of(seg_rows),
        "videos": videos,
    }
