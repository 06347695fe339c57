"""Conceptual Captions 3M (stage 2): an image with its caption, shaped as a 2-frame clip (one tubelet slot).

Official layout: `<meta_dir>/cc3m_{train,val}.tsv` (column 0 the caption, column 1 the file name), images at
`<data_dir>/training/<file>` or `<data_dir>/validation/<file>`; validation uses 1,000 rows (random_state=0).
"""
import io
import os

import numpy as np
from PIL import Image, UnidentifiedImageError

from .base import DATASETS, FailSafeDataset, SampleError, member_field, read_bytes
from .transforms import ImageTransform
from .webvid import caption_rows


@DATASETS.register("ConceptualCaptions3M")
class ConceptualCaptions3M(FailSafeDataset):
    """Sample dict: `text` [caption], `label` (1,), `video` (2, 3, res, res) (the image twice), `keep_ind` from the
    masker (default: (1, patches), every patch kept in shuffled order, official). `shards`: a WebDataset copy's
    manifest to stream instead of the files."""

    default_mask_ratio = 0.0
    texts_per_sample = 1
    num_video_frames = 2
    member_fields = ("image", "caption")

    def __init__(self, data_dir=None, split="train", meta_dir="meta_data", input_res=224, subsample=1, loading="lax",
                 seed=0, num_frames=1, reader=None, shards=None, masker=None):
        super().__init__(split, loading, seed, masker)
        self.use_source(data_dir, shards)
        self._captions, self._names = caption_rows(meta_dir, "cc3m", split, subsample, seed) if shards is None \
            else ([], [])
        self.image_dir = os.path.join(data_dir, "training" if split == "train" else "validation") if data_dir else None
        self.transform = ImageTransform(input_res, train=self.train)

    def member_files(self, index):
        name = self._names[index]
        image = read_bytes(os.path.join(self.image_dir, name))
        return {"txt": self._captions[index].encode(), member_field(name): image}

    def _load(self, index, rng, member=None):
        name = self._names[index] if member is None else member["name"]
        caption = self._captions[index] if member is None else member["caption"]
        path = os.path.join(self.image_dir, name) if member is None else f"{name} in {member['url']}"
        try:
            with Image.open(path if member is None else io.BytesIO(member["image"])) as img:
                image = np.array(img.convert("RGB"))
        except (UnidentifiedImageError, OSError) as e:
            raise SampleError("unreadable_image", f"cannot read image {path}: {e}") from e
        x = self.transform(image, rng)
        return {
            "text": [caption],
            "label": np.zeros(1, dtype=np.int64),
            "video": x.unsqueeze(0).repeat(2, 1, 1, 1),
            "name": name,
            "index": index,
        }
