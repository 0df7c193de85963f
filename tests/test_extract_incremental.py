"""Incremental extraction: a change to the dataset re-extracts only the videos it touches.

Before, the feature folder's identity held the digest of the whole frame-store index, so adding,
removing or renaming one video changed it and every video was extracted again (on ActivityNet,
~20,000 videos for one new file). Now each video's entry records its own frame-store entry
(``features_are_current``). Each scenario runs the pipeline's own steps: decode the changed
dataset into the same store (which re-decodes only what changed), compute the folder identity
as the stage does (``FeatureSpec.identity``), extract into the same folder; then it counts the
clips the encoder saw, checks that the other videos' files were not rewritten (same inode and
mtime) and that the folder is byte for byte the one a fresh extraction writes.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from videos import write_video

from tsp_pretrain.config import ClipSpec
from tsp_pretrain.features import extract as extract_module
from tsp_pretrain.features.extract import extract_dataset, merge_shards
from tsp_pretrain.features.spec import ExtractionRun, FeatureSpec, OutputSpec
from tsp_pretrain.models.encoder import build_encoder
from tsp_pretrain.video.decode import decode_dataset
from tsp_pretrain.video.store import FrameStore, StoreSettings

SOURCE_FRAMES = {"a": 60, "b": 45, "c": 30, "d": 20, "e": 36}  # at 30 fps
CLIP_LEN, STRIDE, FPS = 8, 4, 15
RUN = ExtractionRun(  # features and identity: Dataset.run
    FeatureSpec(ClipSpec(CLIP_LEN, FPS, crop_size=16), STRIDE),
    identity={},
    batch_size=3,
    device=torch.device("cpu"),
    outputs=OutputSpec({"backbone": "r2plus1d_tiny"}, h5=True, fixed_length=5),
    skipped=("skipped_id",),  # annotated, left out by the annotation stage
    progress=False,
)


class CountingEncoder(nn.Module):
    """The tiny encoder, counting the clips it encodes (workers=0: all in this process)."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.inner = build_encoder("r2plus1d_tiny", "none").module
        self.clips = 0

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        self.clips += len(clips)
        return self.inner(clips)


