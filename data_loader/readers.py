"""Video readers behind one interface: `with get_reader(name).open(path) as video: video.read(indices)`.

An open video exposes `num_frames`, `fps` and, from PyAV, `pts_timeline` (what pySlowFast's decoder seeks by);
`read(indices)` returns uint8 RGB frames (N, H, W, 3) for the requested indices in the requested order. Any
failure (missing, empty, truncated or undecodable file, an index past the end) raises `VideoReadError` naming the
file: nothing is padded or skipped silently. All readers return identical frames for the same indices on H.264 mp4
files. Open videos inside the data worker that reads them.
`open_bytes(data, name)` opens a video held in memory (a WebDataset shard member) with decord or PyAV.
"""
import io
import os
from collections import OrderedDict

import numpy as np


class VideoReadError(RuntimeError):
    """A video cannot be opened or the requested frames cannot be decoded."""


def _source(path, data):
    """What the decoders open: the file, or the in-memory bytes of a video named `path`."""
    if data is None:
        _check_file(path)
        return path
    if not len(data):
        raise VideoReadError(f"video is empty: {path}")
    return io.BytesIO(data)


def _check_file(path):
    if not os.path.isfile(path):
        raise VideoReadError(f"video not found: {path}")
    if os.path.getsize(path) == 0:
        raise VideoReadError(f"video is an empty file: {path}")


class _OpenVideo:
    """Common part of an open video: context management and index checks."""

    path, num_frames, fps = "", 0, 0.0
    pts_timeline = None  # PyAV: (first frame's pts, pts ticks per frame) from the stream header

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        pass

    def _check(self, indices):
        indices = np.asarray(indices, dtype=np.int64)
        if indices.ndim != 1 or not indices.size:
            raise ValueError(f"{self.path}: frame indices must be a non-empty 1-D sequence, got shape {indices.shape}")
        if indices.min() < 0 or indices.max() >= self.num_frames:
            raise VideoReadError(f"{self.path}: frame indices {indices.min()}..{indices.max()} outside the "
                                 f"{self.num_frames} frames of the video")
        return indices


class _DecordVideo(_OpenVideo):
    def __init__(self, path, data=None):
        import decord
        source = _source(path, data)
        self.path = path
        try:
            self._vr = decord.VideoReader(source, num_threads=1)
        except Exception as e:  # decord raises its own DECORDError
            raise VideoReadError(f"cannot open video {path}: {e}") from e
        self.num_frames, self.fps = len(self._vr), float(self._vr.get_avg_fps())

    def read(self, indices):
        indices = self._check(indices)
        try:
            return self._vr.get_batch(indices.tolist()).asnumpy()
        except Exception as e:
            raise VideoReadError(f"cannot decode frames of {self.path}: {e}") from e


class _PyAVVideo(_OpenVideo):
    """Seeks to the keyframe before the first wanted frame, then decodes forward and places frames by their
    timestamps: correct on AVI files where decord's random access is not. On streams without B-frames (packets
    in display order: the `prepare reencode` profiles) it decodes only from the keyframe before each wanted frame,
    leaving the GOPs between them undecoded; any stream that turns out reordered is read the sequential way. One reformatter serves every frame of
    the file: `frame.reformat()` builds a new swscale context per call, which made RGB conversion cost 5x more than
    decoding on small frames (same pixels either way)."""

    def __init__(self, path, data=None):
        import av
        from av.video.reformatter import VideoReformatter
        source = _source(path, data)
        self.path, self._rgb = path, VideoReformatter()
        try:
            self._container = av.open(source)
        except Exception as e:  # av.error.InvalidDataError and friends
            raise VideoReadError(f"cannot open video {path}: {e}") from e
        if not self._container.streams.video:
            self.close()
            raise VideoReadError(f"no video stream in {path}")
        stream = self._stream = self._container.streams.video[0]
        self.fps = float(stream.average_rate or stream.guessed_rate or 0)
        n = stream.frames
        if not n and stream.duration and self.fps:
            n = int(round(float(stream.duration * stream.time_base) * self.fps))
        if not n:  # no frame count in the header: count by decoding
            n = sum(1 for _ in self._container.decode(stream))
            self._container.seek(0)
        self.num_frames = int(n)
        self._start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        if stream.duration and stream.frames:
            self.pts_timeline = (int(stream.start_time or 0), float(stream.duration) / stream.frames)

    def close(self):
        self._container.close()

    def read(self, indices):
        indices = self._check(indices)
        wanted = set(indices.tolist())
        try:
            frames = None
            if not self._stream.codec_context.has_b_frames:
                frames = self._read_skipping(sorted(wanted))
            if frames is None:
                frames = self._read_sequential(wanted)
        except Exception as e:  # av.error.*
            raise VideoReadError(f"cannot decode frames of {self.path}: {e}") from e
        missing = sorted(wanted - frames.keys())
        if missing:
            raise VideoReadError(f"{self.path}: frames {missing[:5]}{' ...' if len(missing) > 5 else ''} could not "
                                 "be decoded (truncated or damaged file)")
        return np.stack([frames[i] for i in indices.tolist()])

    def _position(self, pts):
        return int(round((float(pts * self._stream.time_base) - self._start) * self.fps))

    def _seek_before(self, index):
        self._container.seek(int((self._start + index / self.fps) / self._stream.time_base), stream=self._stream,
                             backward=True)

    def _keep(self, frame, position, wanted, frames):
        if position in wanted and position not in frames:
            frames[position] = self._rgb.reformat(frame, format="rgb24").to_ndarray()

    def _read_sequential(self, wanted):
        """Every frame from the keyframe before the first wanted one to the last wanted one."""
        stream, frames, position, last = self._stream, {}, None, max(wanted)
        self._seek_before(min(wanted))
        for frame in self._container.decode(stream):
            if frame.pts is not None:
                position = self._position(frame.pts)
            else:
                position = 0 if position is None else position + 1
            self._keep(frame, position, wanted, frames)
            if position >= last:
                break
        return frames

    def _read_skipping(self, wanted):
        """Demuxes from the keyframe before the first wanted frame and decodes a GOP only from its keyframe up to
        a wanted frame; None when a packet has no timestamp or comes out of display order (reordered frames)."""
        stream, frames, held, feeding, previous = self._stream, {}, [], False, None
        self._seek_before(wanted[0])
        for packet in self._container.demux(stream):
            if packet.pts is None:  # the demuxer's end-of-stream packet (or an untimed one)
                if packet.size:
                    return None
                continue
            if (packet.dts is not None and packet.dts != packet.pts) or (previous is not None and packet.pts <= previous):
                return None
            previous, position = packet.pts, self._position(packet.pts)
            pending = [n for n in wanted if n not in frames]
            if not pending:
                break
            if packet.is_keyframe:  # a new GOP: keep decoding only while the decoder still owes a wanted frame
                held, feeding = [], pending[0] < position
            if not feeding:
                held.append(packet)
                if position < pending[0]:
                    continue
                packets, held, feeding = held, [], True
            else:
                packets = [packet]
            for p in packets:
                for frame in stream.decode(p):
                    self._keep(frame, self._position(frame.pts), wanted, frames)
        if len(frames) < len(wanted):
            for frame in stream.decode(None):  # frames the decoder still holds at the end of the stream
                self._keep(frame, self._position(frame.pts), wanted, frames)
        return frames


