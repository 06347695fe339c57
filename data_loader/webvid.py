"""WebVid: one caption and 4 frames per video (TVTS stage 2; TVTSv2: 12 frames), all patches kept by default.

Official layout: `<meta_dir>/webvid_{train,val}.tsv` (tab-separated with a header; column 0 the caption,
column 1 the video path without `.mp4`), videos at `<data_dir>/<train|val>/<path>.mp4`. Validation uses the
1,000 rows drawn with `random_state=0`, as the official.
"""
import os

import numpy as np

from .base import DATASETS, FailSafeDataset, read_bytes, read_split_file, subsample_table
from .readers import get_reader
from .sampling import clip_frame_indices, segment_frame_indices, stride_frame_indices
from .transforms import build_video_transform

VAL_ROWS = 1000


def caption_table(meta_dir, prefix, split, subsample, seed):
    """The official caption tables, val down-sampled to 1,000 rows (random_state=0), then `subsample`d."""
    table = read_split_file(os.path.join(meta_dir, f"{prefix}_{'train' if split == 'train' else 'val'}.tsv"))
    if split != "train" and len(table) > VAL_ROWS:
        table = table.sample(VAL_ROWS, random_state=0)
    return subsample_table(table, subsample, seed)


def caption_rows(meta_dir, prefix, split, subsample, seed):
    """(captions, file names) of `caption_table`: its columns 0 and 1 as strings."""
    table = caption_table(meta_dir, prefix, split, subsample, seed)
    return [str(c) for c in table.iloc[:, 0]], [str(p) for p in table.iloc[:, 1]]


@DATASETS.register("WebVid")
class WebVid(FailSafeDataset):
    """Sample dict: `text` [caption], `label` (1,), `video` (num_frames, 3, res, res), `keep_ind` from the masker
    (default: every patch, in shuffled order). Frames: one per equal segment, random in train and val, the
    segment middle for test (official). CPD on WebVid: `frame_sampling` "clip" (CPD's clip of `num_frames` frames
    over `num_frames * clip_stride` frames at 30 fps; random in training, centred otherwise) and `augment`
    "slowfast_jitter" (see `data_loader.yttemporal.YTTemporal`). SimVTP: `frame_sampling` "stride" (`num_frames` frames
    `clip_stride` apart from a random start, in every split: the official has no evaluation clip rule) and `augment`
    "multiscale_crop". `shards`: a WebDataset copy's manifest to stream
    instead of the files (ours, or video2dataset's output described by one)."""

    default_mask_ratio = 0.0
    texts_per_sample = 1
    member_fields = ("video", "caption")

    def __init__(self, data_dir=None, split="train", meta_dir="meta_data", reader="decord", num_frames=4, input_res=224,
                 resize_interpolation="bilinear", subsample=1, decoded_cache_mb=0, frame_sampling="segments",
                 clip_stride=4, augment="official", jitter_range=(256, 340), shards=None, loading="lax", seed=0,
                 masker=None):
        super().__init__(split, loading, seed, masker)
        if frame_sampling not in ("segments", "clip", "stride"):
            raise ValueError(f"frame_sampling must be 'segments', 'clip' or 'stride', got {frame_sampling!r}")
        self.frame_sampling, self.clip_stride = frame_sampling, clip_stride
        self.use_source(data_dir, shards)
        self._captions, self._names = caption_rows(meta_dir, "webvid", split, subsample, seed) if shards is None \
            else ([], [])
        self.video_dir = os.path.join(data_dir, "train" if split == "train" else "val") if data_dir else None
        self.reader = get_reader(reader, decoded_cache_mb)
        self.num_frames = self.num_video_frames = num_frames
        self.transform = build_video_transform(augment, input_res, self.train, resize_interpolation, jitter_range)

    def member_files(self, index):
        return {"txt": self._captions[index].encode(), "mp4": read_bytes(self._video_path(self._names[index]))}

    def _video_path(self, name):
        return os.path.join(self.video_dir, name + ".mp4")

    def _load(self, index, rng, member=None):
        name = self._names[index] if member is None else member["name"]
        caption = self._captions[index] if member is None else member["caption"]
        with (self.reader.open(self._video_path(name)) if member is None else
              self.reader.open_bytes(member["video"], f"{name} in {member['url']}")) as video:
            if self.frame_sampling == "clip":
                indices = clip_frame_indices(video.num_frames, video.fps, self.num_frames, self.clip_stride, rng,
                                             mode="rand" if self.train else "center")
            elif self.frame_sampling == "stride":
                indices = stride_frame_indices(video.num_frames, self.num_frames, self.clip_stride, rng)
            else:
                mode = "uniform" if self.split == "test" else "rand"
                indices = segment_frame_indices(self.num_frames, video.num_frames, rng, mode)
            frames = video.read(indices)
        return {
            "text": [caption],
            "label": np.zeros(1, dtype=np.int64),
            "video": self.transform(frames, rng),
            "name": name,
            "index": index,
        }
