"""Raw annotation formats -> canonical tables (videos, segments, labels) plus a report.

One entry point, :func:`build_annotations` (:mod:`.build`): parse with the format's parser
(:data:`FORMATS`), probe the video files, then apply the rules of :mod:`.canonical`
(:class:`AnnotationRules`). :func:`write_annotations` writes the tables described in
docs/architecture.md ("Canonical tables"); :mod:`.dataset` does all of it for one dataset of
params.yaml (stage ``annotations``).
"""

from __future__ import annotations

from .activitynet import parse_activitynet
from .build import (
    FORMATS,
    AnnotationSource,
    build_annotations,
    check_annotations,
    get_parser,
)
from .canonical import (
    AnnotationRules,
    background_segments,
    canonicalise,
    probe_videos,
    write_annotations,
)
from .naming import check_file_naming
from .schema import ISSUES, AnnotationError, CanonicalAnnotations, RawAnnotations, Report
from .summary import format_summary
from .thumos14 import parse_thumos14
from .tsp_csv import parse_tsp_csv

__all__ = [
    "FORMATS",
    "ISSUES",
    "AnnotationError",
    "AnnotationRules",
    "AnnotationSource",
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
    "parse_activitynet",
    "parse_thumos14",
    "parse_tsp_csv",
    "probe_videos",
    "write_annotations",
]
