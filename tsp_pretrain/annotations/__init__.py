"""Raw annotation formats -> canonical tables (videos, segments, labels) plus a report.

One entry point, :func:`build_annotations`: parse with the format's parser (:data:`FORMATS`),
probe the video files, then apply the rules of :mod:`.canonical`. :func:`write_annotations` writes
the tables described in docs/architecture.md ("Canonical tables").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from tsp_pretrain.video.manifest import VideoIndex, manifest_frame, scan_videos
from tsp_pretrain.video.probe import probe_video

from .activitynet import parse_activitynet
from .canonical import (
    Locate,
    Probe,
    background_segments,
    canonicalise,
    probe_videos,
    write_annotations,
)
from .naming import check_file_naming
from .schema import ISSUES, AnnotationError, CanonicalAnnotations, RawAnnotations, Report
from .summary import check_summary, format_summary, lost_videos, sibling_hint, subset_summary
from .thumos14 import parse_thumos14
from .tsp_csv import parse_tsp_csv

__all__ = [
    "FORMATS",
    "ISSUES",
    "AnnotationError",
    "CanonicalAnnotations",
    "RawAnnotations",
    "Report",
    "background_segments",
    "build_annotations",
    "canonicalise",
    "check_annotations",
    "check_file_naming",
    "format_summary",
    "get_parser",
    "probe_videos",
    "write_annotations",
]

Parser = Callable[..., RawAnnotations]
Annotations = str | Path | Mapping[str, str | Path]

FORMATS: dict[str, Parser] = {
    "activitynet": parse_activitynet,
    "tsp_csv": parse_tsp_csv,
    "thumos14": parse_thumos14,
}


def get_parser(fmt: str) -> Parser:
    """The parser registered as ``fmt``, or an error listing the valid names."""
    try:
        return FORMATS[fmt]
    except KeyError:
        raise ValueError(
            f"unknown annotation format {fmt!r}; valid formats: {', '.join(sorted(FORMATS))}"
        ) from None


def build_annotations(
    fmt: str,
    annotations: Annotations,
    videos_dir: str | Path,
    *,
    clip_seconds: float,
    min_background: float,
    duration_tolerance: float,
    subset: str | None = None,
    labels: Sequence[str] | str | Path | None = None,
    manifest: pd.DataFrame | None = None,
    probe: Probe = probe_video,
    locate: Locate | None = None,
    workers: int = 4,
    progress: bool = True,
) -> CanonicalAnnotations:
    """Parse ``annotations`` in format ``fmt`` and check them against the files in ``videos_dir``.

    ``annotations`` is the ActivityNet JSON, the THUMOS14 annotation folder, or for ``tsp_csv`` a
    mapping ``{subset: csv}`` (or one CSV plus ``subset``). ``labels`` is an optional explicit
    label map (list, or JSON file of a list). Files are found, in subfolders too, through the
    videos ``manifest`` (:mod:`tsp_pretrain.video.manifest`; the folder is scanned when none is
    given). ``probe`` and ``locate`` are injectable so that tests and benchmarks can run without
    video files. Raises :class:`AnnotationError` for unparsable input; everything else that is
    wrong lands in ``result.report``, and ``result.summary`` counts videos per subset (see
    :func:`check_annotations`). Files named both ``v_<id>`` and ``<id>`` (or with any two
    prefixes) are an :class:`AnnotationError` too (:mod:`.naming`): localizers take one prefix.
    """
    parser = get_parser(fmt)
    if not clip_seconds > 0:
        raise ValueError(f"clip_seconds must be > 0, got {clip_seconds}")
    if not (min_background >= 0 and duration_tolerance >= 0):
        raise ValueError(
            "min_background and duration_tolerance must be >= 0, got "
            f"{min_background} and {duration_tolerance}"
        )
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    raw = parser(annotations, labels=labels, subset=subset)
    if raw.videos.empty:
        skipped = {k: v for k, v in raw.report.counts().items() if v}
        raise AnnotationError(
            f"{annotations}: no usable videos{f' (skipped: {skipped})' if skipped else ''}; "
            f"check that this is the right input for format {fmt!r}"
        )
    raw.report.parameters.update(
        format=fmt,
        annotations=(
            {k: str(v) for k, v in annotations.items()}
            if isinstance(annotations, Mapping)
            else str(annotations)
        ),
        subset=subset,
        videos_dir=str(videos_dir),
        clip_seconds=clip_seconds,
        min_background=min_background,
        duration_tolerance=duration_tolerance,
    )
    if locate is None:
        if manifest is None:
            manifest = manifest_frame(scan_videos(videos_dir, digests=False)[0])
        locate = VideoIndex(manifest, videos_dir).locate
    probed = probe_videos(
        raw.videos, videos_dir, probe=probe, locate=locate, workers=workers, progress=progress
    )
    check_file_naming(probed, videos_dir)
    result = canonicalise(
        raw,
        probed,
        clip_seconds=clip_seconds,
        min_background=min_background,
        duration_tolerance=duration_tolerance,
    )
    result.summary = subset_summary(raw.videos, probed, result.segments)
    result.lost = lost_videos(raw.videos, probed)
    if result.videos.empty:
        problems = probed["problem"].value_counts().to_dict()
        raise AnnotationError(
            f"{videos_dir}: none of the {len(probed)} annotated videos has a readable file "
            f"({problems}){sibling_hint(videos_dir, result.lost)}; check the videos folder\n"
            + format_summary(result.summary, "annotations per subset")
        )
    return result


def check_annotations(
    result: CanonicalAnnotations, *, max_missing_fraction: float, videos_dir: str | Path
) -> None:
    """Fail (:class:`AnnotationError`, naming the likely cause) when a subset is unusable.

    See :func:`.summary.check_summary`: too many videos without a usable file, or a labelled
    subset without foreground segments.
    """
    if result.summary is None or result.lost is None:
        raise ValueError("check_annotations needs the result of build_annotations")
    check_summary(
        result.summary,
        result.lost,
        result.report,
        max_missing_fraction=max_missing_fraction,
        videos_dir=videos_dir,
    )
