"""Training in several processes (torchrun/DDP, gloo on CPU) and the per-rank clip split."""

from __future__ import annotations

import itertools
import os
import socket
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
import torch.multiprocessing as mp
from torch.utils.data import DataLoader
from videos import write_tiny_store

from tsp_pretrain.config import ClipSpec, OptimParams
from tsp_pretrain.data.sampling import epoch_order, rank_batches
from tsp_pretrain.models.tsp import build_tsp_model
from tsp_pretrain.training import distributed, loop
from tsp_pretrain.training.loop import ClipSource, RunOutputs, train
from tsp_pretrain.video.store import FrameStore

PARAMS = OptimParams(
    epochs=2,
    batch_size=2,
    clips_per_segment=3,
    lr_backbone=0.01,
    lr_heads=0.01,
    warmup_epochs=0.5,
    lr_milestones=(1,),
    device="cpu",
    workers=0,
)
CLIP = ClipSpec(clip_len=4, frame_rate=15, crop_size=16)


# --- the split of an epoch's clips over ranks (pure) -------------------------------------------


# world sizes x clip counts (uneven ones too) x batch sizes; the loop refuses fewer training
# clips than processes, so those pairs are not drawn
@pytest.mark.parametrize(
    ("world_size", "num_clips", "batch_size"),
    [
        (w, n, b)
        for w, n, b in itertools.product([1, 2, 3, 4], [1, 5, 7, 12, 13, 31], [1, 2, 4])
        if n >= w
    ],
)
def test_ranks_cover_each_clip_exactly_once(world_size, num_clips, batch_size):
    order = epoch_order(num_clips, seed=11)
    assert sorted(order.tolist()) == list(range(num_clips))
    for drop_last in (True, False):
        per_rank = [
            rank_batches(
                order, world_size=world_size, rank=r, batch_size=batch_size, drop_last=drop_last
            )
            for r in range(world_size)
        ]
        taken = [int(i) for batches in per_rank for batch in batches for i in batch]
        assert len(taken) == len(set(taken)), "a clip on two ranks"
        left = set(range(num_clips)) - set(taken)
        global_batch = world_size * batch_size
        if not drop_last or num_clips < global_batch:
            assert left == set(), "every clip is used"
        else:
            # the left-out clips are the tail of the order: fewer than one global batch
            assert left == set(order[num_clips - num_clips % global_batch :].tolist())
            assert len({len(b) for b in per_rank}) == 1, "as many steps on every rank"
            assert all(len(b) == batch_size for bs in per_rank for b in bs)
        if num_clips >= world_size:
            assert all(len(b) >= 1 for b in per_rank), "every rank trains"


@pytest.mark.parametrize(("num_clips", "batch_size"), [(18, 4), (16, 4), (3, 4), (37, 16)])
def test_one_process_gets_exactly_the_old_loaders_clips(num_clips, batch_size):
    """World size 1 = the DataLoaders the loop built before (shuffled per (seed, epoch))."""
    seed = 3 * 10_007 + 2
    old_train = DataLoader(
        range(num_clips),
        batch_size=batch_size,
        shuffle=True,
        drop_last=num_clips >= batch_size,
        generator=torch.Generator().manual_seed(seed),
    )
    new = rank_batches(
        epoch_order(num_clips, seed), world_size=1, rank=0, batch_size=batch_size, drop_last=True
    )
    assert [b.tolist() for b in old_train] == [b.tolist() for b in new]
    old_valid = DataLoader(range(num_clips), batch_size=batch_size, shuffle=False)
    new = rank_batches(
        np.arange(num_clips), world_size=1, rank=0, batch_size=batch_size, drop_last=False
    )
    assert [b.tolist() for b in old_valid] == [b.tolist() for b in new]


def test_two_ranks_see_the_global_batches_of_one_process_with_twice_the_batch():
    order = epoch_order(21, seed=5)
    one = rank_batches(order, world_size=1, rank=0, batch_size=4, drop_last=True)
    two = [rank_batches(order, world_size=2, rank=r, batch_size=2, drop_last=True) for r in (0, 1)]
    assert [b.tolist() for b in one] == [a.tolist() + b.tolist() for a, b in zip(*two, strict=True)]


def test_sync_bn_needs_cuda():
    with pytest.raises(ValueError, match="sync_bn"):
        distributed.wrap_model(
            torch.nn.BatchNorm1d(2), distributed.Ranks(0, 2, 0), torch.device("cpu"), sync_bn=True
        )


# --- training in two processes ------------------------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return write_tiny_store(tmp_path_factory.mktemp("store"))


def _segments():
    return pd.DataFrame(
        {
            "video_id": ["a", "a", "a", "b", "b", "b"],
            "t_start": [0.0, 1.0, 2.0] * 2,
            "t_end": [1.0, 2.0, 3.0] * 2,
            "label": ["x", "", "y"] * 2,
            "label_id": [0, -1, 1] * 2,
            "region": ["foreground", "background", "foreground"] * 2,
        }
    )


def _model():
    return build_tsp_model("r2plus1d_tiny", 2, objective="tsp", gvf=False, seed=0)


def _source(frames):
    seg = _segments()
    return ClipSource(FrameStore(frames), seg, seg, CLIP)


def _outputs(run_dir):
    return RunOutputs(run_dir / "ckpt.pt", run_dir / "live", fingerprint="run")


def _setup(model, frames, params, ranks):
    return loop._setup(
        model, _source(frames), params, ranks=ranks, device=torch.device("cpu"), seed=0
    )


