"""Frame and image transforms of the official loaders, on tensors, with a seedable generator for the randomness.

Videos (YT-Temporal, WebVid): resize the short side to int(1.2 * crop) (TVTS: bilinear, antialiased, within one
intensity level of the official PIL resize; TVTSv2: nearest neighbour, pixel-exact against the official PIL
NEAREST resize), one random crop for all frames in training or the centre crop otherwise, no flip, /255 and ImageNet
normalisation. Images (CC3M): the official torchvision pipeline on float
tensors (no antialiasing, as torchvision did then), RandomResizedCrop(0.5-1) + horizontal flip in training.
"""
import math

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CROP_TRIES = 10


def _channel_shape(ndim, channel_dim):
    shape = [1] * ndim
    shape[channel_dim] = 3
    return shape


def imagenet_affine(ndim, channel_dim=-3):
    """(scale, offset) with `uint8 * scale + offset == (uint8 / 255 - mean) / std`, shaped to broadcast over a
    tensor of `ndim` dimensions whose colour axis is `channel_dim`."""
    shape = _channel_shape(ndim, channel_dim)
    std = torch.tensor(IMAGENET_STD).view(shape)
    return 1 / (255 * std), -torch.tensor(IMAGENET_MEAN).view(shape) / std


def normalize(x, channel_dim=-3):
    """ImageNet normalisation of uint8 pixels (0-255) or float pixels (0-1); float32 out. The /255 of uint8 input
    is folded into one multiply-add."""
    if x.dtype == torch.uint8:
        scale, offset = imagenet_affine(x.ndim, channel_dim)
        return x.float().mul_(scale).add_(offset)
    shape = _channel_shape(x.ndim, channel_dim)
    return (x - torch.tensor(IMAGENET_MEAN).view(shape)) / torch.tensor(IMAGENET_STD).view(shape)


INTERPOLATIONS = ("bilinear", "nearest")


def nearest_indices(src, dst):
    """The source row (or column) PIL's NEAREST resize reads for each of `dst` output rows: the pixel centre
    0.5 * s, then s added once per row (s = src / dst, in double precision and accumulated as PIL does), truncated."""
    scale = src / dst
    centres = np.add.accumulate(np.concatenate([[0.5 * scale], np.full(dst - 1, scale)]))
    return torch.from_numpy(np.minimum(centres.astype(np.int64), src - 1))


class VideoTransform:
    """uint8 frames (T, H, W, 3) -> contiguous float32 (T, 3, crop, crop).

    Frames stay uint8 through the resize and the crop; only the crop is converted, and the /255 and ImageNet
    normalisation are folded into one multiply-add. Converting and normalising the crop took more time than the
    resize itself (docs/benchmarks.md, "Data loader"). A nearest-neighbour resize followed by a crop only picks
    source pixels, so it reads the cropped rows and columns directly and never builds the resized frames.
    """

    def __init__(self, crop_size, train, resize_ratio=1.2, interpolation="bilinear"):
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"resize interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
        self.crop_size, self.train, self.interpolation = crop_size, train, interpolation
        self.short_side = int(crop_size * resize_ratio)
        self._scale, self._offset = imagenet_affine(3)

    def __call__(self, frames, rng):
        x = torch.as_tensor(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)  # (T, 3, H, W) uint8, channels-last
        src_h, src_w = h, w = x.shape[-2:]
        resize = min(h, w) != self.short_side
        if resize:
            if h <= w:
                h, w = self.short_side, int(self.short_side * w / h)
            else:
                h, w = int(self.short_side * h / w), self.short_side
            if self.interpolation == "bilinear":
                x = TF.resize(x, [h, w], antialias=True)
        c = self.crop_size
        if self.train:
            top, left = int(rng.integers(0, h - c + 1)), int(rng.integers(0, w - c + 1))
        else:
            top, left = int(round((h - c) / 2.0)), int(round((w - c) / 2.0))
        if resize and self.interpolation == "nearest":
            rows = nearest_indices(src_h, h)[top:top + c]
            cols = nearest_indices(src_w, w)[left:left + c]
            crop = x.index_select(2, rows).index_select(3, cols)
        else:
            crop = x[..., top:top + c, left:left + c]
        out = torch.empty((x.shape[0], 3, c, c), dtype=torch.float32)
        out.copy_(crop)  # uint8 -> float and channels-last -> contiguous in one pass
        return out.mul_(self._scale).add_(self._offset)


