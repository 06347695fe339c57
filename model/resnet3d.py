"""CPD's video encoder: a SlowOnly-style inflated 3D ResNet (no temporal down-sampling), pooled to one feature.

Layout of the official `models/resnet.py` (key names kept, so `visual_encoder.*` tensors of a released CPD
checkpoint load unchanged): a 1x7x7 stem with stride (1, 2, 2) and a 1x3x3 max-pool, four stages of bottleneck
(depth 50) or basic (10/18/34) blocks, spatial stride 2 at the start of stages 2-4, and a temporal kernel of 3 in
the first convolution of every block of the last two stages. The pooled feature is a global average; the
official pool has a fixed kernel sized for one input, which equals the global average exactly at that input, so
here any clip length and resolution works.

Shortcut "A" (official) down-samples with a stride and pads the new channels with zeros; the official takes the
strided input's `.data`, so no gradient flows through the four stage-transition shortcuts. `shortcut_grad=True`
lets it flow (docs/faithfulness.md). Shortcut "B" is a strided 1x1x1 convolution + BN (the official "B" also
strides time and fails on any input; this one strides space only).
"""
import torch.nn as nn
import torch.nn.functional as F

from .registry import VIDEO_ENCODERS

SHORTCUTS = ("A", "B")


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride, shortcut, temporal):
        super().__init__()
        t = 3 if temporal else 1
        self.conv1 = nn.Conv3d(inplanes, planes, (t, 3, 3), (1, stride, stride), (t // 2, 1, 1), bias=False)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = nn.Conv3d(planes, planes, (1, 3, 3), padding=(0, 1, 1), bias=False)
        self.bn2 = nn.BatchNorm3d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = shortcut

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride, shortcut, temporal):
        super().__init__()
        t = 3 if temporal else 1
        self.conv1 = nn.Conv3d(inplanes, planes, (t, 1, 1), padding=(t // 2, 0, 0), bias=False)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = nn.Conv3d(planes, planes, (1, 3, 3), (1, stride, stride), (0, 1, 1), bias=False)
        self.bn2 = nn.BatchNorm3d(planes)
        self.conv3 = nn.Conv3d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm3d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = shortcut

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class ZeroPadShortcut(nn.Module):
    """Shortcut "A": keep every `stride`-th row and column, then append zero channels up to `planes`.
    `grad=False` (official) detaches the input first."""

    def __init__(self, planes, stride, grad):
        super().__init__()
        self.planes, self.stride, self.grad = planes, stride, grad

    def forward(self, x):
        x = x[:, :, :, ::self.stride, ::self.stride]
        if not self.grad:
            x = x.detach()
        return F.pad(x, (0, 0, 0, 0, 0, 0, 0, self.planes - x.shape[1]))


DEPTHS = {10: (BasicBlock, (1, 1, 1, 1)), 18: (BasicBlock, (2, 2, 2, 2)), 34: (BasicBlock, (3, 4, 6, 3)),
          50: (Bottleneck, (3, 4, 6, 3))}


@VIDEO_ENCODERS.register("slowonly_resnet")
class SlowOnlyResNet(nn.Module):
    """video (B, T, 3, H, W) -> pooled feature (B, `feature_dim`); 2048-d at depth 50 and width 64.

    `depth` 10/18/34/50 (the official choices), `width` the stem's channels (64; smaller for tiny test models),
    `shortcut` "A" or "B", `shortcut_grad` whether shortcut A passes a gradient.
    """

    def __init__(self, depth=50, width=64, shortcut="A", shortcut_grad=False):
        super().__init__()
        if depth not in DEPTHS:
            raise ValueError(f"slowonly_resnet depth must be one of {sorted(DEPTHS)}, got {depth}")
        if shortcut not in SHORTCUTS:
            raise ValueError(f"slowonly_resnet shortcut must be one of {SHORTCUTS}, got {shortcut!r}")
        block, layers = DEPTHS[depth]
        self.conv1 = nn.Conv3d(3, width, (1, 7, 7), (1, 2, 2), (0, 3, 3), bias=False)
        self.bn1 = nn.BatchNorm3d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1))
        self._inplanes = width
        for i, n in enumerate(layers):
            stage = self._stage(block, width * 2 ** i, n, 1 if i == 0 else 2, shortcut, shortcut_grad, temporal=i >= 2)
            setattr(self, f"layer{i + 1}", stage)
        self.feature_dim = self._inplanes
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _stage(self, block, planes, n, stride, shortcut, shortcut_grad, temporal):
        out = planes * block.expansion
        first = None
        if stride != 1 or self._inplanes != out:
            if shortcut == "A":
                first = ZeroPadShortcut(out, stride, shortcut_grad)
            else:
                first = nn.Sequential(nn.Conv3d(self._inplanes, out, 1, (1, stride, stride), bias=False),
                                      nn.BatchNorm3d(out))
        blocks = [block(self._inplanes, planes, stride, first, temporal)]
        self._inplanes = out
        blocks += [block(out, planes, 1, None, temporal) for _ in range(n - 1)]
        return nn.Sequential(*blocks)

    def features(self, video):
        """video (B, T, 3, H, W) -> the last stage's map (B, C, T, H/32, W/32)."""
        if video.ndim != 5 or video.shape[2] != 3:
            raise ValueError(f"slowonly_resnet takes video (B, T, 3, H, W), got shape {tuple(video.shape)}")
        x = self.maxpool(self.relu(self.bn1(self.conv1(video.transpose(1, 2)))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, video):
        return self.features(video).mean(dim=(2, 3, 4))
