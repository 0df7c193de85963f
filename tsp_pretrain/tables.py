"""Reading the canonical tables written by :func:`write_annotations` (for later stages)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pandas as pd


@dataclass(frozen=True)
class AnnotationTables:
    """The canonical videos and segments tables and the label map of one dataset."""

    videos: pd.DataFrame
    segments: pd.DataFrame
    labels: list[str]

    def subset(self, name: str) -> AnnotationTables:
        """Only the videos (and their segments) of subset ``name``; an error names the others."""
        videos = self.videos[self.videos["subset"] == name]
        if videos.empty:
            known = ", ".join(sorted(self.videos["subset"].unique()))
            raise ValueError(
                f"no video in subset {name!r} (subsets present: {known}); "
                "set datasets.<name>.train_subset / valid_subset in params.yaml"
            )
        segments = self.segments[self.segments["video_id"].isin(videos["video_id"])]
        return AnnotationTables(
            videos.reset_index(drop=True), segments.reset_index(drop=True), self.labels
        )


def read_annotations(folder: str | Path) -> AnnotationTables:
    """Load ``videos.csv``, ``segments.csv`` and ``labels.json`` from ``folder``."""
    folder = Path(folder)
    for name in ("videos.csv", "segments.csv", "labels.json"):
        if not (folder / name).is_file():
            raise FileNotFoundError(
                f"{folder / name}: missing; run the annotations stage (dvc repro) first"
            )
    with (folder / "labels.json").open() as f:
        labels = json.load(f)
    return AnnotationTables(
        read_videos_csv(folder / "videos.csv"), read_segments_csv(folder / "segments.csv"), labels
    )


def read_videos_csv(source: str | Path | IO[str]) -> pd.DataFrame:
    """``videos.csv`` (a path or an open text stream, e.g. a file of a git revision)."""
    return pd.read_csv(source, dtype={"video_id": str, "filename": str})


def read_segments_csv(source: str | Path | IO[str]) -> pd.DataFrame:
    """``segments.csv``: ids and labels as text, an empty label (background) stays ""."""
    return pd.read_csv(
        source,
        dtype={"video_id": str, "label": str},
        keep_default_na=False,
        na_values={"t_start": [""], "t_end": [""]},
    )
