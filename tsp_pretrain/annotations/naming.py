"""One naming rule for every video file, checked when the annotations are built.

The feature files take the video file's stem (``v_abc.mp4`` -> ``v_abc.npy``), and temporal action
localizers find them from the annotation's video id with one prefix for the whole dataset
(ActionFormer's ``file_prefix``, OpenTAD's ``LoadFeats(prefix=...)``): ``<prefix><id>.npy``. A
videos folder where some files carry ``v_`` and others do not therefore gives a feature folder no
localizer can read, which used to surface only at the very end of the pipeline. It is refused
here, before any frame is decoded, with the counts, examples and the renaming that fixes it.

Files whose stem does not end in the video id at all (a ``filename`` column naming them freely)
have no prefix and are not part of this check; ``meta.json`` says so for them
(``file_prefix: null``).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pandas as pd

from .schema import AnnotationError

_EXAMPLES = 3


def file_prefix(video_id: str, filename: str) -> str | None:
    """``p`` with ``stem(filename) == p + video_id``; None when the stem does not end in the id."""
    stem = PurePosixPath(filename).stem
    return stem[: len(stem) - len(video_id)] if stem.endswith(video_id) else None


def check_file_naming(probed: pd.DataFrame, videos_dir: str | Path) -> None:
    """Raise :class:`AnnotationError` when the found files use more than one ``<prefix><id>`` form.

    ``probed`` is :func:`.canonical.probe_videos`'s table (video_id, filename, problem); only the
    videos with a usable file count. The message gives each form's count and a few file names,
    and the renaming that makes all files take the most common form.
    """
    found = probed[probed["problem"] == ""]
    groups: dict[str, list[tuple[str, str]]] = {}
    for video_id, filename in zip(found["video_id"], found["filename"], strict=True):
        prefix = file_prefix(video_id, filename)
        if prefix is not None:
            groups.setdefault(prefix, []).append((video_id, filename))
    if len(groups) < 2:
        return
    # most common form first (ties: by prefix), the one the others are renamed to
    order = sorted(groups, key=lambda p: (-len(groups[p]), p))
    forms = "; ".join(
        f"{len(groups[p])} as {p}<id> (e.g. "
        + ", ".join(sorted(f for _, f in groups[p])[:_EXAMPLES])
        + (", ..." if len(groups[p]) > _EXAMPLES else "")
        + ")"
        for p in order
    )
    target = order[0]
    video_id, filename = sorted(groups[order[1]], key=lambda item: item[1])[0]
    path = PurePosixPath(filename)
    renamed = path.with_name(f"{target}{video_id}{path.suffix}")
    rule = (
        "all or none carry v_"
        if {"v_", ""} >= set(groups)
        else f"all take one form (e.g. {target}<id>)"
    )
    raise AnnotationError(
        f"{videos_dir}: the video files are named in {len(groups)} ways: {forms}. The features "
        "take each file's name, and localizers (ActionFormer's file_prefix, OpenTAD's prefix) "
        "find them as <prefix><video id>.npy with one prefix for every video. Rename the files "
        f"(or the ids in the annotations) so that {rule}, e.g. "
        f"{filename} -> {renamed}, then run `dvc repro` again"
    )
