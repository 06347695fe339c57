"""Video readers: identical frames across decord, PyAV and OpenCV, the right frames, and named failures."""
import numpy as np
import pytest

from data_loader.readers import VideoReadError, get_reader

from media import frame_index, write_indexed_video

N_FRAMES, FPS = 40, 8


@pytest.fixture(scope="module")
def mp4(tmp_path_factory):
    return write_indexed_video(tmp_path_factory.mktemp("videos") / "clip.mp4")


@pytest.mark.parametrize("name", ["decord", "pyav", "cv2"])
def test_each_reader_returns_the_requested_frames_in_order(mp4, name):
    indices = [31, 3, 3, 17, 0, 39, 8]
    with get_reader(name).open(mp4) as video:
        assert video.num_frames == N_FRAMES and video.fps == pytest.approx(FPS)
        frames = video.read(indices)
    assert frames.shape == (len(indices), 48, 64, 3) and frames.dtype == np.uint8
    assert [frame_index(f) for f in frames] == indices


def test_readers_agree_exactly_on_h264(mp4):
    indices = np.array([0, 5, 9, 16, 23, 30, 38, 39])
    results = {}
    for name in ("decord", "pyav", "cv2"):
        with get_reader(name).open(mp4) as video:
            results[name] = video.read(indices)
    np.testing.assert_array_equal(results["decord"], results["pyav"])
    np.testing.assert_array_equal(results["decord"], results["cv2"])


@pytest.mark.parametrize("name", ["decord", "pyav", "cv2"])
def test_failures_are_errors_that_name_the_file(tmp_path, mp4, name):
    reader = get_reader(name)
    with pytest.raises(VideoReadError, match="not found.*missing.mp4"):
        reader.open(tmp_path / "missing.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoReadError, match="empty file.*empty.mp4"):
        reader.open(tmp_path / "empty.mp4")
    (tmp_path / "garbage.mp4").write_bytes(b"not a video at all" * 100)
    with pytest.raises(VideoReadError, match="garbage.mp4"):
        reader.open(tmp_path / "garbage.mp4").read([0])
    with reader.open(mp4) as video, pytest.raises(VideoReadError, match="outside the 40 frames"):
        video.read([0, 40])


@pytest.mark.parametrize("name", ["decord", "pyav", "cv2"])
def test_truncated_file_never_yields_made_up_frames(tmp_path, mp4, name):
    data = mp4.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    try:
        with get_reader(name).open(cut) as video:
            frames = video.read(list(range(0, video.num_frames, 3)))
    except VideoReadError as e:
        assert "cut.mp4" in str(e)
    else:  # a reader that can still decode part of the file must return the true frames
        assert [frame_index(f) for f in frames] == list(range(0, len(frames) * 3, 3))


def test_pyav_is_right_on_mpeg4_avi(tmp_path):
    avi = write_indexed_video(tmp_path / "clip.avi", codec="mpeg4", container="avi")
    indices = [33, 2, 20, 7]
    with get_reader("pyav").open(avi) as video:
        assert [frame_index(f) for f in video.read(indices)] == indices


@pytest.mark.parametrize("gop", [1, 3, 8])
def test_pyav_skips_the_gops_between_wanted_frames_without_b_frames_and_returns_the_same_frames(tmp_path, gop,
                                                                                               monkeypatch):
    """On a stream in display order (what `prepare reencode` writes) PyAV decodes only from the keyframe before each
    wanted frame: the frames equal decord's and their own indices, the sequential path is never taken, and fewer
    frames are decoded than the sequential path decodes."""
    clip = write_indexed_video(tmp_path / f"g{gop}.mp4", n=120, options={"g": str(gop), "bf": "0"})
    rng = np.random.default_rng(gop)
    draws = [np.sort(rng.choice(120, 8, replace=False)) for _ in range(5)] + [[119, 3, 3, 64, 0, 65], [57]]
    import data_loader.readers as readers
    decoded = []
    original_keep = readers._PyAVVideo._keep

    def counting_keep(self, frame, position, wanted, frames):
        decoded.append(position)
        return original_keep(self, frame, position, wanted, frames)

    with get_reader("pyav").open(clip) as video, get_reader("decord").open(clip) as reference:
        assert not video._stream.codec_context.has_b_frames
        monkeypatch.setattr(readers._PyAVVideo, "_keep", counting_keep)
        monkeypatch.setattr(readers._PyAVVideo, "_read_sequential",
                            lambda self, wanted: pytest.fail("read sequentially"))
        for indices in draws:
            frames = video.read(indices)
            assert [frame_index(f) for f in frames] == list(indices)
            np.testing.assert_array_equal(frames, reference.read(indices))
        decoded.clear()
        video.read([5, 60, 115])
    # each wanted frame costs at most the frames since its keyframe; the sequential path would decode 5..115
    assert len(decoded) <= 3 * gop and set(decoded) >= {5, 60, 115}


def test_pyav_reads_reordered_streams_sequentially(mp4):
    """The default x264 clip has B-frames: its packets come out of display order, so skipping GOPs is refused
    (None) and the reader decodes forward from the first wanted frame's keyframe."""
    with get_reader("pyav").open(mp4) as video:
        assert video._stream.codec_context.has_b_frames
        assert video._read_skipping([3, 20, 33]) is None
        assert [frame_index(f) for f in video.read([33, 3, 20])] == [33, 3, 20]


def test_unknown_reader_is_named():
    with pytest.raises(ValueError, match="pims"):
        get_reader("pims")


def test_decoded_cache_returns_the_same_frames_and_evicts(tmp_path, mp4):
    second = write_indexed_video(tmp_path / "second.mp4", n=20)
    plain, cached = get_reader("pyav"), get_reader("pyav", cache_mb=0.2)  # room for one 40-frame 64x48 video
    indices = [5, 0, 39, 12]
    with plain.open(mp4) as a, cached.open(mp4) as b:
        np.testing.assert_array_equal(a.read(indices), b.read(indices))
        assert (b.num_frames, b.fps) == (a.num_frames, a.fps)
    assert list(cached._cache) == [str(mp4)]
    with cached.open(second) as c:
        assert [frame_index(f) for f in c.read([19, 3])] == [19, 3]
    assert list(cached._cache) == [str(second)]  # the older video was evicted to stay under the cap
    with cached.open(mp4) as b, pytest.raises(VideoReadError, match="outside"):
        b.read([40])


def test_shard_members_are_cached_by_their_name(mp4):
    """A shard member is decoded once and then served from memory under its name (what makes a sharded demo
    corpus as fast as its files after the first epoch); uncached, its bytes are decoded every time."""
    data = mp4.read_bytes()
    cached = get_reader("pyav", cache_mb=1)
    with cached.open_bytes(data, "clip in shard-0.tar") as video:
        first = video.read([5, 0, 39])
    assert [frame_index(f) for f in first] == [5, 0, 39] and list(cached._cache) == ["clip in shard-0.tar"]
    with cached.open_bytes(b"never decoded", "clip in shard-0.tar") as video:  # served from the cache
        np.testing.assert_array_equal(video.read([5, 0, 39]), first)
    with pytest.raises(VideoReadError, match="other in shard-0.tar"):
        get_reader("pyav").open_bytes(b"never decoded", "other in shard-0.tar").read([0])
