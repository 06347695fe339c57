"""Frame and image transforms of the official loaders, on tensors, with a seedable generator for the randomness.

Videos (YT-Temporal, WebVid): resize the short side to int(1.2 * crop) (bilinear, antialiased: within one
intensity level of the official PIL resize), one random crop for all frames in training or the centre crop
otherwise, no flip, /255 and ImageNet normalisation. Images (CC3M): the official torchvision pipeline on float
tensors (no antialiasing, as torchvision did then), RandomResizedCrop(0.5-1) + horizontal flip in training.
"""
import math

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize(x):
    """float (..., 3, H, W) in [0, 1] -> ImageNet-normalised."""
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (x - mean) / std


class VideoTransform:
    """uint8 frames (T, H, W, 3) -> contiguous float32 (T, 3, crop, crop).

    Frames stay uint8 through the resize and the crop; only the crop is converted, and the /255 and ImageNet
    normalisation are folded into one multiply-add. Converting and normalising the crop took more time than the
    resize itself (docs/benchmarks.md, "Data loader").
    """

    def __init__(self, crop_size, train, resize_ratio=1.2):
        self.crop_size, self.train = crop_size, train
        self.short_side = int(crop_size * resize_ratio)
        std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
        self._scale = 1 / (255 * std)  # (x / 255 - mean) / std == x * scale + offset
        self._offset = -torch.tensor(IMAGENET_MEAN).view(3, 1, 1) / std

    def __call__(self, frames, rng):
        x = torch.as_tensor(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)  # (T, 3, H, W) uint8, channels-last
        h, w = x.shape[-2:]
        if min(h, w) != self.short_side:
            if h <= w:
                size = [self.short_side, int(self.short_side * w / h)]
            else:
                size = [int(self.short_side * h / w), self.short_side]
            x = TF.resize(x, size, antialias=True)
            h, w = size
        c = self.crop_size
        if self.train:
            top, left = int(rng.integers(0, h - c + 1)), int(rng.integers(0, w - c + 1))
        else:
            top, left = int(round((h - c) / 2.0)), int(round((w - c) / 2.0))
        out = torch.empty((x.shape[0], 3, c, c), dtype=torch.float32)
        out.copy_(x[..., top:top + c, left:left + c])  # uint8 -> float and channels-last -> contiguous in one pass
        return out.mul_(self._scale).add_(self._offset)


def random_resized_crop_params(h, w, rng, scale=(0.5, 1.0), ratio=(3 / 4, 4 / 3)):
    """torchvision's RandomResizedCrop box rule (10 tries, then a centre crop), drawn from `rng`."""
    area = h * w
    log_ratio = np.log(ratio)
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        cw, ch = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw
    in_ratio = w / h
    if in_ratio < ratio[0]:
        cw, ch = w, int(round(w / ratio[0]))
    elif in_ratio > ratio[1]:
        ch, cw = h, int(round(h * ratio[1]))
    else:
        cw, ch = w, h
    return (h - ch) // 2, (w - cw) // 2, ch, cw


class ImageTransform:
    """uint8 image (H, W, 3) -> float32 (3, size, size), the official CC3M train / val pipelines."""

    def __init__(self, size, train):
        self.size, self.train = size, train

    def __call__(self, image, rng):
        x = torch.as_tensor(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0
        if self.train:
            top, left, ch, cw = random_resized_crop_params(*x.shape[-2:], rng)
            x = TF.resized_crop(x, top, left, ch, cw, [self.size, self.size], antialias=False)
            if rng.random() < 0.5:
                x = x.flip(-1)
        else:
            big = int(self.size * 256 / 224)
            x = TF.center_crop(TF.resize(x, big, antialias=False), [big, big])
            x = TF.resize(x, [self.size, self.size], antialias=False)
        return normalize(x)
