"""The downstream video network: the pretraining encoder run unmasked, its pooled feature, a linear head.

`VideoClassifier` (TVTS) subclasses the pretraining `VideoTransformer`, so a pretraining checkpoint's
`video_model.*` tensors load under the same names, and only `head.*` is new; its feature is the final-norm CLS.
`R3DClassifier` (CPD) holds the SlowOnly 3D ResNet as `visual_encoder` (a CPD checkpoint's `visual_encoder.*`
tensors) with CPD's dropout and fresh Linear head; its feature is the pooled 2048-d map. Input is channels-first
(B, C, T, H, W) with ImageNet normalisation, the layout and normaliser of the official TVTS downstream code (and
of its mixup); `R3DClassifier` converts it exactly to CPD's mean 0.45 / std 0.225 before its first layer.
`build_classifier(model, num_classes, ...)` picks the class from `--model`.

`load_pretrained_encoder` takes the video encoder out of a pretraining checkpoint (ours or an official one, with or
without `module.`) and refuses to continue unless every encoder tensor is there with the right shape: the
official loader used `strict=False` with no report, so a key mismatch silently trained a random network.
"""
import json
import logging
import os

import torch
import torch.nn as nn

from data_loader.transforms import IMAGENET_MEAN, IMAGENET_STD, SLOWFAST_MEAN, SLOWFAST_STD
from model.checkpoint import CheckpointError, check_state_dict, read_checkpoint, strip_prefix
from model.resnet3d import SlowOnlyResNet
from model.video_transformer import ARCH_PRESETS, VideoTransformer

log = logging.getLogger(__name__)

ENCODER_PREFIX = "video_model."
MODEL_PRESETS = {"vit_base_patch16_224": ARCH_PRESETS["base_patch16_224"]}
R3D_PRESETS = {"slowonly_r3d50": {"depth": 50, "width": 64, "shortcut": "A"}}
R3D_KEYS = ("depth", "width", "shortcut", "shortcut_grad")


class VideoClassifier(VideoTransformer):
    """`forward(video)` -> logits (B, num_classes); `forward_features(video)` -> final-norm CLS (B, D).

    `num_classes=0` builds no head (feature extraction). The head is trunc-normal(std 0.02) with zero bias as in
    the official code, then multiplied by `init_scale` (1.0 = official; VideoMAE used 0.001, which the official
    scripts passed but never applied).
    """

    def __init__(self, num_classes, init_scale=1.0, **encoder_args):
        super().__init__(**encoder_args)
        self.num_classes = num_classes
        if num_classes:
            self.head = nn.Linear(self.embed_dim, num_classes)
            nn.init.trunc_normal_(self.head.weight, std=0.02)
            nn.init.zeros_(self.head.bias)
            with torch.no_grad():
                self.head.weight.mul_(init_scale)
                self.head.bias.mul_(init_scale)
        else:
            self.head = nn.Identity()

    def no_weight_decay(self):
        """The official set: `temporal_embed` is not in it, so it is decayed."""
        return {"pos_embed", "cls_token"}

    def forward_features(self, video):
        if video.ndim != 5:
            raise ValueError(f"video must be (B, C, T, H, W), got shape {tuple(video.shape)}")
        self._check_inputs(video.transpose(1, 2), None)
        return self.encode(video)[:, 0]

    def forward(self, video):
        return self.head(self.forward_features(video))


class R3DClassifier(nn.Module):
    """CPD's downstream network: `forward(video)` -> logits (B, num_classes) through Dropout(`dropout`) and a
    fresh Linear (PyTorch's default init, as the official); `forward_features(video)` -> the pooled (B, 2048)
    feature. `num_classes=0` builds no head. Input (B, 3, T, H, W), ImageNet-normalised (see the module doc)."""

    encoder_prefix = "visual_encoder."

    def __init__(self, num_classes, depth=50, width=64, shortcut="A", shortcut_grad=False, dropout=0.0):
        super().__init__()
        self.visual_encoder = SlowOnlyResNet(depth, width, shortcut, shortcut_grad)
        self.num_classes = num_classes
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.visual_encoder.feature_dim, num_classes) if num_classes else nn.Identity()
        # x_cpd = (x_imagenet * std_in + mean_in - 0.45) / 0.225, per channel
        std_in, mean_in = torch.tensor(IMAGENET_STD), torch.tensor(IMAGENET_MEAN)
        out_std, out_mean = torch.tensor(SLOWFAST_STD), torch.tensor(SLOWFAST_MEAN)
        self.register_buffer("_scale", (std_in / out_std).view(1, 3, 1, 1, 1), persistent=False)
        self.register_buffer("_shift", ((mean_in - out_mean) / out_std).view(1, 3, 1, 1, 1), persistent=False)

    @property
    def encoder_module(self):
        return self.visual_encoder

    def no_weight_decay(self):
        return set()

    def forward_features(self, video):
        if video.ndim != 5 or video.shape[1] != 3:
            raise ValueError(f"video must be (B, 3, T, H, W), got shape {tuple(video.shape)}")
        x = video * self._scale + self._shift
        return self.visual_encoder(x.transpose(1, 2))

    def forward(self, video):
        return self.head(self.dropout(self.forward_features(video)))


def _config_arch(model):
    """(arch entry, whole config) of a `--model` config file."""
    if not os.path.isfile(model):
        raise FileNotFoundError(f"--model config not found: {model}")
    with open(model) as f:
        config = json.load(f)
    return config.get("arch", {}), config


