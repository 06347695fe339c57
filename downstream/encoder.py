"""The downstream video network: the pretraining encoder run unmasked, its final-norm CLS feature, a linear head.

`VideoClassifier` subclasses the pretraining `VideoTransformer`, so a pretraining checkpoint's
`video_model.*` tensors load under the same names, and only `head.*` is new. Input is channels-first
(B, C, T, H, W), the layout of the official downstream code (and of its mixup).

`load_pretrained_encoder` takes the video encoder out of a pretraining checkpoint (ours or an official one, with or
without `module.`) and refuses to continue unless every encoder tensor is there with the right shape: the
official loader used `strict=False` with no report, so a key mismatch silently trained a random network.
"""
import json
import logging
import os

import torch
import torch.nn as nn

from model.checkpoint import CheckpointError, check_state_dict, read_checkpoint, strip_prefix
from model.video_transformer import ARCH_PRESETS, VideoTransformer

log = logging.getLogger(__name__)

ENCODER_PREFIX = "video_model."
MODEL_PRESETS = {"vit_base_patch16_224": ARCH_PRESETS["base_patch16_224"]}


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


def encoder_args(model, num_frames=None, input_size=None, tubelet_size=None, drop_path=0.0, attention="sdpa"):
    """Constructor arguments for `VideoClassifier` from a preset name or a pretraining config JSON.

    `model` is `vit_base_patch16_224` (the official ViT-B/16) or the path of a pretraining config (for example
    `configs/demo-cpu.json`), whose `arch.args.video_params` give the frame size, frame count, width, depth, heads
    and patch size. `num_frames`, `input_size` and `tubelet_size` left None take the config's (or 16, 224, 2).
    """
    if model in MODEL_PRESETS:
        arch, video_params = dict(MODEL_PRESETS[model]), {}
    elif model.endswith(".json"):
        if not os.path.isfile(model):
            raise FileNotFoundError(f"--model config not found: {model}")
        with open(model) as f:
            video_params = json.load(f).get("arch", {}).get("args", {}).get("video_params")
        if not video_params:
            raise ValueError(f"{model} has no arch.args.video_params: not a pretraining config")
        arch = dict(ARCH_PRESETS.get(video_params.get("arch_config", "base_patch16_224"),
                                     MODEL_PRESETS["vit_base_patch16_224"]))
        arch.update({k: video_params[k] for k in ("img_size", "patch_size", "embed_dim", "depth", "num_heads",
                                                  "mlp_ratio") if k in video_params})
    else:
        raise ValueError(f"unknown --model {model!r}: use one of {sorted(MODEL_PRESETS)} or a pretraining config "
                         "(.json)")
    arch.update(img_size=input_size or arch["img_size"], num_frames=num_frames or video_params.get("num_frames", 16),
                tubelet_size=tubelet_size or video_params.get("tubelet_size", 2), drop_path_rate=drop_path,
                attention=attention)
    return arch


def encoder_state_from_checkpoint(path):
    """The video-encoder tensors of a pretraining checkpoint, names as in `VideoClassifier`, plus what was dropped.

    Accepts our checkpoints and the official ones (`{'state_dict': {'module.video_model....': ...}}`), with or
    without the `module.` prefix.
    """
    ckpt = read_checkpoint(path)
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        keys = list(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{path} has no 'state_dict' entry (found {keys}): not a TVTS pretraining checkpoint")
    state = strip_prefix(ckpt["state_dict"])
    encoder = {k[len(ENCODER_PREFIX):]: v for k, v in state.items() if k.startswith(ENCODER_PREFIX)}
    if not encoder:
        sample = ", ".join(list(state)[:5])
        raise CheckpointError(f"{path} holds no video encoder: no key starts with '{ENCODER_PREFIX}' (first keys: "
                              f"{sample})")
    dropped = {}
    for k in state:
        if not k.startswith(ENCODER_PREFIX):
            top = k.split(".", 1)[0]
            dropped[top] = dropped.get(top, 0) + 1
    return encoder, dropped


def load_pretrained_encoder(model, path):
    """Load every encoder tensor of `model` from the pretraining checkpoint at `path`; the head stays new.

    Raises `CheckpointError` naming every missing, unexpected or wrongly shaped tensor. Returns a report dict.
    """
    encoder, dropped = encoder_state_from_checkpoint(path)
    expected = {k: v for k, v in model.state_dict().items() if not k.startswith("head.")}
    check_state_dict(expected, encoder, f"video encoder of {path}")
    model.load_state_dict(encoder, strict=False)
    new = sorted(k for k in model.state_dict() if k.startswith("head."))
    report = {"checkpoint": str(path), "loaded": len(encoder), "new": new, "dropped": dropped}
    log.info("loaded all %d video-encoder tensors from %s; newly initialised: %s; not used: %s", len(encoder), path,
             ", ".join(new) or "nothing", ", ".join(f"{k} ({n})" for k, n in sorted(dropped.items())) or "nothing")
    return report