def _run(rank, world_size, port, frames, run_dir, params):
    """One rank, as torchrun starts it: the environment names the group."""
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_WORLD_SIZE=str(world_size),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    model = _model()
    metrics = train(model, _source(frames), params, _outputs(run_dir), seed=0)
    # test only: every rank shows its weights (the stages let rank 0 alone write)
    torch.save({"model": model.state_dict(), "metrics": metrics}, run_dir / f"rank{rank}.pt")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(frames, run_dir, params, world_size=2):
    run_dir.mkdir(exist_ok=True)
    args = (world_size, _free_port(), frames, run_dir, params)
    mp.start_processes(_run, args=args, nprocs=world_size, join=True, start_method="fork")
    return [torch.load(run_dir / f"rank{r}.pt") for r in range(world_size)]


def _assert_same(a, b):
    for (name, x), y in zip(a.items(), b.values(), strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0, msg=name)


def test_two_processes_agree_and_resume_to_the_same_weights(store, tmp_path):
    straight = _spawn(store, tmp_path / "straight", PARAMS)
    _assert_same(straight[0]["model"], straight[1]["model"])
    state = torch.load(tmp_path / "straight" / "ckpt.pt", weights_only=False)
    assert state["fingerprint"] == "run@2"  # a 1-process run would not resume it
    _assert_same(state["model"], straight[0]["model"])
    metrics = straight[0]["metrics"]
    # 18 clips per epoch in global batches of 2 x 2: 4 steps, the 2-clip tail left out; the
    # clips are counted over both ranks
    assert metrics["seen/clips"] == 2 * 16 and metrics["seen/steps"] == 2 * 4
    assert metrics == straight[1]["metrics"]
    assert metrics["lr/heads"] == pytest.approx(2 * 0.01 * 0.01)  # x world size, x gamma
    rows = (tmp_path / "straight" / "live" / "plots" / "metrics" / "train" / "loss.tsv").read_text()
    assert len(rows.splitlines()) == 3  # header + one row per epoch: rank 0 alone logs

    # validation is split over the ranks and summed: the same accuracies as one process
    model = _model()
    model.load_state_dict(straight[0]["model"])
    alone = loop.validate(_setup(model, store, PARAMS, distributed.Ranks()))
    for key in ("acc_action", "acc_region"):
        assert metrics[f"valid/{key}"] == pytest.approx(alone[key]), key

    # stopped after epoch 1, then resumed with 2 processes: the uninterrupted weights
    _spawn(store, tmp_path / "resumed", PARAMS.model_copy(update={"epochs": 1}))
    resumed = _spawn(store, tmp_path / "resumed", PARAMS)
    _assert_same(resumed[0]["model"], straight[0]["model"])
    _assert_same(resumed[1]["model"], straight[0]["model"])


def test_learning_rates_scale_with_the_world_size(store):
    for scale, expected in ((True, 4 * 0.01), (False, 0.01)):
        params = PARAMS.model_copy(update={"scale_lr_by_world_size": scale})
        run = _setup(_model(), store, params, distributed.Ranks(0, 4, 0))
        heads = next(g for g in run.optimizer.param_groups if g["name"] == "heads")
        assert heads["initial_lr"] == pytest.approx(expected)


def test_one_loader_whose_workers_persist_and_do_not_change_the_result(
    store, tmp_path, monkeypatch
):
    """One DataLoader for the whole run (workers forked once); with workers each clip's crop is
    seeded from (seed, epoch, rank, position), so 1 or 2 workers train the same weights."""
    built = []

    class Counting(DataLoader):
        def __init__(self, *args, **kwargs):
            built.append(kwargs)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(loop, "DataLoader", Counting)
    weights = []
    for workers in (1, 2):
        model = _model()
        params = PARAMS.model_copy(update={"workers": workers})
        train(model, _source(store), params, _outputs(tmp_path / f"w{workers}"), seed=0)
        weights.append(model.state_dict())
    assert len(built) == 2 and all(k["persistent_workers"] for k in built)
    _assert_same(weights[0], weights[1])


def test_loader_workers_follow_the_machine_by_default(store):
    """``auto`` (the default) asks :func:`tsp_pretrain.runtime.input_workers`, the one rule
    (tests/test_runtime.py): no worker on the CPU."""
    assert OptimParams().workers == "auto"
    auto = PARAMS.model_copy(update={"workers": "auto"})
    assert _setup(_model(), store, auto, distributed.Ranks()).loader.num_workers == 0
    two = PARAMS.model_copy(update={"workers": 2})
    assert _setup(_model(), store, two, distributed.Ranks()).loader.num_workers == 2


def test_launcher_runs_the_script_as_ranks_or_joins_torchrun(tmp_path, monkeypatch):
    script = tmp_path / "rank.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, sys, pathlib
            out = pathlib.Path(sys.argv[1])
            (out / f"rank{os.environ['RANK']}").write_text(os.environ["WORLD_SIZE"])
            """
        )
    )
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert distributed.launch_workers(1, str(script), [str(tmp_path)]) is None
    assert distributed.launch_workers(2, str(script), [str(tmp_path)]) == 0
    assert {p.name: p.read_text() for p in tmp_path.glob("rank*") if p.suffix == ""} == {
        "rank0": "2",
        "rank1": "2",
    }
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert distributed.launch_workers(2, str(script), [str(tmp_path)]) is None  # joins torchrun


def test_more_gpu_processes_than_gpus_fails_naming_the_param():
    from tsp_pretrain.config import ConfigError
    from tsp_pretrain.training.distributed import check_gpu_for_rank

    check_gpu_for_rank(1, 2)  # two GPUs: rank 1 has its own
    with pytest.raises(ConfigError, match=r"needs GPU 1, but it has 1: set -S train.processes=1"):
        check_gpu_for_rank(1, 1)
