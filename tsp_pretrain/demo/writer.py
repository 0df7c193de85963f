"""Writing demo videos as H.264 mp4 files and their annotations as ActivityNet v1.3 JSON.

The files are deliberately ordinary: the rest of the pipeline must treat the demo exactly like a
downloaded dataset (probe, decode, resample), so that the demo tests the real code path.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from tsp_pretrain.video.encode import write_h264, x264_options

from .plan import VideoPlan

CRF = 18
"""Near-lossless for this content; the motion signal survives encoding."""


def write_mp4(path: Path, chunks: Iterable[np.ndarray], fps: int) -> int:
    """Encode uint8 RGB frame chunks (t, H, W, 3) to ``path`` with x264's default GOP, as an
    ordinary downloaded file would be, byte-identically on every run (``video.encode``); returns
    the number of frames written."""
    return write_h264(path, chunks, fps, x264_options(CRF))[0]


def taxonomy(classes: Sequence[str]) -> list[dict]:
    """ActivityNet-style taxonomy: a root node with every class as a leaf under it."""
    nodes: list[dict] = [{"nodeId": 0, "nodeName": "Root", "parentId": None, "parentName": None}]
    for i, name in enumerate(classes, start=1):
        nodes.append({"nodeId": i, "nodeName": name, "parentId": 0, "parentName": "Root"})
    return nodes


def activitynet_json(plans: Sequence[VideoPlan], classes: Sequence[str], size: int) -> dict:
    """The ActivityNet v1.3 document for ``plans`` (times in seconds, 2 decimals)."""
    database = {
        plan.video_id: {
            "duration": plan.duration,
            "subset": plan.subset,
            "resolution": f"{size}x{size}",
            "url": "",
            "annotations": [
                {"segment": [round(s.start, 2), round(s.end, 2)], "label": classes[s.label_id]}
                for s in plan.segments
            ],
        }
        for plan in plans
    }
    return {"version": "VERSION 1.3", "taxonomy": taxonomy(classes), "database": database}
