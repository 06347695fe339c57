"""YT-Temporal: K consecutive ASR transcripts and the frames over their span (16 for TVTS, 12 for TVTSv2).

Reads the official layout unchanged: split files `<meta_dir>/yttemporal_{train,val}.csv` (tab-separated, column
`Name` such as `subset_87/data/<id>.mp4`; `test` reads the val file), videos at `<data_dir>/videos/<Name>`,
annotations at `<data_dir>/videos/<subset>/annotations/<id>.json`, whose DTW alignment is cached beside them by
the preparation command (computed on the fly when the cache is absent).
"""
import os

import numpy as np

from .base import DATASETS, FailSafeDataset, SampleError, member_field, read_bytes, read_split_file, subsample_table
from .readers import get_reader
from .sampling import clip_frame_indices, sample_transcript_windows, span_frame_indices, stride_frame_indices
from .transcripts import alignment_cache_path, load_transcript, transcript_from_data
from .transforms import build_video_transform

FPS_SOURCES = ("official", "stream")
FRAME_SAMPLINGS = ("span", "clip", "stride")


def annotation_path(data_dir, name):
    """`subset_87/data/<id>.mp4` -> `<data_dir>/videos/subset_87/annotations/<id>.json`."""
    subset = name.split("/", 1)[0]
    stem = os.path.splitext(os.path.basename(name))[0]
    return os.path.join(data_dir, "videos", subset, "annotations", stem + ".json")


@DATASETS.register("YTTemporal")
class YTTemporal(FailSafeDataset):
    """Sample dict: `text` (K strings, in temporal order), `label` (K,) = arange(K), `video` (K * num_frames, 3,
    input_res, input_res) float32, `keep_ind` from the masker (default: 75% per tubelet slot, train and val, as
    the official), `name`, `index`.

    Arguments keep the official config names: `num_frames` is frames *per transcript* (4, so 16 in all; TVTSv2: 3);
    `transcript_lengths` the choices of l in seconds and `gap` the seconds between windows; `resize_interpolation`
    "bilinear" (TVTS) or "nearest" (TVTSv2) for the short-side resize. `fps_source`
    "official" estimates fps as frame count / int(duration), biased high as the official; "stream" uses the
    container's frame rate. `min_words` > 0 treats windows with fewer words as failed samples (the official keeps
    empty transcripts: 0). `subsample` < 1 keeps a seeded share of the split (the official ignored it here).
    `decoded_cache_mb` > 0 keeps decoded videos in memory, per worker (small corpora only). `shards`: the manifest
    of a WebDataset copy (`python -m data_loader.prepare shards`) to stream instead of the files; `data_dir` and
    `meta_dir` are then unused.

    CPD on YT-Temporal (`n_trans` 1: one transcript window is the caption): `frame_sampling` "clip" takes CPD's
    clip of `num_frames` frames over `num_frames * clip_stride` frames at 30 fps inside the window (random in
    training, centred otherwise) instead of the official "span" rule, and `augment` "slowfast_jitter" CPD's
    short-side jitter in `jitter_range`, crop, flip and normalisation instead of "official". SimVTP on YT-Temporal:
    `frame_sampling` "stride" (SimVTP's clip, `num_frames` frames `clip_stride` apart, inside the window) and
    `augment` "multiscale_crop".
    """

    default_mask_ratio = 0.75
    member_fields = ("video", "annotation")

    def __init__(self, data_dir=None, split="train", meta_dir="meta_data", reader="decord", num_frames=4, n_trans=4,
                 transcript_lengths=(3, 4, 5), gap=1.0, input_res=224, resize_interpolation="bilinear",
                 fps_source="official", min_words=0, subsample=1, decoded_cache_mb=0, frame_sampling="span",
                 clip_stride=4, augment="official", jitter_range=(256, 340), shards=None, loading="lax", seed=0,
                 masker=None):
        super().__init__(split, loading, seed, masker)
        if fps_source not in FPS_SOURCES:
            raise ValueError(f"fps_source must be one of {FPS_SOURCES}, got {fps_source!r}")
        if frame_sampling not in FRAME_SAMPLINGS:
            raise ValueError(f"frame_sampling must be one of {FRAME_SAMPLINGS}, got {frame_sampling!r}")
        self.frame_sampling, self.clip_stride = frame_sampling, clip_stride
        self.data_dir = data_dir
        self.use_source(data_dir, shards)
        if shards is None:
            split_file = os.path.join(meta_dir, f"yttemporal_{'train' if split == 'train' else 'val'}.csv")
            table = subsample_table(read_split_file(split_file, columns=["Name"]), subsample, seed)
            self._names = [str(n) for n in table["Name"]]
        else:
            self._names = []
        self.reader = get_reader(reader, decoded_cache_mb)
        self.n_trans, self.total_frames = n_trans, num_frames * n_trans
        self.transcript_lengths, self.gap = tuple(transcript_lengths), gap
        self.transform = build_video_transform(augment, input_res, self.train, resize_interpolation, jitter_range)
        self.fps_source, self.min_words = fps_source, min_words

    @property
    def num_video_frames(self):
        return self.total_frames

    @property
    def texts_per_sample(self):
        return self.n_trans

    def member_files(self, index):
        name = self._names[index]
        annotation = annotation_path(self.data_dir, name)
        files = {"annotation.json": read_bytes(annotation), member_field(name): read_bytes(self._video_path(name))}
        cache = alignment_cache_path(annotation)
        if cache.is_file():
            files["aligned.json"] = cache.read_bytes()
        return files

    def _video_path(self, name):
        return os.path.join(self.data_dir, "videos", name)

    def _load(self, index, rng, member=None):
        if member is None:
            name = self._names[index]
            transcript, duration = load_transcript(annotation_path(self.data_dir, name))
        else:
            name = member["name"]
            transcript, duration = transcript_from_data(member["annotation"], member.get("alignment"),
                                                        f"{name} in {member['url']}")
        video_len = int(duration)
        windows = sample_transcript_windows(video_len, rng, self.n_trans, self.transcript_lengths, self.gap)
        texts = [transcript.text_between(s, e) for s, e in zip(windows.starts, windows.ends)]
        if self.min_words and min(len(t.split()) for t in texts) < self.min_words:
            raise SampleError("empty_transcript", f"{name}: a transcript window holds fewer than {self.min_words} "
                                                  "words")
        with (self.reader.open(self._video_path(name)) if member is None else
              self.reader.open_bytes(member["video"], f"{name} in {member['url']}")) as video:
            if self.fps_source == "official":
                if video_len < 1:
                    raise SampleError("too_short", f"{name}: duration {duration}s is under one second")
                fps = video.num_frames / video_len
            else:
                fps = video.fps
            frames = video.read(self._frame_indices(windows, fps, video.num_frames, rng))
        return {
            "text": texts,
            "label": np.arange(self.n_trans, dtype=np.int64),
            "video": self.transform(frames, rng),
            "name": name,
            "index": index,
        }

    def _frame_indices(self, windows, fps, num_available, rng):
        if self.frame_sampling == "span":
            return span_frame_indices(windows, self.total_frames, fps, rng)
        first, last = windows.span
        lo = max(int(first * fps), 0)
        available = min(int((last - first) * fps), num_available - lo)
        if self.frame_sampling == "stride":
            return lo + stride_frame_indices(available, self.total_frames, self.clip_stride, rng)
        return lo + clip_frame_indices(available, fps, self.total_frames, self.clip_stride, rng,
                                       mode="rand" if self.train else "center")