@dataclass
class Dataset:
    """Source videos, their frame store and a feature folder, changed the way users change them."""

    root: Path
    lengths: dict[str, int] = field(default_factory=dict)  # source frames at 30 fps

    @property
    def frames(self) -> Path:
        return self.root / "frames"

    @property
    def out(self) -> Path:
        return self.root / "features"

    def add_source(self, name: str, num_frames: int) -> None:
        write_video(self.source(name), num_frames=num_frames, height=32, width=32)
        self.lengths[name] = num_frames

    def rename_source(self, old: str, new: str) -> None:
        self.source(old).rename(self.source(new))
        self.lengths[new] = self.lengths.pop(old)

    def source(self, name: str) -> Path:
        return self.root / "videos" / f"v_{name}.mp4"

    def table(self, names: list[str]) -> pd.DataFrame:
        """The annotation stage's videos table (what extraction reads)."""
        return pd.DataFrame({"video_id": names, "filename": [f"v_{n}.mp4" for n in names]})

    def decode(self, names: list[str]) -> None:
        """The decode stage on ``names``: it re-decodes only new or changed videos."""
        table = self.table(names).assign(duration=[self.lengths[n] / 30 for n in names])
        sources, settings = self.root / "videos", StoreSettings(FPS, 20, "npy")
        decode_dataset(table, sources, self.frames, settings, progress=False)

    def encoder_file(self, seed: int) -> Path:
        path = self.root / f"encoder-{seed}.pt"
        if not path.is_file():
            torch.save(CountingEncoder(seed).inner.state_dict(), path)
        return path

    def extract(
        self, names: list[str], out: Path | None = None, seed: int = 0, stride: int = STRIDE
    ) -> tuple[dict, int]:
        """One run of the stage's extraction: (counts, clips the encoder saw)."""
        encoder = CountingEncoder(seed)
        counts = extract_dataset(
            encoder,
            FrameStore(self.frames),
            self.table(names),
            self.out if out is None else out,
            self.run(seed, stride),
        )
        return counts, encoder.clips

    def run(self, seed: int = 0, stride: int = STRIDE) -> ExtractionRun:
        """As the stage builds it, its folder identity afresh for every run."""
        features = FeatureSpec(ClipSpec(CLIP_LEN, FPS, crop_size=16), stride)
        return replace(RUN, features=features, identity=features.identity(self.encoder_file(seed)))

    def fresh(self, names: list[str], **kwargs) -> dict[str, bytes]:
        """The folder a fresh extraction of the current store writes, for comparison."""
        fresh = self.root / "fresh"
        shutil.rmtree(fresh, ignore_errors=True)
        self.extract(names, out=fresh, **kwargs)
        return snapshot(fresh)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def stamps(folder: Path) -> dict[str, tuple[int, int]]:
    """Per feature file: (inode, mtime_ns). A rewrite (atomic rename) changes both."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.glob("*.npy")}


def rows(folder: Path, name: str) -> int:
    return len(np.load(folder / f"v_{name}.npy"))


@pytest.fixture
def dataset(tmp_path) -> Dataset:
    """a, b, c decoded and extracted; sources for d and e written, not yet in the dataset."""
    data = Dataset(tmp_path)
    for name, num_frames in SOURCE_FRAMES.items():
        data.add_source(name, num_frames)
    data.decode(["a", "b", "c"])
    counts, _ = data.extract(["a", "b", "c"])
    assert counts == {"extracted": 3, "reused": 0, "missing": 0}
    return data


def test_adding_a_video_extracts_only_that_video(dataset):
    before = stamps(dataset.out)
    dataset.decode(["a", "b", "c", "d"])
    counts, clips = dataset.extract(["a", "b", "c", "d"])
    assert counts == {"extracted": 1, "reused": 3, "missing": 0}
    assert clips == rows(dataset.out, "d")  # the encoder saw d's clips and nothing else
    after = stamps(dataset.out)
    assert {k: after[k] for k in before} == before  # a, b, c untouched
    assert snapshot(dataset.out) == dataset.fresh(["a", "b", "c", "d"])


def test_removing_a_video_removes_exactly_its_files(dataset, caplog):
    before = stamps(dataset.out)
    dataset.decode(["a", "b"])
    with caplog.at_level(logging.INFO, logger=extract_module.__name__):
        counts, clips = dataset.extract(["a", "b"])
    assert counts == {"extracted": 0, "reused": 2, "missing": 0} and clips == 0
    assert stamps(dataset.out) == {k: v for k, v in before.items() if k != "v_c.npy"}
    assert not list(dataset.out.rglob("v_c.*"))  # also gone from resized_5/
    assert snapshot(dataset.out) == dataset.fresh(["a", "b"])
    assert "1 removed (no longer in the dataset: c)" in caplog.text


def test_renaming_a_video_extracts_only_the_new_name(dataset):
    before = stamps(dataset.out)
    dataset.rename_source("c", "cc")
    dataset.decode(["a", "b", "cc"])
    counts, clips = dataset.extract(["a", "b", "cc"])
    assert counts == {"extracted": 1, "reused": 2, "missing": 0}
    assert clips == rows(dataset.out, "cc")
    after = stamps(dataset.out)
    assert "v_c.npy" not in after
    assert {k: after[k] for k in ("v_a.npy", "v_b.npy")} == {
        k: before[k] for k in ("v_a.npy", "v_b.npy")
    }
    assert snapshot(dataset.out) == dataset.fresh(["a", "b", "cc"])


def test_a_re_decoded_video_is_extracted_again_alone(dataset, caplog):
    """The source of b replaced: the decode stage re-decodes b, so b's frame entry changes."""
    before = stamps(dataset.out)
    dataset.add_source("b", num_frames=50)
    dataset.decode(["a", "b", "c"])
    with caplog.at_level(logging.INFO, logger=extract_module.__name__):
        counts, clips = dataset.extract(["a", "b", "c"])
    assert counts == {"extracted": 1, "reused": 2, "missing": 0}
    assert clips == rows(dataset.out, "b") == len(range(0, 25 - CLIP_LEN + 1, STRIDE))
    after = stamps(dataset.out)
    assert after["v_b.npy"] != before["v_b.npy"]
    assert {k: after[k] for k in ("v_a.npy", "v_c.npy")} == {
        k: before[k] for k in ("v_a.npy", "v_c.npy")
    }
    assert "1 video extracted (1 of them again: their frames changed)" in caplog.text
    assert snapshot(dataset.out) == dataset.fresh(["a", "b", "c"])


