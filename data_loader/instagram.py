"""Instagram-300k in CPD's official layout: one list json and a folder of trimmed videos.

The list `<list_file>` maps each video id to `{"subset": "training" | "validation", "caption": str}`; the video of
id X is `<data_dir>/trimmed_resize_X.mp4` (the middle 20 s, short side 256, made offline). The list itself is not
public; any corpus written in this layout trains CPD. A listed video that is missing or unreadable is a counted
failure (replaced in training), not a silently shorter dataset as in the official loader.
"""
import json
import os

import numpy as np
import pandas as pd

from .base import DATASETS, FailSafeDataset, subsample_table
from .readers import get_reader
from .sampling import clip_frame_indices
from .transforms import build_video_transform

SUBSETS = {"train": "training", "val": "validation", "test": "validation"}


def read_list_file(path, subset):
    """(ids, captions) of `subset` in file order; a missing file, malformed entry or empty subset is an error
    naming the file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Instagram list file not found: {path}")
    with open(path) as f:
        database = json.load(f)
    if not isinstance(database, dict):
        raise ValueError(f"{path}: expected an object mapping video ids to {{subset, caption}}")
    ids, captions = [], []
    for vid, info in database.items():
        if not isinstance(info, dict) or "subset" not in info or "caption" not in info:
            raise ValueError(f"{path}: entry {vid!r} needs 'subset' and 'caption', got {info!r}")
        if info["subset"] == subset:
            ids.append(str(vid))
            captions.append(str(info["caption"]))
    if not ids:
        raise ValueError(f"{path} lists no video of subset {subset!r}")
    return ids, captions


@DATASETS.register("Instagram")
class Instagram(FailSafeDataset):
    """Sample dict: `text` [caption], `label` (1,), `video` (num_frames, 3, input_res, input_res), `name` (the
    video id), `index`. Official pretraining: 8 frames over 32 at 30 fps (`num_frames` 8, `clip_stride` 4),
    random in training and centred otherwise; short-side jitter in [256, 340], crop 224, flip, mean 0.45 / std
    0.225 (`augment` "slowfast_jitter"). `subsample` < 1 keeps a seeded share."""

    default_mask_ratio = 0.0
    texts_per_sample = 1

    def __init__(self, data_dir, list_file, split="train", video_template="trimmed_resize_{}.mp4", reader="pyav",
                 num_frames=8, clip_stride=4, input_res=224, augment="slowfast_jitter", jitter_range=(256, 340),
                 resize_interpolation="bilinear", subsample=1, decoded_cache_mb=0, loading="lax", seed=0,
                 masker=None):
        super().__init__(split, loading, seed, masker)
        ids, captions = read_list_file(list_file, SUBSETS[split])
        rows = sorted(subsample_table(pd.DataFrame({"row": range(len(ids))}), subsample, seed)["row"])
        self._names = [ids[i] for i in rows]
        self._captions = [captions[i] for i in rows]
        self.data_dir, self.video_template = data_dir, video_template
        self.reader = get_reader(reader, decoded_cache_mb)
        self.num_frames = self.num_video_frames = num_frames
        self.clip_stride = clip_stride
        self.transform = build_video_transform(augment, input_res, self.train, resize_interpolation, jitter_range)

    def _load(self, index, rng):
        path = os.path.join(self.data_dir, self.video_template.format(self._names[index]))
        with self.reader.open(path) as video:
            frames = video.read(clip_frame_indices(video.num_frames, video.fps, self.num_frames, self.clip_stride,
                                                   rng, mode="rand" if self.train else "center",
                                                   pts_timeline=video.pts_timeline))
        return {
            "text": [self._captions[index]],
            "label": np.zeros(1, dtype=np.int64),
            "video": self.transform(frames, rng),
            "name": self._names[index],
            "index": index,
        }
