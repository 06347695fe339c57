"""The official sampling rules: K consecutive transcript windows, frames over their span, kept patches per slot.

Every function takes a `numpy.random.Generator`, so a sample is reproducible from its seed (the official code drew
from the unseeded global `random`/`np.random` state in each worker).
"""
from dataclasses import dataclass

import numpy as np


class SamplingError(ValueError):
    """The video is too short (or the span too small) for the requested windows or frames."""


class FrameRateError(SamplingError):
    """The video reports no usable frame rate, which a clip measured in seconds needs."""


@dataclass
class Windows:
    starts: np.ndarray  # (K,) seconds
    ends: np.ndarray  # (K,) seconds

    @property
    def span(self):
        return float(self.starts[0]), float(self.ends[-1])


def sample_transcript_windows(video_len, rng, n_trans=4, lengths=(3, 4, 5), gap=1.0):
    """K windows of l seconds (l drawn from `lengths`) with `gap` seconds between them, at a random start.

    `video_len` is the integer duration the official code uses (`int(info.duration)`). A video shorter than the
    full span falls back to the official window [0, video_len - 1], shared out evenly; a span too short to hold
    the gaps is a SamplingError.
    """
    length = lengths[rng.integers(len(lengths))]
    segm_length = n_trans * length + (n_trans - 1) * gap
    high = int(video_len - segm_length - 1)
    if high >= 0:
        start = int(rng.integers(0, high + 1)) + float(rng.random())
        end = min(video_len - 1, start + segm_length)
    else:
        start, end = 0.0, float(video_len - 1)
    clip_len = (end - start - (n_trans - 1) * gap) / n_trans
    if clip_len <= 0:
        raise SamplingError(f"a {video_len}s video cannot hold {n_trans} transcript windows with {gap}s gaps")
    starts = start + np.arange(n_trans) * (clip_len + gap)
    return Windows(starts=starts, ends=starts + clip_len)


def segment_frame_indices(num_frames, num_available, rng=None, mode="rand"):
    """One frame from each of `num_frames` equal segments of `range(num_available)` (Frozen-in-Time's rule).

    `rand` picks uniformly in each segment except its last frame (official quirk); `uniform` picks the middle.
    Fewer available frames than requested is a SamplingError (the official code then produced a black clip).
    """
    if num_available < num_frames:
        raise SamplingError(f"{num_available} frames available, {num_frames} needed")
    bounds = np.linspace(0, num_available, num_frames + 1).astype(int)
    lo, hi = bounds[:-1], bounds[1:] - 1
    if mode == "uniform":
        return (lo + hi) // 2
    if mode != "rand":
        raise ValueError(f"frame sampling mode must be 'rand' or 'uniform', got {mode!r}")
    if np.any(hi <= lo):
        raise SamplingError(f"{num_available} frames are too few for {num_frames} segments of two or more frames")
    return lo + (rng.random(num_frames) * (hi - lo)).astype(int)


def span_frame_indices(windows, num_frames, fps, rng):
    """Absolute frame indices spread over the whole span of the windows, gaps included (official rule)."""
    first, last = windows.span
    offsets = segment_frame_indices(num_frames, int((last - first) * fps), rng)
    return max(int(first * fps), 0) + offsets


def clip_frame_indices(num_available, fps, num_frames, stride, rng, target_fps=30, mode="rand", view=(0, 1),
                       pts_timeline=None):
    """CPD's clip (pySlowFast's decoder): `num_frames` frames spread over `num_frames * stride` frames of a
    `target_fps` timeline, i.e. `num_frames * stride * fps / target_fps` source frames.

    The clip starts at a uniform random time in the video (`mode` "rand"), at the middle of the range ("center"),
    or, for test view `view = (i, n)` ("uniform"), at i / n of the range (pySlowFast's rule: the last of n views
    does not reach the end); decoding starts at the first frame at or after it, and the frames are
    floor(linspace(0, clip - 1, num_frames)) from there, clamped to the last frame (a video shorter than the clip
    repeats its last frame, as the official). With `pts_timeline` = (first pts, pts ticks per frame) the first
    frame is pySlowFast's exactly: the first whose pts reaches int(start * ticks per frame) (for AVI, one tick a
    frame: floor(start))."""
    if num_available < 1:
        raise SamplingError("the video has no frames")
    if not fps > 0:
        raise FrameRateError(f"the video reports a frame rate of {fps}: the clip length needs a positive one")
    clip = stride * num_frames * fps / target_fps
    delta = max(num_available - clip, 0.0)
    if mode == "rand":
        start = rng.uniform(0, delta)
    elif mode == "center":
        start = delta / 2
    elif mode == "uniform":
        index, count = view
        if not 0 <= index < count:
            raise ValueError(f"clip view {index} of {count} is out of range")
        start = delta * index / count
    else:
        raise ValueError(f"clip sampling mode must be 'rand', 'center' or 'uniform', got {mode!r}")
    offsets = np.floor(np.linspace(0, clip - 1, num_frames)).astype(np.int64)
    if pts_timeline is None:
        first = int(np.ceil(start))
    else:
        first_pts, ticks = pts_timeline
        first = max(int(np.ceil((int(start * ticks) - first_pts) / ticks)), 0)
    return np.minimum(first + offsets, num_available - 1)


def stride_frame_indices(num_available, num_frames, stride, rng):
    """SimVTP's clip (VideoMAE's loader, one segment, no jitter): `num_frames` frames `stride` apart from a start
    drawn uniformly in [0, num_available - num_frames * stride]. A video shorter than that window starts at 0, and
    the index stops advancing once a step would reach the last frame (`num_available - 1`), repeating the frame it
    reached, as the official does."""
    if num_available < 1:
        raise SamplingError("the video has no frames")
    window = num_frames * stride
    start = int(rng.integers(num_available - window + 1)) if num_available >= window else 0
    indices, frame = [], start
    for _ in range(num_frames):
        indices.append(frame)
        if frame + stride < num_available - 1:
            frame += stride
    return np.asarray(indices, dtype=np.int64)


def sample_keep_indices(n_slots, patches_per_slot, mask_ratio, rng):
    """(n_slots, n_keep) kept patch indices, drawn independently per tubelet slot and left unsorted (official)."""
    n_keep = int(patches_per_slot * (1 - mask_ratio))
    if n_keep < 1:
        raise ValueError(f"mask_ratio={mask_ratio} keeps no patch of {patches_per_slot}")
    return np.stack([rng.permutation(patches_per_slot)[:n_keep] for _ in range(n_slots)]).astype(np.int64)
