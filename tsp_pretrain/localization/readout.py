"""A localization read-out from frozen clip features: what a localizer could get from them.

No localizer is trained. Two linear probes are fit on the *training* videos' clips (the probes
of :mod:`tsp_pretrain.evaluation.probes`): foreground vs background, and the action class of
foreground clips. On each validation video:

1. **Actionness**: the foreground probe's probability per clip, smoothed along time by a
   Gaussian of ``smoothing`` seconds.
2. **Candidates** (TAG-style grouping, Xiong et al. 2017): every maximal run of clips whose
   actionness is at or above one of ``thresholds``. A run of clips ``a..b`` covers
   ``[centre_a - hop/2, centre_b + hop/2]`` (hop = time between clip centres), within the video.
3. **Score**: ``contrast`` = (1 + inner mean - outer mean) / 2, where *outer* is ``margin`` x
   the run's length on each side (a segment that stands out from its surroundings, which ranks
   the nested candidates of different thresholds by how well their boundaries fit); or
   ``inner`` = the inner mean.
4. **NMS** (:mod:`.nms`), keeping ``max_proposals`` per video: the proposals.
5. **Classes**: the action probe's probabilities averaged over the proposal's clips; each of
   the ``top_classes`` best gives a detection scored proposal score x class probability.

Every choice is a param (``localize`` in params.yaml) with a default fixed in advance; nothing
is fit or tuned on the validation videos that are scored.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter1d

from tsp_pretrain.config import LocalizeParams
from tsp_pretrain.evaluation.errors import EvaluationError
from tsp_pretrain.evaluation.inputs import split_features
from tsp_pretrain.evaluation.probes import fit_foreground_probe, make_probe
from tsp_pretrain.evaluation.spec import EvaluationSpec
from tsp_pretrain.localization.nms import suppress

log = logging.getLogger(__name__)

SEGMENT_COLUMNS = ["video_id", "t_start", "t_end", "score", "first_clip", "last_clip"]


def clip_runs(values: np.ndarray, thresholds: list[float]) -> list[tuple[int, int]]:
    """Distinct maximal runs ``(first, last)`` (inclusive) of ``values >= t`` over thresholds."""
    runs: set[tuple[int, int]] = set()
    for t in thresholds:
        above = np.concatenate([[False], np.asarray(values) >= t, [False]])
        edges = np.flatnonzero(np.diff(above.astype(np.int8)))
        runs.update((int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True))
    return sorted(runs)


def run_score(values: np.ndarray, first: int, last: int, params: LocalizeParams) -> float:
    """A candidate's score (module docstring, step 3); clips outside the video do not count."""
    inner = float(values[first : last + 1].mean())
    if params.score == "inner":
        return inner
    m = max(1, round(params.margin * (last - first + 1)))
    outer = np.concatenate([values[max(0, first - m) : first], values[last + 1 : last + 1 + m]])
    return (1.0 + inner - (float(outer.mean()) if len(outer) else 0.0)) / 2.0


def video_proposals(
    centres: np.ndarray,
    hop: float,
    actionness: np.ndarray,
    duration: float,
    params: LocalizeParams,
) -> pd.DataFrame:
    """Proposals of one video from its clips' centre times (``hop`` seconds apart) and their
    actionness (steps 1-4): t_start, t_end, score, first_clip, last_clip, best first."""
    centres = np.asarray(centres, dtype=float)
    values = np.asarray(actionness, dtype=float)
    if params.smoothing > 0 and len(values) > 1:
        values = gaussian_filter1d(values, sigma=params.smoothing / hop, mode="nearest")
    runs = clip_runs(values, params.thresholds)
    columns = SEGMENT_COLUMNS[1:]
    if not runs:
        return pd.DataFrame(columns=columns)
    first = np.array([a for a, _ in runs])
    last = np.array([b for _, b in runs])
    start = np.clip(centres[first] - hop / 2, 0.0, duration)
    end = np.clip(centres[last] + hop / 2, 0.0, duration)
    score = np.array([run_score(values, a, b, params) for a, b in runs])
    keep, kept_score = suppress(
        np.column_stack([start, end]),
        score,
        method=params.nms,
        threshold=params.nms_threshold,
        sigma=params.soft_sigma,
        max_keep=params.max_proposals,
    )
    return pd.DataFrame(
        {
            "t_start": start[keep],
            "t_end": end[keep],
            "score": kept_score,
            "first_clip": first[keep],
            "last_clip": last[keep],
        }
    )