@pytest.mark.parametrize("change", [{"seed": 1}, {"stride": 8}], ids=["encoder", "stride"])
def test_another_encoder_or_setting_extracts_every_video(dataset, change):
    counts, clips = dataset.extract(["a", "b", "c"], **change)
    assert counts == {"extracted": 3, "reused": 0, "missing": 0}
    assert clips == sum(rows(dataset.out, n) for n in "abc")
    assert snapshot(dataset.out) == dataset.fresh(["a", "b", "c"], **change)


def test_an_interrupted_incremental_run_resumes_where_it_stopped(dataset, monkeypatch):
    dataset.decode(["a", "b", "c", "d", "e"])
    real, calls = extract_module.write_features, []

    def interrupted(path, features):
        calls.append(path.name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real(path, features)

    monkeypatch.setattr(extract_module, "write_features", interrupted)
    with pytest.raises(KeyboardInterrupt):
        dataset.extract(["a", "b", "c", "d", "e"])
    monkeypatch.undo()
    counts, clips = dataset.extract(["a", "b", "c", "d", "e"])
    assert counts == {"extracted": 1, "reused": 4, "missing": 0}
    assert clips == rows(dataset.out, calls[1].removeprefix("v_").removesuffix(".npy"))
    assert snapshot(dataset.out) == dataset.fresh(["a", "b", "c", "d", "e"])


def test_the_log_line_and_meta_json_count_the_same_missing_videos(dataset, caplog):
    dataset.decode(["a", "b", "c"])
    with caplog.at_level(logging.INFO, logger=extract_module.__name__):
        dataset.extract(["a", "b", "c", "gone"])  # gone: annotated, not in the frame store
    meta = json.loads((dataset.out / "meta.json").read_text())
    missing = (dataset.out / "missing_files.txt").read_text().split()
    assert meta["num_missing"] == len(missing) == 2  # gone, skipped_id
    (line,) = [r.getMessage() for r in caplog.records if "without features" in r.getMessage()]
    assert "3 kept unchanged" in line and "{" not in line
    assert (
        "2 videos without features, listed in missing_files.txt and counted in meta.json "
        "(1 not in the frame store, 1 left out by the annotation stage)"
    ) in line


def _shards_then_merge(data: Dataset, names: list[str]) -> int:
    """Both shards of a 2-way split, then the merge; returns the clips encoded in all."""
    clips = 0
    for i in (0, 1):
        encoder = CountingEncoder(0)
        run = replace(data.run(), shard=i, num_shards=2)
        extract_dataset(encoder, FrameStore(data.frames), data.table(names), data.out, run)
        clips += encoder.clips
    merge_shards(data.out, data.table(names), FrameStore(data.frames), replace(run, shard=0))
    return clips


def test_shards_re_extract_only_the_new_video_and_merge_to_the_single_process_folder(tmp_path):
    data = Dataset(tmp_path)
    for name, num_frames in SOURCE_FRAMES.items():
        data.add_source(name, num_frames)
    data.decode(["a", "b", "c", "e"])
    _shards_then_merge(data, ["a", "b", "c", "e"])
    before = stamps(data.out)
    data.decode(["a", "b", "c", "d"])  # d added, e removed
    clips = _shards_then_merge(data, ["a", "b", "c", "d"])
    assert clips == rows(data.out, "d")
    after = stamps(data.out)
    assert {k: after[k] for k in ("v_a.npy", "v_b.npy", "v_c.npy")} == {
        k: before[k] for k in ("v_a.npy", "v_b.npy", "v_c.npy")
    }
    assert "v_e.npy" not in after and not (data.out / ".shards").exists()
    assert snapshot(data.out) == data.fresh(["a", "b", "c", "d"])
