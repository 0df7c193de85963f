"""Benchmark: what the CPU numerics contract costs (tsp_pretrain.numerics), measured in one run.

Each measurement runs in a fresh process (the settings take effect when the libraries first
compute): training steps (forward, loss, backward, SGD step) and extraction batches (forward in
inference mode) of an encoder on random clips, once with the library defaults of this machine
and once pinned as every stage runs. Runs alternate (default, pinned, default, pinned, ...) and
the median of ``--repeats`` is kept; the ratio pinned / default is printed per row.

    python bench/numerics.py [--settings demo paper] [--steps 4] [--repeats 3]

``demo``: the demo's r2plus1d_tiny, batch 16 of 16 x 32 x 32; ``paper``: r2plus1d_18, batch 2
of 16 x 112 x 112 (CPU-sized). Both runs use the same thread count (the contract's 2, which is
also this machine's default): on a machine with more cores the defaults would use them all,
and the contract costs that much more.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tsp_pretrain.numerics import SETTINGS as PINNED  # noqa: E402  (imports no numpy/torch)

SETTINGS = {
    "demo": dict(backbone="r2plus1d_tiny", batch=16, size=32),
    "paper": dict(backbone="r2plus1d_18", batch=2, size=112),
}


def worker(setting: str, steps: int, pin: bool) -> None:
    """One process: time ``steps`` training steps and extraction batches; print clips/s."""
    if pin:
        from tsp_pretrain.numerics import pin as pin_numerics

        pin_numerics()
    import time

    import torch

    from tsp_pretrain.models.encoder import build_encoder

    cfg = SETTINGS[setting]
    torch.manual_seed(0)
    model = build_encoder(cfg["backbone"], "none").module
    head = torch.nn.Linear(model_feature_dim(model, cfg), 5)
    opt = torch.optim.SGD([*model.parameters(), *head.parameters()], lr=0.01, momentum=0.9)
    clips = torch.rand(cfg["batch"], 3, 16, cfg["size"], cfg["size"])
    labels = torch.randint(0, 5, (cfg["batch"],))

    def train_step() -> None:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(head(model(clips)), labels).backward()
        opt.step()

    def extract_step() -> None:
        with torch.inference_mode():
            model(clips)

    rates = {}
    for name, step in (("train", train_step), ("extract", extract_step)):
        model.train(name == "train")
        step()  # warm-up: oneDNN compiles its kernels on first use
        start = time.perf_counter()
        for _ in range(steps):
            step()
        rates[name] = steps * cfg["batch"] / (time.perf_counter() - start)
    rates["threads"] = torch.get_num_threads()
    rates["aten"] = torch.backends.cpu.get_cpu_capability()
    print(json.dumps(rates))


def model_feature_dim(model, cfg) -> int:
    import torch

    with torch.no_grad():
        return model.eval()(torch.zeros(1, 3, 16, cfg["size"], cfg["size"])).shape[1]


def measure(setting: str, steps: int, pin: bool) -> dict:
    # the library defaults: none of the contract's variables, even when this process has them
    env = {k: v for k, v in os.environ.items() if k not in PINNED}
    cmd = [sys.executable, __file__, "--worker", setting, "--steps", str(steps)]
    out = subprocess.run(cmd + (["--pin"] if pin else []), env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--settings", nargs="+", default=["demo", "paper"], choices=SETTINGS)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", choices=SETTINGS, help=argparse.SUPPRESS)
    parser.add_argument("--pin", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.steps, args.pin)
        return
    print(f"{'setting':8} {'work':8} {'default clips/s':>16} {'pinned clips/s':>15} {'ratio':>6}")
    for setting in args.settings:
        runs = {False: [], True: []}
        for _ in range(args.repeats):
            for pin in (False, True):
                runs[pin].append(measure(setting, args.steps, pin))
        for work in ("train", "extract"):
            default = statistics.median(r[work] for r in runs[False])
            pinned = statistics.median(r[work] for r in runs[True])
            print(f"{setting:8} {work:8} {default:16.2f} {pinned:15.2f} {pinned / default:6.2f}")
        first = runs[False][0], runs[True][0]
        print(
            f"  ({setting}: default ATen {first[0]['aten']}, {first[0]['threads']} threads; "
            f"pinned ATen {first[1]['aten']}, {first[1]['threads']} threads)"
        )


if __name__ == "__main__":
    main()
