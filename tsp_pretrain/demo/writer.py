"""Writing demo videos as H.264 mp4 files and their annotations as ActivityNet v1.3 JSON.

The files are deliberately ordinary: the rest of the pipeline must treat the demo exactly like a
downloaded dataset (probe, decode, resample), so that the demo tests the real code path.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import av
import numpy as np

from .plan import VideoPlan

CRF = 18
"""Near-lossless for this content; the motion signal survives encoding."""
X264_PRESET = "veryfast"
X264_PARAMS = "threads=1"
"""One encoder thread: x264 output may depend on the thread count, and the demo must give the same
pixels on every machine. Parallelism comes from encoding several videos at once instead."""


def write_mp4(path: Path, chunks: Iterable[np.ndarray], fps: int) -> int:
    """Encode uint8 RGB frame chunks (t, H, W, 3) to ``path`` (libx264, yuv420p); returns the number
    of frames written. Raises ``ValueError`` naming the file for odd frame sizes."""
    count = 0
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(CRF), "preset": X264_PRESET, "x264-params": X264_PARAMS}
        for chunk in chunks:
            if count == 0:
                height, width = chunk.shape[1:3]
                if height % 2 or width % 2:
                    raise ValueError(
                        f"{path}: yuv420p needs even frame sizes, got {width}x{height}"
                    )
                stream.width, stream.height = width, height
            for frame in chunk:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
                count += 1
        container.mux(stream.encode())
    return count


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


def write_json(path: Path, document: dict, indent: int | None = None) -> None:
    """Write ``document`` with sorted keys, so that equal content gives equal bytes (compact by
    default, as the ``.min.json`` name of ActivityNet's file promises)."""
    with path.open("w") as f:
        json.dump(document, f, indent=indent, sort_keys=True)
        f.write("\n")
