"""The official sampling rules: transcript windows, frame indices over the span, per-slot kept patches."""
import numpy as np
import pytest

from data_loader.sampling import (SamplingError, sample_keep_indices, sample_transcript_windows,
                                  segment_frame_indices, span_frame_indices)


def test_windows_on_a_long_video_follow_the_official_rule():
    lengths_seen = set()
    for seed in range(200):
        rng = np.random.default_rng(seed)
        w = sample_transcript_windows(60, rng)
        length = round(w.ends[0] - w.starts[0], 9)
        np.testing.assert_allclose(w.ends - w.starts, length)
        np.testing.assert_allclose(w.starts[1:] - w.ends[:-1], 1.0)  # one-second gaps
        assert w.ends[-1] <= 59 + 1e-9
        if w.ends[-1] < 59 - 1e-9:  # not clipped at the end of the video: l seconds exactly
            assert length in (3, 4, 5)
            lengths_seen.add(int(length))
            assert 0 <= w.starts[0] < 60 - (4 * length + 3)  # randint(0, len - segm - 1) + random()
        else:  # clipped: the span ends at video_len - 1 and the windows shrink evenly
            assert 2 < length < 5
    assert lengths_seen == {3, 4, 5}


def test_windows_are_reproducible_from_the_seed():
    a = sample_transcript_windows(100, np.random.default_rng(7))
    b = sample_transcript_windows(100, np.random.default_rng(7))
    np.testing.assert_array_equal(a.starts, b.starts)


def test_short_videos_fall_back_to_the_whole_video():
    w = sample_transcript_windows(12, np.random.default_rng(0), lengths=(5,))  # needs 23 s
    assert w.starts[0] == 0 and w.ends[-1] == pytest.approx(11)
    np.testing.assert_allclose(w.ends - w.starts, (11 - 3) / 4)
    with pytest.raises(SamplingError, match="4s video"):
        sample_transcript_windows(4, np.random.default_rng(0))


def test_random_frame_indices_skip_each_segments_last_frame():
    n = 50
    bounds = np.linspace(0, n, 17).astype(int)
    seen = set()
    for seed in range(300):
        idx = segment_frame_indices(16, n, np.random.default_rng(seed))
        assert np.all(idx >= bounds[:-1]) and np.all(idx <= bounds[1:] - 2)
        seen.update(idx.tolist())
    assert seen == {i for lo, hi in zip(bounds[:-1], bounds[1:]) for i in range(lo, hi - 1)}


def test_uniform_frame_indices_are_segment_middles():
    idx = segment_frame_indices(4, 20, mode="uniform")
    np.testing.assert_array_equal(idx, [(0 + 4) // 2, (5 + 9) // 2, (10 + 14) // 2, (15 + 19) // 2])


def test_too_few_frames_is_an_error_not_a_short_clip():
    with pytest.raises(SamplingError, match="10 frames available, 16 needed"):
        segment_frame_indices(16, 10, np.random.default_rng(0))
    with pytest.raises(SamplingError, match="too few"):
        segment_frame_indices(16, 20, np.random.default_rng(0))  # some segments hold one frame


def test_frames_cover_the_whole_span_gaps_included():
    w = sample_transcript_windows(40, np.random.default_rng(3), lengths=(4,))
    fps = 8.2
    idx = span_frame_indices(w, 16, fps, np.random.default_rng(4))
    first = int(w.starts[0] * fps)
    span = int((w.ends[-1] - w.starts[0]) * fps)
    assert len(idx) == 16 and np.all(np.diff(idx) > 0)
    assert idx[0] >= first and idx[-1] < first + span
    assert idx[-1] - idx[0] > 0.8 * span  # spread over the whole span, not one window


def test_kept_patches_are_drawn_per_slot():
    keep = sample_keep_indices(8, 196, 0.75, np.random.default_rng(0))
    assert keep.shape == (8, 49) and keep.dtype == np.int64
    assert all(len(set(row)) == 49 for row in keep.tolist())
    assert keep.min() >= 0 and keep.max() < 196
    assert len({tuple(sorted(row)) for row in keep.tolist()}) == 8  # independent per slot, not a tube
    assert any(list(row) != sorted(row) for row in keep.tolist())  # unsorted, as the official
    full = sample_keep_indices(2, 196, 0.0, np.random.default_rng(0))
    assert sorted(full[0].tolist()) == list(range(196)) and full[0].tolist() != list(range(196))
    with pytest.raises(ValueError, match="keeps no patch"):
        sample_keep_indices(8, 196, 1.0, np.random.default_rng(0))