SLOWFAST_MEAN, SLOWFAST_STD = (0.45, 0.45, 0.45), (0.225, 0.225, 0.225)


class JitterCropTransform:
    """CPD's video augmentation (pySlowFast's): uint8 frames (T, H, W, 3) -> float32 (T, 3, crop, crop).

    Training: the short side is resized to a size drawn uniformly from `scale_range` and rounded (bilinear,
    no antialiasing; the long side floor-scaled; no resize when it already has that size), a random crop whose
    offsets are drawn from [0, excess) (the official never takes the last offset), a horizontal flip with
    probability 0.5, then mean 0.45 / std 0.225. Otherwise: short side to `scale_range[0]` and the centre crop, or
    with `view=(i, n)` the i-th of n crops spread along the long side (pySlowFast's uniform crop: for n = 3 the
    start, the centre and the end). The official normalises before resizing; both are linear, so the result is the
    same up to float rounding.
    """

    def __init__(self, crop_size, train, scale_range=(256, 340), flip=True, mean=SLOWFAST_MEAN, std=SLOWFAST_STD):
        if not 0 < scale_range[0] <= scale_range[1] or scale_range[0] < crop_size:
            raise ValueError(f"jitter scale_range {tuple(scale_range)} must be increasing and not below the crop "
                             f"{crop_size}")
        self.crop_size, self.train, self.scale_range, self.flip = crop_size, train, tuple(scale_range), flip
        self._mean, self._std = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)

    def __call__(self, frames, rng, view=None):
        if view is not None and self.train:
            raise ValueError("crop views are for evaluation: this transform is in training mode")
        x = torch.as_tensor(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div_(255)
        size = int(round(rng.uniform(*self.scale_range))) if self.train else self.scale_range[0]
        h, w = x.shape[-2:]
        if min(h, w) != size:
            if w < h:
                h, w = int(math.floor(h / w * size)), size
            else:
                h, w = size, int(math.floor(w / h * size))
            x = TF.resize(x, [h, w], antialias=False)
        c = self.crop_size
        if self.train:
            top = int(rng.integers(0, h - c)) if h > c else 0
            left = int(rng.integers(0, w - c)) if w > c else 0
        else:
            top, left = int(math.ceil((h - c) / 2)), int(math.ceil((w - c) / 2))
            if view is not None:
                index, count = view
                if not 0 <= index < count:
                    raise ValueError(f"crop view {index} of {count} is out of range")
                if count > 1:  # one view is the centre crop
                    along = int(math.ceil((max(h, w) - c) * index / (count - 1)))
                    top, left = (along, left) if h > w else (top, along)
        x = x[..., top:top + c, left:left + c]
        if self.train and self.flip and rng.uniform() < 0.5:
            x = x.flip(-1)
        return ((x - self._mean) / self._std).contiguous()


class MultiScaleCropTransform:
    """SimVTP's video augmentation (TSN's GroupMultiScaleCrop): uint8 frames (T, H, W, 3) -> float32 (T, 3, crop,
    crop), ImageNet-normalised, no flip.

    Training: crop sides are int(short side * s) for s in `scales` (a side within 2 pixels of `crop` becomes
    `crop`); a (width, height) pair is drawn uniformly among those whose scale indices differ by at most
    `max_distort`, then an offset among 13 fixed ones (the corners, the centre, the edge middles and the quarter
    points, on a grid of steps (image - crop) // 4), the same for every frame; the crop is resized to crop x crop
    (bilinear, antialiased, as PIL's resize of the official). Otherwise (the official has no evaluation here): the
    centre square of the short side, resized the same way.
    """

    def __init__(self, crop_size, train, scales=(1, .875, .75, .66), max_distort=1):
        self.crop_size, self.train, self.scales, self.max_distort = crop_size, train, tuple(scales), max_distort
        self._scale, self._offset = imagenet_affine(3)

    def crop_box(self, height, width, rng):
        """(top, left, crop height, crop width) of one draw."""
        base = min(height, width)
        if not self.train:
            return (height - base) // 2, (width - base) // 2, base, base
        sides = [int(base * s) for s in self.scales]
        sides = [self.crop_size if abs(x - self.crop_size) < 3 else x for x in sides]
        pairs = [(w, h) for i, h in enumerate(sides) for j, w in enumerate(sides) if abs(i - j) <= self.max_distort]
        crop_w, crop_h = pairs[int(rng.integers(len(pairs)))]
        w_step, h_step = (width - crop_w) // 4, (height - crop_h) // 4
        grid = [(0, 0), (4, 0), (0, 4), (4, 4), (2, 2), (0, 2), (4, 2), (2, 4), (2, 0), (1, 1), (3, 1), (1, 3), (3, 3)]
        gx, gy = grid[int(rng.integers(len(grid)))]
        return gy * h_step, gx * w_step, crop_h, crop_w

    def __call__(self, frames, rng):
        x = torch.as_tensor(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
        top, left, h, w = self.crop_box(x.shape[-2], x.shape[-1], rng)
        x = x[..., top:top + h, left:left + w]
        if (h, w) != (self.crop_size, self.crop_size):
            x = TF.resize(x, [self.crop_size, self.crop_size], antialias=True)
        out = torch.empty((x.shape[0], 3, self.crop_size, self.crop_size), dtype=torch.float32)
        out.copy_(x)
        return out.mul_(self._scale).add_(self._offset)


VIDEO_AUGMENTS = ("official", "slowfast_jitter", "multiscale_crop")


def build_video_transform(augment, crop_size, train, interpolation="bilinear", scale_range=(256, 340)):
    """The datasets' frame pipeline: "official" (TVTS's `VideoTransform`), "slowfast_jitter" (CPD's) or
    "multiscale_crop" (SimVTP's)."""
    if augment == "official":
        return VideoTransform(crop_size, train=train, interpolation=interpolation)
    if augment == "slowfast_jitter":
        return JitterCropTransform(crop_size, train, scale_range)
    if augment == "multiscale_crop":
        return MultiScaleCropTransform(crop_size, train)
    raise ValueError(f"augment must be one of {VIDEO_AUGMENTS}, got {augment!r}")


def random_resized_crop_box(height, width, scale, ratio, rng):
    """torchvision's RandomResizedCrop box, drawn from `rng`: (top, left, h, w) with the area fraction ~ U(scale)
    and the aspect (w/h) log-uniform in `ratio`, 10 tries, then the centre crop of the whole frame clamped to the
    ratio range."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(CROP_TRIES):
        target_area = rng.uniform(*scale) * area
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    frame_ratio = width / height
    if frame_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif frame_ratio > max(ratio):
        w, h = int(round(height * max(ratio))), height
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


class ImageTransform:
    """uint8 image (H, W, 3) -> float32 (3, size, size), the official CC3M train / val pipelines."""

    def __init__(self, size, train):
        self.size, self.train = size, train

    def __call__(self, image, rng):
        x = torch.as_tensor(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0
        if self.train:
            top, left, ch, cw = random_resized_crop_box(*x.shape[-2:], (0.5, 1.0), (3 / 4, 4 / 3), rng)
            x = TF.resized_crop(x, top, left, ch, cw, [self.size, self.size], antialias=False)
            if rng.random() < 0.5:
                x = x.flip(-1)
        else:
            big = int(self.size * 256 / 224)
            x = TF.center_crop(TF.resize(x, big, antialias=False), [big, big])
            x = TF.resize(x, [self.size, self.size], antialias=False)
        return normalize(x)
