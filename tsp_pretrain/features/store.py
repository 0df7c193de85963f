"""The feature folder: one ``T x F`` float32 ``.npy`` per video, a clips table, an index.

Layout (what downstream localisers such as ActionFormer read, one file per video)::

    <dir>/<file stem>.npy   features, one row per clip (the stem is the video file's, e.g. v_<id>)
    <dir>/clips.csv         video_id, clip_index, start_frame, t_start, t_end, lost_frames
    <dir>/index.json        settings (encoder digest, clip_len, stride, frame_rate) and, per video,
                            the feature file and its number of clips
    <dir>/meta.json, missing_files.txt, [features.hdf5], [resized_<L>/]
                            rebuilt from the .npy files after every run: how localizers read the
                            folder (:mod:`tsp_pretrain.features.outputs`, docs/localizers.md)

A video is extracted once per settings: a resumed run skips videos already in the index with the
same settings; any change of settings empties the folder first.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from tsp_pretrain.atomic import atomic_path, write_json

INDEX_FILE = "index.json"
CLIPS_FILE = "clips.csv"


class FeatureIndex:
    """Settings and per-video entries of a feature folder, written atomically."""

    def __init__(self, root: str | Path, settings: dict) -> None:
        self.root = Path(root)
        self.settings = settings
        self.videos: dict[str, dict] = {}
        path = self.root / INDEX_FILE
        if path.is_file():
            with path.open() as f:
                data = json.load(f)
            if data.get("settings") == settings:
                self.videos = {
                    vid: entry
                    for vid, entry in data["videos"].items()
                    if (self.root / entry["file"]).is_file()
                }

    def save(self) -> None:
        document = {"settings": self.settings, "videos": self.videos}
        write_json(self.root / INDEX_FILE, document, indent=1)


def write_features(path: Path, features: np.ndarray) -> None:
    """Save one video's features atomically."""
    with atomic_path(path) as tmp:
        np.save(tmp, features.astype(np.float32, copy=False))


def load_features(root: str | Path) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """All features of a folder by video id, and its clips table."""
    root = Path(root)
    index_path = root / INDEX_FILE
    if not index_path.is_file():
        raise FileNotFoundError(f"{root}: no {INDEX_FILE}; run the extraction stage first")
    with index_path.open() as f:
        entries = json.load(f)["videos"]
    clips = pd.read_csv(root / CLIPS_FILE, dtype={"video_id": str})
    return {vid: np.load(root / e["file"]) for vid, e in entries.items()}, clips