class _OpenCVVideo(_OpenVideo):
    """Seeks with CAP_PROP_POS_FRAMES for every frame, as the official loader does."""

    def __init__(self, path):
        import cv2
        _check_file(path)
        self.path, self._cv2 = path, cv2
        self._cap = cv2.VideoCapture(path)
        if not self._cap.isOpened():
            raise VideoReadError(f"cannot open video {path}")
        self.num_frames = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS))

    def close(self):
        self._cap.release()

    def read(self, indices):
        cv2, out = self._cv2, []
        for i in self._check(indices).tolist():
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, i)
            ok, frame = self._cap.read()
            if not ok:
                raise VideoReadError(f"{self.path}: frame {i} could not be decoded (truncated or damaged file)")
            out.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        return np.stack(out)


class _DecodedVideo(_OpenVideo):
    """A video already decoded in memory."""

    def __init__(self, path, frames, fps, pts_timeline=None):
        self.path, self._frames, self.num_frames, self.fps = path, frames, len(frames), fps
        self.pts_timeline = pts_timeline

    def read(self, indices):
        return self._frames[self._check(indices)]


class VideoReader:
    """A named reader; `open(path)` returns an open video (a context manager).

    With `cache_mb` > 0 every video is decoded whole on first use and kept (least recently used first out) up to
    that many megabytes, per process: for corpora small enough to hold decoded (the CPU demo, small downstream
    sets), where decoding would otherwise dominate. Frames are identical to the uncached reader's.
    """

    def __init__(self, name, video_cls, cache_mb=0):
        self.name, self._video_cls = name, video_cls
        self.cache_bytes, self._cache, self._used = int(cache_mb * 2**20), OrderedDict(), 0

    def open(self, path):
        path = str(path)
        return self._cached(path, lambda: self._video_cls(path))

    def open_bytes(self, data, name):
        """The video whose encoded bytes are `data` (a shard member); `name` names it in errors and is its key in
        the cache (the member's key: unique within a corpus)."""
        if self._video_cls is _OpenCVVideo:
            raise ValueError("reader cv2 cannot decode videos held in memory (shards): use decord or pyav")
        name = str(name)
        return self._cached(name, lambda: self._video_cls(name, data))

    def _cached(self, key, open_video):
        if not self.cache_bytes:
            return open_video()
        if key in self._cache:
            self._cache.move_to_end(key)
        else:
            with open_video() as video:
                self._cache[key] = (video.read(np.arange(video.num_frames)), video.fps, video.pts_timeline)
            self._used += self._cache[key][0].nbytes
            while self._used > self.cache_bytes and len(self._cache) > 1:
                self._used -= self._cache.popitem(last=False)[1][0].nbytes
        return _DecodedVideo(key, *self._cache[key])


READERS = {"decord": _DecordVideo, "pyav": _PyAVVideo, "cv2": _OpenCVVideo}


def get_reader(name, cache_mb=0):
    """The reader registered under `name` (the config key `reader`): decord, pyav or cv2; `cache_mb` > 0 keeps
    decoded videos in memory (see VideoReader)."""
    if name not in READERS:
        raise ValueError(f"unknown video reader {name!r}; choose one of {sorted(READERS)}")
    return VideoReader(name, READERS[name], cache_mb)


class ReaderByFile:
    """`reader` "auto" reads AVI files with PyAV (decord returns wrong frames when seeking in MPEG-4 AVI) and
    every other file with decord; any other name reads every file with that reader. `open(path)` as a reader's."""

    def __init__(self, reader="auto"):
        self.avi = get_reader("pyav" if reader == "auto" else reader)
        self.other = get_reader("decord" if reader == "auto" else reader)

    def open(self, path):
        return (self.avi if path.lower().endswith(".avi") else self.other).open(path)
