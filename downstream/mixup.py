"""Batch-level mixup / cutmix for video batches, with the soft-target loss that goes with it.

The official fine-tuning and linear-probe scripts use timm 0.4.5's `Mixup` in "batch" mode. This module draws the
same random numbers in the same order, so with the same numpy seed it mixes the same way. timm pastes the cutmix
box with `x[:, :, y, x]`, which on a (B, C, T, H, W) video tensor lands on the T and H axes over the full width
while the label weight is still corrected from an H x W box: `video_cutmix="official"` keeps that, `"fixed"` pastes
the box into H and W of every frame.
"""
import numpy as np
import torch
import torch.nn.functional as F

VIDEO_CUTMIX = ("official", "fixed")


def smoothed_one_hot(target, num_classes, smoothing):
    """One-hot rows with `smoothing` spread evenly: off = smoothing / K, on = 1 - smoothing + off."""
    off = smoothing / num_classes
    rows = torch.full((target.shape[0], num_classes), off, dtype=torch.float32, device=target.device)
    return rows.scatter_(1, target.long().view(-1, 1), 1.0 - smoothing + off)


def cutmix_box(rng, height, width, lam, minmax=None):
    """(yl, yh, xl, xh) of the cutmix box and the label weight corrected to the box's share of H x W.

    Without `minmax` the box is sqrt(1 - lam) of each side around a uniform centre, clipped to the frame (timm's
    `rand_bbox`); with it, each side is a uniform fraction in [min, max) and the box lies inside the frame.
    """
    if minmax is None:
        ratio = np.sqrt(1 - lam)
        cut_h, cut_w = int(height * ratio), int(width * ratio)
        cy = rng.randint(0, height)
        cx = rng.randint(0, width)
        yl, yh = np.clip(cy - cut_h // 2, 0, height), np.clip(cy + cut_h // 2, 0, height)
        xl, xh = np.clip(cx - cut_w // 2, 0, width), np.clip(cx + cut_w // 2, 0, width)
    else:
        cut_h = rng.randint(int(height * minmax[0]), int(height * minmax[1]))
        cut_w = rng.randint(int(width * minmax[0]), int(width * minmax[1]))
        yl = rng.randint(0, height - cut_h)
        xl = rng.randint(0, width - cut_w)
        yh, xh = yl + cut_h, xl + cut_w
    lam = 1.0 - float((yh - yl) * (xh - xl)) / float(height * width)
    return (int(yl), int(yh), int(xl), int(xh)), lam


class Mixup:
    """Mix each video with its mirror in the batch (`x.flip(0)`), one draw per batch.

    Per call: with probability `prob`, pick cutmix with probability `switch_prob` (when both alphas are > 0),
    draw lam ~ Beta(alpha, alpha) of the chosen kind, then blend (mixup) or paste a box (cutmix, lam corrected
    to the box area). Targets are smoothed one-hots mixed with the same lam.

    Randomness: `rng=None` uses numpy's global generator, as timm does (so `np.random.seed` reproduces a run);
    a `np.random.RandomState` gives the same draws from a private stream. With both alphas 0 and no
    `cutmix_minmax`, mixing is off (`active` False) and a call returns x with the smoothed one-hot targets, which
    with `soft_target_cross_entropy` equals label-smoothing cross-entropy.
    """

    def __init__(self, mixup_alpha=0.8, cutmix_alpha=1.0, cutmix_minmax=None, prob=1.0, switch_prob=0.5,
                 mode="batch", label_smoothing=0.1, num_classes=1000, video_cutmix="official", rng=None):
        if mode != "batch":
            raise ValueError(f"mixup mode {mode!r} is not supported; only 'batch' (what the official scripts use)")
        if video_cutmix not in VIDEO_CUTMIX:
            raise ValueError(f"video_cutmix must be one of {VIDEO_CUTMIX}, got {video_cutmix!r}")
        if num_classes < 1:
            raise ValueError(f"mixup needs num_classes >= 1 to build targets, got {num_classes}")
        if cutmix_minmax is not None:
            if len(cutmix_minmax) != 2 or not 0 < cutmix_minmax[0] < cutmix_minmax[1] <= 1:
                raise ValueError(f"cutmix_minmax must be (min, max) with 0 < min < max <= 1, got {cutmix_minmax}")
            cutmix_alpha = 1.0  # timm forces this when minmax boxes are used
        if rng is not None and not isinstance(rng, np.random.RandomState):
            raise TypeError(f"rng must be None (numpy's global generator) or np.random.RandomState, got {type(rng)}")
        self.mixup_alpha, self.cutmix_alpha, self.cutmix_minmax = mixup_alpha, cutmix_alpha, cutmix_minmax
        self.prob, self.switch_prob = prob, switch_prob
        self.label_smoothing, self.num_classes = label_smoothing, num_classes
        self.video_cutmix = video_cutmix
        self.rng = rng

    @property
    def active(self):
        return self.mixup_alpha > 0 or self.cutmix_alpha > 0

    @property
    def _random(self):
        return np.random if self.rng is None else self.rng

    def _draw(self):
        """(lam, use_cutmix) for one batch, consuming numbers exactly as timm's `_params_per_batch`."""
        rng = self._random
        if not rng.rand() < self.prob:
            return 1.0, False
        if self.mixup_alpha > 0 and self.cutmix_alpha > 0:
            use_cutmix = rng.rand() < self.switch_prob
        else:
            use_cutmix = self.cutmix_alpha > 0
        alpha = self.cutmix_alpha if use_cutmix else self.mixup_alpha
        return float(rng.beta(alpha, alpha)), use_cutmix

    def __call__(self, x, target):
        """x: (B, C, T, H, W) with B even; target: (B,) class indices. Returns (mixed x, (B, K) soft targets)."""
        if x.ndim != 5:
            raise ValueError(f"mixup expects a (B, C, T, H, W) video batch, got shape {tuple(x.shape)}")
        if x.shape[0] % 2:
            raise ValueError(f"mixup pairs each video with its mirror, so the batch must be even, got {x.shape[0]}")
        if target.shape != (x.shape[0],):
            raise ValueError(f"mixup target must have shape ({x.shape[0]},), got {tuple(target.shape)}")
        if target.numel() and (int(target.min()) < 0 or int(target.max()) >= self.num_classes):
            raise ValueError(f"mixup target labels must lie in [0, {self.num_classes}), got "
                             f"{int(target.min())}..{int(target.max())}")
        target = target.to(x.device)
        lam, use_cutmix = self._draw() if self.active else (1.0, False)
        if lam != 1.0 and use_cutmix:
            x, lam = self._cutmix(x, lam)
        elif lam != 1.0:
            x = x * lam + x.flip(0) * (1.0 - lam)
        own = smoothed_one_hot(target, self.num_classes, self.label_smoothing)
        partner = smoothed_one_hot(target.flip(0), self.num_classes, self.label_smoothing)
        return x, own * lam + partner * (1.0 - lam)

    def _cutmix(self, x, lam):
        (yl, yh, xl, xh), lam = cutmix_box(self._random, x.shape[-2], x.shape[-1], lam, self.cutmix_minmax)
        region = (slice(None), slice(None), slice(yl, yh), slice(xl, xh))  # official: lands on T, H
        if self.video_cutmix == "fixed":
            region = (Ellipsis, slice(yl, yh), slice(xl, xh))
        mixed = x.clone()
        mixed[region] = x.flip(0)[region]
        return mixed, lam


def soft_target_cross_entropy(logits, soft_target):
    """Mean over the batch of sum_k -t_k * log_softmax(logits)_k (timm's SoftTargetCrossEntropy)."""
    if logits.shape != soft_target.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and soft targets {tuple(soft_target.shape)} must match")
    return torch.sum(-soft_target * F.log_softmax(logits, dim=-1), dim=-1).mean()
