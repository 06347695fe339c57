"""Conceptual Captions 3M (stage 2): an image with its caption, shaped as a 2-frame clip (one tubelet slot).

Official layout: `<meta_dir>/cc3m_{train,val}.tsv` (column 0 the caption, column 1 the file name), images at
`<data_dir>/training/<file>` or `<data_dir>/validation/<file>`; validation uses 1,000 rows (random_state=0).
"""
import os

import numpy as np
from PIL import Image, UnidentifiedImageError

from .base import DATASETS, FailSafeDataset, SampleError
from .transforms import ImageTransform
from .webvid import caption_table


@DATASETS.register("ConceptualCaptions3M")
class ConceptualCaptions3M(FailSafeDataset):
    """Sample dict: `text` [caption], `label` (1,), `video` (2, 3, res, res) (the image twice), `keep_ind` from the
    masker (default: (1, patches), every patch kept in shuffled order, official)."""

    default_mask_ratio = 0.0
    texts_per_sample = 1
    num_video_frames = 2

    def __init__(self, data_dir, split="train", meta_dir="meta_data", input_res=224, subsample=1, loading="lax",
                 seed=0, num_frames=1, reader=None, masker=None):
        super().__init__(split, loading, seed, masker)
        table = caption_table(meta_dir, "cc3m", split, subsample, seed)
        self._captions = [str(c) for c in table.iloc[:, 0]]
        self._names = [str(p) for p in table.iloc[:, 1]]
        self.image_dir = os.path.join(data_dir, "training" if split == "train" else "validation")
        self.transform = ImageTransform(input_res, train=self.train)

    def _load(self, index, rng):
        path = os.path.join(self.image_dir, self._names[index])
        try:
            with Image.open(path) as img:
                image = np.array(img.convert("RGB"))
        except (UnidentifiedImageError, OSError) as e:
            raise SampleError("unreadable_image", f"cannot read image {path}: {e}") from e
        x = self.transform(image, rng)
        return {
            "text": [self._captions[index]],
            "label": np.zeros(1, dtype=np.int64),
            "video": x.unsqueeze(0).repeat(2, 1, 1, 1),
            "name": self._names[index],
            "index": index,
        }