def r3d_args(model):
    """`R3DClassifier` arguments of `--model` (a preset of R3D_PRESETS or a CPD config with the 3D ResNet), or
    None when it names a ViT."""
    if model in R3D_PRESETS:
        return dict(R3D_PRESETS[model])
    if not model.endswith(".json"):
        return None
    arch, _ = _config_arch(model)
    if arch.get("type") != "CPD":
        return None
    video_params = dict(arch.get("args", {}).get("video_params") or {})
    if video_params.pop("model", "slowonly_resnet") != "slowonly_resnet":
        raise ValueError(f"{model}: the downstream protocols take CPD's 3D ResNet, not its "
                         f"{arch['args']['video_params']['model']!r} tower")
    return {k: video_params[k] for k in R3D_KEYS if k in video_params}


def config_input_size(model):
    """The frame size a CPD config pretrained on (its first loader's `input_res`; 224 if unset)."""
    _, config = _config_arch(model)
    loaders = config.get("data_loader") or [{}]
    return int(loaders[0].get("args", {}).get("video_params", {}).get("input_res", 224))


def build_classifier(model, num_classes, num_frames=None, input_size=None, tubelet_size=None, drop_path=0.0,
                     attention="sdpa", init_scale=1.0, dropout=0.0):
    """The downstream network `--model` names: `R3DClassifier` for CPD's 3D ResNet (size-agnostic: the frame
    count and size are the data's), else `VideoClassifier` with `encoder_args`."""
    r3d = r3d_args(model)
    if r3d is not None:
        return R3DClassifier(num_classes, dropout=dropout, **r3d)
    return VideoClassifier(num_classes, init_scale=init_scale,
                           **encoder_args(model, num_frames, input_size, tubelet_size, drop_path, attention))


def default_input_size(model):
    """The frame size `--model` was pretrained on: a ViT's `img_size`, a CPD config's `input_res`, else 224."""
    if r3d_args(model) is not None:
        return config_input_size(model) if model.endswith(".json") else 224
    return encoder_args(model)["img_size"]


def encoder_args(model, num_frames=None, input_size=None, tubelet_size=None, drop_path=0.0, attention="sdpa"):
    """Constructor arguments for `VideoClassifier` from a preset name or a pretraining config JSON.

    `model` is `vit_base_patch16_224` (the official ViT-B/16) or the path of a pretraining config (for example
    `configs/demo-cpu.json`), whose `arch.args.video_params` give the frame size, frame count, width, depth, heads
    and patch size. `num_frames`, `input_size` and `tubelet_size` left None take the config's (or 16, 224, 2).
    """
    if model in MODEL_PRESETS:
        arch, video_params = dict(MODEL_PRESETS[model]), {}
    elif model.endswith(".json"):
        video_params = _config_arch(model)[0].get("args", {}).get("video_params")
        if not video_params:
            raise ValueError(f"{model} has no arch.args.video_params: not a pretraining config")
        arch = dict(ARCH_PRESETS.get(video_params.get("arch_config", "base_patch16_224"),
                                     MODEL_PRESETS["vit_base_patch16_224"]))
        arch.update({k: video_params[k] for k in ("img_size", "patch_size", "embed_dim", "depth", "num_heads",
                                                  "mlp_ratio") if k in video_params})
    else:
        raise ValueError(f"unknown --model {model!r}: use one of {sorted(MODEL_PRESETS) + sorted(R3D_PRESETS)} "
                         "or a pretraining config (.json)")
    arch.update(img_size=input_size or arch["img_size"], num_frames=num_frames or video_params.get("num_frames", 16),
                tubelet_size=tubelet_size or video_params.get("tubelet_size", 2), drop_path_rate=drop_path,
                attention=attention)
    return arch


def encoder_state_from_checkpoint(path, prefix=ENCODER_PREFIX):
    """The video-encoder tensors of a pretraining checkpoint (the keys under `prefix`, with it removed), plus what
    was dropped.

    Accepts our checkpoints and the official ones (`{'state_dict': {'module.video_model....': ...}}`; CPD:
    `module.visual_encoder....`), with or without the `module.` prefix.
    """
    ckpt = read_checkpoint(path)
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        keys = list(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{path} has no 'state_dict' entry (found {keys}): not a TVTS pretraining checkpoint")
    state = strip_prefix(ckpt["state_dict"])
    encoder = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if not encoder:
        sample = ", ".join(list(state)[:5])
        raise CheckpointError(f"{path} holds no video encoder: no key starts with '{prefix}' (first keys: "
                              f"{sample})")
    dropped = {}
    for k in state:
        if not k.startswith(prefix):
            top = k.split(".", 1)[0]
            dropped[top] = dropped.get(top, 0) + 1
    return encoder, dropped


def load_pretrained_encoder(model, path):
    """Load every encoder tensor of `model` from the pretraining checkpoint at `path`; the head stays new.

    Raises `CheckpointError` naming every missing, unexpected or wrongly shaped tensor. Returns a report dict.
    """
    encoder, dropped = encoder_state_from_checkpoint(path, getattr(model, "encoder_prefix", ENCODER_PREFIX))
    target = getattr(model, "encoder_module", model)
    expected = {k: v for k, v in target.state_dict().items() if target is not model or not k.startswith("head.")}
    check_state_dict(expected, encoder, f"video encoder of {path}")
    target.load_state_dict(encoder, strict=target is not model)
    new = sorted(k for k in model.state_dict() if k.startswith("head."))
    report = {"checkpoint": str(path), "loaded": len(encoder), "new": new, "dropped": dropped}
    log.info("loaded all %d video-encoder tensors from %s; newly initialised: %s; not used: %s", len(encoder), path,
             ", ".join(new) or "nothing", ", ".join(f"{k} ({n})" for k, n in sorted(dropped.items())) or "nothing")
    return report