def classify(
    proposals: pd.DataFrame, class_prob: np.ndarray, class_names: list[str], top_k: int
) -> pd.DataFrame:
    """Detections of one video: each proposal x its ``top_k`` classes (step 5).

    ``class_prob``: the video's clips x classes probabilities, in clip order.
    """
    rows = []
    for p in proposals.itertuples(index=False):
        mean = class_prob[int(p.first_clip) : int(p.last_clip) + 1].mean(axis=0)
        best = np.argsort(-mean, kind="stable")[:top_k]
        rows += [(p.t_start, p.t_end, class_names[c], p.score * mean[c]) for c in best]
    return pd.DataFrame(rows, columns=["t_start", "t_end", "label", "score"])


@dataclass(frozen=True)
class Readout:
    """One encoder's read-out on the validation videos.

    ``clips``: per validation clip its video, times, region, ``fg_score`` (the foreground
    probe's probability: the actionness before smoothing) and ``fg_logit``; ``proposals``:
    video_id, t_start, t_end, score; ``detections``: the same plus label.
    """

    clips: pd.DataFrame
    proposals: pd.DataFrame
    detections: pd.DataFrame


def read_out(
    clips: pd.DataFrame,
    actionness: np.ndarray,
    class_prob: np.ndarray,
    class_names: list[str],
    durations: Mapping[str, float],
    params: LocalizeParams,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Proposals and detections of every video of ``clips`` (video_id, clip_index, t_start,
    t_end), given each clip's actionness and class probabilities (rows aligned with clips)."""
    proposals, detections = [], []
    for vid, rows in clips.groupby("video_id", sort=True).indices.items():
        rows = rows[np.argsort(clips["clip_index"].to_numpy()[rows], kind="stable")]
        start, end = clips["t_start"].to_numpy()[rows], clips["t_end"].to_numpy()[rows]
        centres = (start + end) / 2
        hop = float(np.median(np.diff(centres))) if len(rows) > 1 else float(end[0] - start[0])
        props = video_proposals(centres, hop, actionness[rows], float(durations[vid]), params)
        dets = classify(props, class_prob[rows], class_names, params.top_classes)
        proposals.append(props.drop(columns=["first_clip", "last_clip"]).assign(video_id=vid))
        detections.append(dets.assign(video_id=vid))
    order_p = ["video_id", "t_start", "t_end", "score"]
    order_d = ["video_id", "t_start", "t_end", "label", "score"]
    return (
        pd.concat(proposals, ignore_index=True)[order_p],
        pd.concat(detections, ignore_index=True)[order_d],
    )


def read_out_encoder(
    features: Mapping[str, np.ndarray],
    clips: pd.DataFrame,
    segments: pd.DataFrame,
    videos: pd.DataFrame,
    labels: list[str],
    params: LocalizeParams,
    spec: EvaluationSpec,
    *,
    features_source: str = "features",
) -> Readout:
    """Fit both probes on ``spec.train_subset`` and read out ``spec.valid_subset`` (module
    docstring; ``params``: the read-out's choices, ``spec``: the probes' videos, clip rule and
    seed, as the separability probes have them)."""
    data = split_features(features, clips, segments, videos, spec, features_source)
    x_train, train_clips, fg = data.x_train, data.train_clips, data.fg_train
    foreground = fit_foreground_probe(x_train, fg, spec.seed, spec.max_iter)
    actionness = foreground.predict_proba(data.x_valid)[:, 1]
    class_ids = np.unique(train_clips.loc[fg, "label_id"])
    if len(class_ids) < 2:
        raise EvaluationError(
            f"training foreground clips: {len(class_ids)} action class(es); the read-out's "
            "action probe needs at least 2"
        )
    action = make_probe(spec.seed, spec.max_iter).fit(x_train[fg], train_clips.loc[fg, "label_id"])
    class_prob = action.predict_proba(data.x_valid)
    class_names = [labels[int(c)] for c in action.classes_]
    durations = videos.set_index(videos["video_id"].astype(str))["duration"].astype(float)
    valid_clips = data.valid_clips
    proposals, detections = read_out(
        valid_clips, actionness, class_prob, class_names, durations, params
    )
    log.info(
        "%s: %d proposals and %d detections in %d validation videos",
        features_source,
        len(proposals),
        len(detections),
        valid_clips["video_id"].nunique(),
    )
    return Readout(
        valid_clips[["video_id", "clip_index", "t_start", "t_end", "region"]].assign(
            fg_score=actionness, fg_logit=foreground.decision_function(data.x_valid)
        ),
        proposals,
        detections,
    )
