"""Raw annotations in one of the :data:`FORMATS` -> canonical tables, checked against the files.

:func:`build_annotations` runs the steps in order: parse with the format's parser, record the
inputs and :class:`~.canonical.AnnotationRules` in the report, locate and probe every annotated
video's file, refuse ambiguous file naming (:mod:`.naming`), apply the rules of
:mod:`.canonical`, and count what each subset kept (:mod:`.summary`). :func:`check_annotations`
then decides whether the result is usable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from tsp_pretrain.video.manifest import VideoIndex, manifest_frame, scan_videos
from tsp_pretrain.video.probe import probe_video

from .activitynet import parse_activitynet
from .canonical import AnnotationRules, Locate, Probe, canonicalise, probe_videos
from .naming import check_file_naming
from .schema import AnnotationError, CanonicalAnnotations, RawAnnotations
from .summary import check_summary, format_summary, lost_videos, sibling_hint, subset_summary
from .thumos14 import parse_thumos14
from .tsp_csv import parse_tsp_csv

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


@dataclass(frozen=True)
class AnnotationSource:
    """What to parse: ``annotations`` in format ``format`` (a key of :data:`FORMATS`).

    ``annotations`` is the ActivityNet JSON, the THUMOS14 annotation folder, or for ``tsp_csv`` a
    mapping ``{subset: csv}`` (or one CSV plus ``subset``). ``labels`` is an optional explicit
    label map (list, or JSON file of a list).
    """

    format: str
    annotations: Annotations
    subset: str | None = None
    labels: Sequence[str] | str | Path | None = None


def build_annotations(
    source: AnnotationSource,
    videos_dir: str | Path,
    rules: AnnotationRules,
    *,
    locate: Locate | None = None,
    probe: Probe = probe_video,
    workers: int = 4,
    progress: bool = True,
) -> CanonicalAnnotations:
    """Parse ``source`` and check it against the files in ``videos_dir`` under ``rules``.

    Files are found, in subfolders too, by ``locate`` (normally
    ``VideoIndex(manifest, videos_dir).locate`` over the videos manifest of
    :mod:`tsp_pretrain.video.manifest`; None: the folder is scanned). ``probe`` and ``locate`` are
    injectable so that tests and benchmarks can run without video files; ``workers`` threads
    probe. Raises :class:`AnnotationError` for unparsable input; everything else that is wrong
    lands in ``result.report``, and ``result.summary`` counts videos per subset (see
    :func:`check_annotations`). Files named both ``v_<id>`` and ``<id>`` (or with any two
    prefixes) are an :class:`AnnotationError` too (:mod:`.naming`): localizers take one prefix.
    """
    parser = get_parser(source.format)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    raw = _parse(parser, source)
    raw.report.parameters.update(_report_parameters(source, videos_dir, rules))
    if locate is None:
        manifest = manifest_frame(scan_videos(videos_dir, digests=False)[0])
        locate = VideoIndex(manifest, videos_dir).locate
    probed = probe_videos(
        raw.videos, videos_dir, probe=probe, locate=locate, workers=workers, progress=progress
    )
    check_file_naming(probed, videos_dir)
    result = canonicalise(raw, probed, rules)
    result.summary = subset_summary(raw.videos, probed, result.segments)
    result.lost = lost_videos(raw.videos, probed)
    _require_some_video(result, probed, videos_dir)
    return result


def _parse(parser: Parser, source: AnnotationSource) -> RawAnnotations:
    """The parser's output; an input without a single usable video is an error."""
    raw = parser(source.annotations, labels=source.labels, subset=source.subset)
    if raw.videos.empty:
        skipped = {k: v for k, v in raw.report.counts().items() if v}
        raise AnnotationError(
            f"{source.annotations}: no usable videos"
            f"{f' (skipped: {skipped})' if skipped else ''}; "
            f"check that this is the right input for format {source.format!r}"
        )
    return raw


def _report_parameters(
    source: AnnotationSource, videos_dir: str | Path, rules: AnnotationRules
) -> dict[str, Any]:
    """What decided the tables, recorded in report.json (in this order)."""
    annotations = source.annotations
    return {
        "format": source.format,
        "annotations": (
            {k: str(v) for k, v in annotations.items()}
            if isinstance(annotations, Mapping)
            else str(annotations)
        ),
        "subset": source.subset,
        "videos_dir": str(videos_dir),
        "clip_seconds": rules.clip_seconds,
        "min_background": rules.min_background,
        "duration_tolerance": rules.duration_tolerance,
    }


def _require_some_video(
    result: CanonicalAnnotations, probed: pd.DataFrame, videos_dir: str | Path
) -> None:
    """Fail when no annotated video has a readable file: the folder is probably wrong."""
    if not result.videos.empty:
        return
    assert result.summary is not None and result.lost is not None  # set by build_annotations
    problems = probed["problem"].value_counts().to_dict()
    raise AnnotationError(
        f"{videos_dir}: none of the {len(probed)} annotated videos has a readable file "
        f"({problems}){sibling_hint(videos_dir, result.lost)}; check the videos folder\n"
        + format_summary(result.summary, "annotations per subset")
    )


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
