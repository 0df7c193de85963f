"""Plot data and figures: ROC rows for ``dvc plots`` and a timeline PNG of probe scores.

Figures are drawn on a bare :class:`matplotlib.figure.Figure` (rendered by Agg when saved as PNG),
never through ``pyplot``, so nothing depends on a display or on global pyplot state.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import roc_auc_score

from tsp_pretrain.atomic import atomic_path
from tsp_pretrain.evaluation.clip_labels import merge_intervals
from tsp_pretrain.evaluation.errors import EvaluationError
from tsp_pretrain.regions import BACKGROUND, FOREGROUND

DECIMALS = 4


def roc_table(rocs: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Rows ``encoder, fpr, tpr`` for every encoder's ROC (``EncoderEvaluation.roc``), rounded.

    Written as CSV it is a DVC plot with ``x: fpr``, ``y: tpr`` and one line per encoder.
    """
    frames = [roc[["fpr", "tpr"]].assign(encoder=name) for name, roc in rocs.items()]
    if not frames:
        raise EvaluationError("roc_table: no encoder given")
    table = pd.concat(frames, ignore_index=True)[["encoder", "fpr", "tpr"]]
    return table.round({"fpr": DECIMALS, "tpr": DECIMALS})


def timeline_videos(scores: pd.DataFrame, num_videos: int = 4) -> list[str]:
    """The first ``num_videos`` validation videos (by id) that have both regions."""
    regions = scores.groupby("video_id")["region"].agg(lambda r: set(r) >= {FOREGROUND, BACKGROUND})
    return sorted(str(v) for v in regions[regions].index)[:num_videos]


#: Where the segment bars sit below the probability curves (axes y units).
_BAR_TOP, _BAR_STEP = -0.12, 0.12


def plot_timelines(
    scores: Mapping[str, pd.DataFrame],
    segments: pd.DataFrame,
    path: str | Path,
    num_videos: int = 4,
    detections: Mapping[str, pd.DataFrame] | None = None,
) -> list[str]:
    """Draw each encoder's foreground probability over time against ground-truth action spans.

    ``scores`` maps encoder name to a clip table with fg_score, fg_logit and region (e.g.
    ``EncoderEvaluation.scores``). Videos are chosen by :func:`timeline_videos` from the first
    encoder's table; each panel's title gives the within-video AUC per encoder. With
    ``detections`` (encoder name -> video_id, t_start, t_end, label, score), bars below the
    curves show the ground-truth segments and each encoder's top-scored detections, as many
    as the video has true segments (what a localizer would report first). Writes a PNG to
    ``path`` and returns the video ids drawn.
    """
    if not scores:
        raise EvaluationError("plot_timelines: no encoder scores given")
    first = next(iter(scores.values()))
    chosen = timeline_videos(first, num_videos)
    if not chosen:
        raise EvaluationError(
            "plot_timelines: no validation video has both foreground and background"
        )
    rows = 0 if detections is None else 1 + len(detections)
    bottom = _BAR_TOP - _BAR_STEP * rows if rows else -0.03
    fig = Figure(figsize=(10, (2.3 + 0.25 * rows) * len(chosen) + 0.6), layout="constrained")
    axes = fig.subplots(len(chosen), 1, squeeze=False)[:, 0]
    fg_segments = segments[segments["region"] == FOREGROUND]
    for ax, vid in zip(axes, chosen, strict=True):
        _draw_truth_spans(ax, vid, fg_segments)
        aucs = _draw_scores(ax, vid, scores)
        if detections is not None:
            _draw_segment_bars(ax, vid, fg_segments, detections)
        ax.axhline(0.5, color="grey", lw=0.8, ls="--")
        ax.set_ylim(bottom, 1.03)
        ax.set_yticks([0, 0.5, 1])
        ax.set_xlim(0, float(np.max(first.loc[first["video_id"].astype(str) == vid, "t_end"])))
        ax.set_ylabel("P(foreground)")
        ax.set_title(f"{vid}   within-video AUC: " + ", ".join(aucs), fontsize=10, loc="left")
    axes[-1].set_xlabel("time (s)")
    axes[0].legend(loc="upper right", fontsize=8, ncols=len(scores) + 1, framealpha=0.9)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    return chosen


def _draw_truth_spans(ax, vid: str, fg_segments: pd.DataFrame) -> None:
    """Shade the video's ground-truth action time (overlapping segments merged)."""
    spans = fg_segments.loc[fg_segments["video_id"].astype(str) == vid, ["t_start", "t_end"]]
    for i, (start, end) in enumerate(merge_intervals(spans.to_numpy())):
        ax.axvspan(
            start,
            end,
            color="tab:green",
            alpha=0.2,
            lw=0,
            label="ground-truth action" if i == 0 else None,
        )


def _draw_scores(ax, vid: str, scores: Mapping[str, pd.DataFrame]) -> list[str]:
    """Each encoder's foreground probability over the video; ``"<name> <within-video AUC>"``
    per encoder, for the title."""
    aucs = []
    for name, table in scores.items():
        clips = table[table["video_id"].astype(str) == vid].sort_values("clip_index")
        if clips.empty:
            raise EvaluationError(f"plot_timelines: encoder {name!r} has no scores for {vid!r}")
        centre = (clips["t_start"] + clips["t_end"]).to_numpy() / 2
        ax.plot(centre, clips["fg_score"], lw=1.4, label=name)
        auc = roc_auc_score(clips["region"] == FOREGROUND, clips["fg_logit"])
        aucs.append(f"{name} {auc:.2f}")
    return aucs


def _draw_segment_bars(
    ax, vid: str, fg_segments: pd.DataFrame, detections: Mapping[str, pd.DataFrame]
) -> None:
    """Bars under a timeline: true segments, then each encoder's top detections (labelled).

    A detection's segment appears once (its best class); overlapping bars of one lane are
    stacked slightly so that each stays visible.
    """
    truth = fg_segments[fg_segments["video_id"].astype(str) == vid]
    lanes = [("ground truth", truth.assign(score=np.nan), "tab:green")]
    for k, (name, table) in enumerate(detections.items()):
        mine = table[table["video_id"].astype(str) == vid]
        mine = mine.sort_values("score", ascending=False, kind="stable")
        top = mine.drop_duplicates(["t_start", "t_end"]).head(max(1, len(truth)))
        lanes.append((f"{name} top {len(top)}", top, f"C{k}"))
    for lane, (name, table, colour) in enumerate(lanes):
        y = _BAR_TOP - _BAR_STEP * lane
        for j, row in enumerate(table.sort_values("t_start").itertuples(index=False)):
            yj = y - 0.03 * (j % 3)
            ax.plot([row.t_start, row.t_end], [yj, yj], color=colour, lw=3, solid_capstyle="butt")
            text = str(row.label) if np.isnan(row.score) else f"{row.label} {row.score:.2f}"
            ax.text(row.t_start, yj + 0.012, text, fontsize=6, color=colour, va="bottom")
        ax.text(
            -0.005, y, name, fontsize=6, ha="right", va="center", transform=ax.get_yaxis_transform()
        )
