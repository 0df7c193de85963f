"""Checking per-video feature arrays against the clips table and stacking them into one matrix.

Extraction writes one ``T x F`` array per video and a clips table whose ``clip_index`` is the row of
that array. Everything here fails loudly, naming the video, because a silently misaligned row would
pair a feature with another clip's label and quietly corrupt every metric.

:func:`split_features` is the one place where clips are labelled and split into the probes'
training and validation matrices, for the separability probes and the localization read-out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tsp_pretrain.evaluation.clip_labels import label_clips
from tsp_pretrain.evaluation.errors import EvaluationError
from tsp_pretrain.evaluation.spec import EvaluationSpec
from tsp_pretrain.regions import FOREGROUND


@dataclass(frozen=True)
class EncoderFolders:
    """What stages ``evaluate`` and ``localize`` read: the target annotations folder and the two
    encoders' feature folders (as ``extract`` writes them)."""

    annotations: Path
    initial: Path
    trained: Path

    def features(self, order: tuple[str, str]) -> list[tuple[str, Path]]:
        """``(encoder name, features folder)`` of both encoders, in ``order`` (names:
        ``initial``, ``trained``)."""
        folders = {"initial": self.initial, "trained": self.trained}
        return [(name, folders[name]) for name in order]


def select_videos(videos: pd.DataFrame, subset: str) -> list[str]:
    """Sorted ids of the videos in ``subset``; an error listing the subsets that exist if none."""
    for column in ("video_id", "subset"):
        if column not in videos.columns:
            raise EvaluationError(f"videos table lacks column {column!r}")
    ids = sorted(videos.loc[videos["subset"] == subset, "video_id"].astype(str))
    if not ids:
        known = sorted(videos["subset"].dropna().unique())
        raise EvaluationError(
            f"videos table: no video in subset {subset!r} (subsets present: {known}); "
            "check the dataset's train_subset / valid_subset"
        )
    return ids


def stack_features(
    features: Mapping[str, np.ndarray],
    clips: pd.DataFrame,
    video_ids: list[str],
    source: str = "features",
) -> tuple[np.ndarray, pd.DataFrame]:
    """Feature matrix and matching clip rows for ``video_ids``, in video then clip order.

    ``features`` maps video id to its ``T x F`` array (a lazy mapping over files works too).
    ``clips`` must list, for each video, exactly the clip indices ``0 .. T-1``. ``source`` names
    where the features came from, for error messages.
    """
    clips = clips.assign(video_id=clips["video_id"].astype(str))
    by_video = dict(tuple(clips.groupby("video_id", sort=False)))
    blocks: list[np.ndarray] = []
    rows: list[pd.DataFrame] = []
    width: int | None = None
    for vid in video_ids:
        try:
            array = np.asarray(features[vid])
        except KeyError:
            raise EvaluationError(
                f"{source}: no features for video {vid!r}, which the videos table lists; "
                "re-run the feature extraction (its feature file is missing)"
            ) from None
        vclips = by_video.get(vid, clips.iloc[:0]).sort_values("clip_index")
        if array.ndim != 2:
            raise EvaluationError(
                f"{source}: features of video {vid!r} have shape {array.shape}, expected T x F"
            )
        if len(array) != len(vclips):
            raise EvaluationError(
                f"{source}: features of video {vid!r} have {len(array)} rows but the clips table "
                f"lists {len(vclips)} clips for it; features and clips table come from different "
                "extraction runs (re-run the extraction)"
            )
        if not np.array_equal(vclips["clip_index"].to_numpy(), np.arange(len(vclips))):
            raise EvaluationError(
                f"clips table: clip_index of video {vid!r} is not 0..{len(vclips) - 1} "
                "(duplicated or missing clips)"
            )
        if width is not None and array.shape[1] != width:
            raise EvaluationError(
                f"{source}: features of video {vid!r} have {array.shape[1]} dimensions, "
                f"other videos have {width}"
            )
        if not np.isfinite(array).all():
            raise EvaluationError(f"{source}: features of video {vid!r} contain NaN or inf")
        width = array.shape[1]
        blocks.append(array.astype(np.float32, copy=False))
        rows.append(vclips)
    matrix = np.concatenate(blocks) if blocks else np.zeros((0, 0), dtype=np.float32)
    return matrix, pd.concat(rows, ignore_index=True)


@dataclass(frozen=True)
class ProbeData:
    """One encoder's labelled clips, split for the probes: for the training and the validation
    subset, the video ids, the feature matrix, its clip rows (video then clip order, with the
    labels of :func:`~tsp_pretrain.evaluation.clip_labels.label_clips`) and which rows are
    foreground."""

    train_ids: list[str]
    valid_ids: list[str]
    x_train: np.ndarray
    train_clips: pd.DataFrame
    fg_train: np.ndarray
    x_valid: np.ndarray
    valid_clips: pd.DataFrame
    fg_valid: np.ndarray


def split_features(
    features: Mapping[str, np.ndarray],
    clips: pd.DataFrame,
    segments: pd.DataFrame,
    videos: pd.DataFrame,
    spec: EvaluationSpec,
    source: str = "features",
) -> ProbeData:
    """Label the clips (``spec.fg_threshold``) and stack the features of ``spec``'s training and
    validation videos (:func:`stack_features`; ``source`` names the features in errors)."""
    labelled = label_clips(clips, segments, spec.fg_threshold)
    train_ids = select_videos(videos, spec.train_subset)
    valid_ids = select_videos(videos, spec.valid_subset)
    x_train, train_clips = stack_features(features, labelled, train_ids, source)
    x_valid, valid_clips = stack_features(features, labelled, valid_ids, source)
    return ProbeData(
        train_ids=train_ids,
        valid_ids=valid_ids,
        x_train=x_train,
        train_clips=train_clips,
        fg_train=(train_clips["region"] == FOREGROUND).to_numpy(),
        x_valid=x_valid,
        valid_clips=valid_clips,
        fg_valid=(valid_clips["region"] == FOREGROUND).to_numpy(),
    )
