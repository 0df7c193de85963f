"""A tiny TSP run for ``tests/test_cpu_numerics.py``: train, extract, fit a probe; print digests.

Run in a fresh process, as a stage runs: the CPU settings take effect when the libraries first
compute, so each emulated machine needs its own process. ``--pin`` applies the project's
numerics contract first (:mod:`tsp_pretrain.numerics`), as every stage does::

    python tests/numerics_workload.py FRAME_STORE [--pin]

Prints one JSON line: SHA-256 digests of the trained weights, the extracted features and the
probe's coefficients, and the kernels in effect.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
if "--pin" in sys.argv:
    from tsp_pretrain.numerics import pin

    pin()

# imported after pin(): the libraries read its settings when they first load or compute
import hashlib
import json
import tempfile

import numpy as np
import torch

from tsp_pretrain.config import ClipSpec, OptimParams
from tsp_pretrain.evaluation.probes import make_probe
from tsp_pretrain.features.extract import iter_features
from tsp_pretrain.features.spec import FeatureSpec
from tsp_pretrain.models.tsp import build_tsp_model
from tsp_pretrain.training.loop import ClipSource, RunOutputs, train
from tsp_pretrain.video.store import FrameStore

sys.path.insert(0, str(Path(__file__).resolve().parent))
from videos import tiny_store_segments


def digest(arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def main() -> None:
    store = FrameStore(Path(sys.argv[1]))
    segments = tiny_store_segments()
    params = OptimParams(
        epochs=1, batch_size=4, clips_per_segment=2, lr_backbone=0.05, lr_heads=0.05,
        warmup_epochs=0, lr_milestones=(), workers=0, device="cpu",
    )  # fmt: skip
    model = build_tsp_model("r2plus1d_tiny", 2, objective="tsp", gvf=False, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        train(
            model,
            ClipSource(
                store, segments, segments, ClipSpec(clip_len=4, frame_rate=15, crop_size=16)
            ),
            params,
            RunOutputs(Path(tmp) / "ckpt.pt", Path(tmp) / "live", fingerprint="numerics"),
            seed=0,
        )
    weights = [v.numpy() for v in model.state_dict().values()]
    features = dict(
        iter_features(
            model.backbone.eval(), store, ["a", "b"],
            FeatureSpec(ClipSpec(clip_len=4, frame_rate=15, crop_size=16), stride=2),
            batch_size=4, device=torch.device("cpu"),
        )
    )  # fmt: skip
    x = np.concatenate([features["a"], features["b"]]).astype(np.float64)
    y = np.arange(len(x)) % 3 == 0
    probe = make_probe(seed=0).fit(x, y)
    print(
        json.dumps(
            {
                "weights": digest(weights),
                "features": digest([features["a"], features["b"]]),
                "probe": digest([probe[-1].coef_, probe.decision_function(x)]),
                "aten": torch.backends.cpu.get_cpu_capability(),
                "threads": torch.get_num_threads(),
            }
        )
    )


if __name__ == "__main__":
    main()
