"""One dataset of params.yaml -> its canonical tables and report on disk (stage ``annotations``).

The params decide everything here, once: the :class:`~.build.AnnotationSource` from
``datasets.<name>``, the :class:`~.canonical.AnnotationRules` from the clip length and the
``annotations`` section; files are found through the videos manifest that stage ``videos`` wrote,
and the labels file is checked against that stage's record of it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from tsp_pretrain.config import Params
from tsp_pretrain.video.manifest import VideoIndex, check_file_record, read_manifest

from .build import AnnotationSource, build_annotations, check_annotations
from .canonical import AnnotationRules, write_annotations
from .schema import CanonicalAnnotations
from .summary import format_summary

log = logging.getLogger(__name__)


def annotate_dataset(
    name: str, params: Params, manifest: Path, labels_record: Path, out: Path
) -> CanonicalAnnotations:
    """Build dataset ``name``'s tables, write them to ``out``, log the summary per subset, and
    fail (:class:`~.schema.AnnotationError`) when a subset is unusable.

    The tables are written before the check, so that ``out/report.csv`` explains a failure.
    """
    dataset = params.dataset(name)
    dataset.check_paths(name)
    check_file_record(dataset.labels, labels_record)
    source = AnnotationSource(dataset.format, dataset.annotation_source(), labels=dataset.labels)
    rules = AnnotationRules(
        clip_seconds=params.clip.seconds,
        min_background=params.annotations.min_background,
        duration_tolerance=params.annotations.duration_tolerance,
    )
    locate = VideoIndex(read_manifest(manifest), dataset.videos).locate
    result = build_annotations(
        source, dataset.videos, rules, locate=locate, workers=params.annotations.workers
    )
    write_annotations(result, out)
    assert result.summary is not None  # set by build_annotations
    title = f"annotations@{name}: videos per subset (details: {out}/report.csv)"
    log.info("\n%s", format_summary(result.summary, title))
    check_annotations(
        result,
        max_missing_fraction=params.annotations.max_missing_fraction,
        videos_dir=dataset.videos,
    )
    return result
