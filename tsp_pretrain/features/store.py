"""The feature folder: one ``T x F`` float32 ``.npy`` per video, a clips table, an index.

Layout (what downstream localisers such as ActionFormer read, one file per video)::

    <dir>/<file stem>.npy   features, one row per clip (the stem is the video file's, e.g. v_<id>)
    <dir>/clips.csv         video_id, clip_index, start_frame, t_start, t_end, lost_frames
    <dir>/index.json        the folder's identity under "settings" (code and encoder digests,
                            clip_len, stride, frame_rate, ...: FeatureSpec.identity) and, per
                            video, the feature file, its number of clips and frames
    <dir>/meta.json, missing_files.txt, [features.hdf5], [resized_<L>/]
                            rebuilt from the .npy files after every run: how localizers read the
                            folder (:mod:`tsp_pretrain.features.outputs`, docs/localizers.md)

A video is extracted once per identity: a resumed run skips videos already in the index with the
same identity; any change of identity empties the folder first (its entries are not read back,
so the run deletes their files).

Bookkeeping stays linear in the number of videos: while a run is in progress, each finished video
adds one small JSON file to ``<dir>/.progress/`` (written atomically after its ``.npy``, holding the
identity and the video's entry), and ``index.json`` is written once, at the end of the run, after
which ``.progress/`` is removed. Rewriting the whole index after every video cost 2.9 s / 58 s /
18.7 min of bookkeeping at 1,000 / 5,000 / 20,000 videos (quadratic; docs/performance.md). A run
killed at any point resumes from ``index.json`` (an earlier finished run) plus ``.progress/``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from tsp_pretrain.atomic import atomic_path, is_partial, write_json
from tsp_pretrain.video.store import INDEX_FILE  # one name for a folder's index, frames or features

#: The key of ``index.json`` and of each progress record holding the folder identity (its
#: name on disk predates the word; dvc.lock and resuming read it, so it stays).
IDENTITY_KEY = "settings"
CLIPS_FILE = "clips.csv"
PROGRESS_DIR = ".progress"


class FeatureIndex:
    """The identity and per-video entries of a feature folder (see the module docstring).

    ``add`` records one finished video in constant time; ``save`` writes ``index.json`` once and
    drops the progress records.
    """

    def __init__(self, root: str | Path, identity: dict) -> None:
        self.root = Path(root)
        self.identity = identity
        self.videos: dict[str, dict] = {}
        path = self.root / INDEX_FILE
        if path.is_file():
            with path.open() as f:
                data = json.load(f)
            if data.get(IDENTITY_KEY) == identity:
                self.videos = dict(data["videos"])
        progress = self.root / PROGRESS_DIR
        if progress.is_dir():
            for record in sorted(progress.iterdir()):
                data = _read_record(record)
                if data is None or data.get(IDENTITY_KEY) != identity:
                    record.unlink()  # a torn write, or another run's identity: redo that video
                    continue
                self.videos[data["video_id"]] = data["entry"]
        root = self.root
        self.videos = {v: e for v, e in self.videos.items() if (root / e["file"]).is_file()}

    def add(self, video_id: str, entry: dict) -> None:
        """Record a video whose ``.npy`` file is written: one small atomic file, constant cost."""
        self.videos[video_id] = entry
        progress = self.root / PROGRESS_DIR
        progress.mkdir(exist_ok=True)
        record = {IDENTITY_KEY: self.identity, "video_id": video_id, "entry": entry}
        write_json(progress / f"{Path(entry['file']).stem}.json", record)

    def save(self) -> None:
        """Write ``index.json`` once (sorted keys: the same bytes whatever order videos finished
        in, with worker processes, shards or a resumed run), then drop the progress records."""
        document = {IDENTITY_KEY: self.identity, "videos": self.videos}
        write_json(self.root / INDEX_FILE, document, indent=1)
        shutil.rmtree(self.root / PROGRESS_DIR, ignore_errors=True)


def _read_record(path: Path) -> dict | None:
    """A progress record, or None when it is not a complete one (a kill mid-write)."""
    if is_partial(path) or path.suffix != ".json":
        return None
    try:
        with path.open() as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


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
