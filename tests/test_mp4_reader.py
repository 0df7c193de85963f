"""The mp4 store's reader: frames handed over in YUV and converted in integer arithmetic (within a
bound of swscale's conversion that it replaced, and closer to the encoded frames), one seek per
clip, and a bounded cache of open containers that forked workers do not share."""

from __future__ import annotations

import multiprocessing

import av
import numpy as np
import pytest

from tsp_pretrain.video.colour import frames_to_rgb
from tsp_pretrain.video.store import (
    MP4_KEYINT,
    FrameStore,
    StoredFrames,
    StoredVideo,
    StoreSettings,
    stored_frame_bytes,
    write_index,
    write_mp4,
)


def _textured_frames(count: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Frames that code like footage (smooth colour texture panning, with fine detail and noise)."""
    rng = np.random.default_rng(seed)
    coarse = rng.normal(0, 1, (height // 4 + 12, width // 4 + 12, 3))
    texture = 120 + 40 * np.kron(coarse, np.ones((4, 4, 1)))
    frames = []
    for t in range(count):
        img = texture[t % 8 : t % 8 + height, t % 5 : t % 5 + width]
        img = img + rng.normal(0, 3, img.shape)
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return np.stack(frames)


def _store(
    tmp_path, videos: dict[str, np.ndarray], pix_fmt: str = "yuv420p", keyint: int = MP4_KEYINT
) -> FrameStore:
    size = videos[next(iter(videos))].shape[1:3]
    settings = StoreSettings(
        15, None, "mp4", frame_size=size, mp4_pix_fmt=pix_fmt, mp4_keyint=keyint
    )
    entries = {}
    for name, frames in videos.items():
        path = tmp_path / f"{name}.mp4"
        count, h, w = write_mp4(path, iter(frames), 15, pix_fmt=pix_fmt, keyint=keyint)
        entries[name] = StoredVideo(name, f"{name}.mp4", count, h, w, "src", "d", settings)
    write_index(tmp_path, entries)
    return FrameStore(tmp_path)


def _swscale_rgb(path, height: int, width: int) -> np.ndarray:
    """The frames as the reader converted them before: swscale, frame by frame."""
    with av.open(str(path)) as container:
        return np.stack(
            [f.to_ndarray(format="rgb24")[:height, :width] for f in container.decode(video=0)]
        )


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv444p"])
def test_integer_conversion_is_within_the_documented_bound_of_swscale(tmp_path, pix_fmt):
    frames = _textured_frames(24, 48, 67)  # an odd width: coded padded, cropped off again
    store = _store(tmp_path, {"a": frames}, pix_fmt)
    video = store.open("a")
    ours = np.stack(list(video.iter_frames())).astype(int)
    before = _swscale_rgb(tmp_path / "a.mp4", 48, 67).astype(int)
    assert ours.shape == before.shape == frames.shape
    diff = np.abs(ours - before)
    assert diff.max() <= 3 and diff.mean() <= 1.5  # the bound in tsp_pretrain/video/colour.py
    # and closer to what was encoded; in 4:2:0 swscale's fast path was also biased (darker)
    ours_err, before_err = ours - frames, before - frames
    assert np.abs(ours_err).mean() < np.abs(before_err).mean()
    if pix_fmt == "yuv420p":
        assert before_err.mean() < -0.3 and abs(ours_err.mean()) < 0.3


def test_the_rgb24_store_hands_over_exactly_what_was_stored(tmp_path):
    frames = _textured_frames(10, 32, 40)
    store = _store(tmp_path, {"a": frames}, "rgb24")
    video = store.open("a")
    assert video.layout == "rgb"
    np.testing.assert_array_equal(video.read_array(0, 10), _swscale_rgb(tmp_path / "a.mp4", 32, 40))


def test_clips_equal_the_sequential_frames_and_convert_like_read_array(tmp_path):
    store = _store(tmp_path, {"a": _textured_frames(50, 32, 46)})
    video = store.open("a")
    sequential = np.stack(list(video.iter_stored()))
    for start in (0, 3, 15, 16, 17, 40):
        raw = video.read_stored(start, 16)
        expected = sequential[np.minimum(np.arange(start, start + 16), 49)]
        np.testing.assert_array_equal(raw, expected)
        np.testing.assert_array_equal(
            video.read_array(start, 16), frames_to_rgb(expected, "yuv420p", 32, 46)
        )


def test_open_containers_are_bounded_reused_and_give_the_same_clips(tmp_path):
    videos = {f"v{i}": _textured_frames(40, 32, 40, seed=i) for i in range(4)}
    cached = _store(tmp_path, videos)
    fresh = FrameStore(tmp_path, max_open=0)
    assert cached.containers.size == FrameStore.MAX_OPEN
    cached.containers.size = 2
    rng = np.random.default_rng(0)
    for _ in range(30):
        vid, start = f"v{rng.integers(4)}", int(rng.integers(0, 30))
        np.testing.assert_array_equal(
            cached.open(vid).read_stored(start, 8), fresh.open(vid).read_stored(start, 8)
        )
        assert len(cached.containers) <= 2 and len(fresh.containers) == 0
    kept = list(cached.containers._open.values())
    cached.close()
    assert len(cached.containers) == 0
    for container in kept:  # closed for real
        with pytest.raises(AssertionError, match="not open"):
            container.seek(0)


def test_a_failed_read_closes_its_container_instead_of_keeping_it(tmp_path):
    store = _store(tmp_path, {"a": _textured_frames(20, 32, 40)})
    video = store.open("a")
    video.read_stored(0, 4)
    assert len(store.containers) == 1
    video.entry = StoredVideo(**{**vars(video.entry), "num_frames": 30})  # the index lies
    with pytest.raises(Exception, match=r"expected frames 16\.\.23, decoded 4"):
        video.read_stored(16, 8)
    assert len(store.containers) == 0


def _child_read(store: FrameStore, queue) -> None:
    inherited = len(store.containers._open)
    clip = store.open("a").read_stored(5, 8)
    queue.put((inherited, len(store.containers), clip))


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_a_forked_worker_opens_its_own_containers(tmp_path):
    store = _store(tmp_path, {"a": _textured_frames(30, 32, 40)})
    expected = store.open("a").read_stored(5, 8)
    assert len(store.containers) == 1  # the parent's, inherited by the fork below
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_read, args=(store, queue))
    child.start()
    inherited, after, clip = queue.get(timeout=60)
    child.join(60)
    assert inherited == 1 and after == 1  # the parent's dropped, one of its own
    np.testing.assert_array_equal(clip, expected)
    # the parent's container still reads correctly (its file offset was not moved by the child)
    np.testing.assert_array_equal(store.open("a").read_stored(5, 8), expected)


@pytest.mark.parametrize(
    ("keyint", "keyframes"), [(MP4_KEYINT, [0, 8, 16, 24, 32]), (16, [0, 16, 32])]
)
def test_the_store_is_coded_for_fast_decoding(tmp_path, keyint, keyframes):
    """CAVLC, a keyframe every decode.mp4_keyint frames, no B-frames (docs/performance.md)."""
    store = _store(tmp_path, {"a": _textured_frames(40, 32, 40)}, keyint=keyint)
    with av.open(str(tmp_path / "a.mp4")) as container:
        keys = [p.is_keyframe for p in container.demux(video=0) if p.size]
    assert [i for i, k in enumerate(keys) if k] == keyframes
    data = (tmp_path / "a.mp4").read_bytes()
    assert b"cabac=0" in data and b"bframes=0" in data
    # every clip reads right whatever its position against the keyframes
    sequential = np.stack(list(store.open("a").iter_stored()))
    for start in range(0, 30, 3):
        np.testing.assert_array_equal(
            store.open("a").read_stored(start, 9), sequential[start : start + 9]
        )


def test_the_interval_defaults_to_the_store_default_and_the_estimate_follows_it():
    assert StoreSettings(15, 128, "mp4").mp4_keyint == MP4_KEYINT == 8
    assert StoreSettings(15, 128, "npy", mp4_keyint=8).mp4_keyint is None
    sizes = [stored_frame_bytes(128, 171, "mp4", keyint=k) for k in (4, 8, 16, 32)]
    assert sizes == sorted(sizes, reverse=True)
    assert sizes[1] / sizes[2] == pytest.approx(1.16, abs=0.01)


def test_a_frame_of_an_unexpected_format_is_an_error_naming_the_file(tmp_path):
    store = _store(tmp_path, {"a": _textured_frames(10, 32, 40)})
    video = store.open("a")
    settings = StoreSettings(**{**vars(video.entry.settings), "mp4_pix_fmt": "yuv444p"})
    wrong = StoredFrames(video.path, StoredVideo(**{**vars(video.entry), "settings": settings}))
    with pytest.raises(Exception, match=r"a\.mp4: decodes to yuv420p, the index says yuv444p"):
        wrong.read_stored(0, 4)


def test_extraction_from_the_mp4_store_is_identical_with_any_number_of_workers(tmp_path):
    """Workers decode and crop YUV; the batch is converted where the model runs."""
    import torch

    from tsp_pretrain.config import ClipSpec
    from tsp_pretrain.data.transforms import ClipTransform
    from tsp_pretrain.features.extract import iter_features
    from tsp_pretrain.features.spec import FeatureSpec

    videos = {f"v{i}": _textured_frames(30 + 7 * i, 32, 45, seed=i) for i in range(3)}
    store = _store(tmp_path, videos)
    torch.manual_seed(0)
    encoder = torch.nn.Sequential(
        torch.nn.Conv3d(3, 4, 3), torch.nn.AdaptiveAvgPool3d(1), torch.nn.Flatten()
    ).eval()
    spec = FeatureSpec(ClipSpec(clip_len=8, frame_rate=15, crop_size=16), stride=8)
    kwargs = dict(batch_size=3, device=torch.device("cpu"))
    runs = [
        dict(iter_features(encoder, store, store.video_ids, spec, workers=w, **kwargs))
        for w in (0, 2)
    ]
    assert sorted(runs[0]) == sorted(runs[1]) == ["v0", "v1", "v2"]
    for vid in runs[0]:
        assert runs[0][vid].tobytes() == runs[1][vid].tobytes()
    # window 2 of v1, read as a random clip and transformed on its own
    video, transform = store.open("v1"), ClipTransform(crop_size=16, layout="yuv420p")
    window = transform.window(False, 32, 45)
    clip = torch.from_numpy(transform.crop(video.read_stored(16, 8), window))
    with torch.inference_mode():
        direct = encoder(transform.to_model(clip[None], window[None])).numpy()[0]
    np.testing.assert_allclose(runs[0]["v1"][2], direct, rtol=1e-5, atol=1e-6)
