"""CPD: a video tower with a pooled feature and a mean-pooled Hugging Face text tower, each with its own head into
one unit-norm embedding space (Li and Wang, video-text pair discrimination; official `models/cpd.py`).

`model(batch) -> (text_embeddings (B, E), video_embeddings (B, E))`, both L2-normalised. The memory banks and the
NCE loss are the objective's (`model.memory_bank`), not the network's. Attribute names are the official ones
(`visual_encoder`, `textual_encoder`, `vis_emb`, `text_emb`); a released checkpoint's bank and normaliser tensors
(`vis_memory`, `text_memory`, `Z_v`, `Z_t`) are training state and are left out when it is loaded here.
"""
import logging

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import checkpoint
from .registry import ARCHITECTURES, TEXT_ENCODERS, VIDEO_ENCODERS
from .text_encoder import TEXT_PARAM_KEYS
from .transcript_sort import check_keys, token_ids
from .video_transformer import ARCH_PRESETS

log = logging.getLogger(__name__)

VIDEO_MODELS = ("slowonly_resnet", "tubelet_vit")
RESNET_KEYS = ("depth", "width", "shortcut", "shortcut_grad")
VIT_KEYS = ("arch_config", "num_frames", "img_size", "patch_size", "embed_dim", "depth", "num_heads", "mlp_ratio",
            "tubelet_size")
FROZEN_TEXT_MODES = ("train", "eval")


class ViTFeature(nn.Module):
    """The project's tubelet ViT, unmasked, as a pooled feature: its final-norm CLS token."""

    def __init__(self, arch_config="base_patch16_224", **overrides):
        super().__init__()
        self.vit = VIDEO_ENCODERS.build("tubelet_vit", **{**ARCH_PRESETS[arch_config], **overrides})
        self.feature_dim = self.vit.embed_dim

    def forward(self, video):
        return self.vit(video)[:, 0]


def build_video_encoder(video_params):
    params = dict(video_params)
    name = params.pop("model", "slowonly_resnet")
    if name == "slowonly_resnet":
        return VIDEO_ENCODERS.build(name, **params)
    return ViTFeature(**params)


@ARCHITECTURES.register("CPD")
class CPD(nn.Module):
    """Arguments (all from `arch.args`):

    video_params: `model` "slowonly_resnet" (official; `depth` 10/18/34/50, `width` 64, `shortcut` "A",
        `shortcut_grad` false) or "tubelet_vit" (the TVTS ViT's keys: `arch_config`, `num_frames`, overrides).
    text_params: as TVTS (`model`, `pretrained`, `config`): distilbert-base-uncased officially.
    emb_dim: 256. dropout: before the video head (official `dp`, 0 in pretraining).
    text_attention_mask: false (official: the text tower is given the ids only, so padding is attended; the
        mean is over non-padding positions either way) or true (padding masked out).
    frozen_text: "train" (official: the frozen text tower keeps dropout on) or "eval", the mode of the text tower
        while the curriculum keeps it frozen.
    load_checkpoint: a CPD checkpoint (official or ours) loaded strictly after building.
    """

    tokenizer = "huggingface"
    masking = "none"
    ignored_checkpoint_keys = ("Z_v", "Z_t", "vis_memory", "text_memory")

    @staticmethod
    def check_args(video_params, text_params, frozen_text="train", **_):
        model = video_params.get("model", "slowonly_resnet")
        if model not in VIDEO_MODELS:
            raise ValueError(f"arch.args.video_params.model must be one of {VIDEO_MODELS}, got {model!r}")
        check_keys({k: v for k, v in video_params.items() if k != "model"},
                   RESNET_KEYS if model == "slowonly_resnet" else VIT_KEYS, "video_params")
        check_keys(text_params, TEXT_PARAM_KEYS, "text_params")
        if "model" not in text_params:
            raise ValueError("arch.args.text_params.model is required (a HF model name or directory)")
        if frozen_text not in FROZEN_TEXT_MODES:
            raise ValueError(f"arch.args.frozen_text must be one of {FROZEN_TEXT_MODES}, got {frozen_text!r}")

    @staticmethod
    def patches_per_frame(args):
        return None

    @staticmethod
    def default_tokenizer_name(args):
        return args["text_params"]["model"]

    @staticmethod
    def weight_files(args):
        return [("arch.args.load_checkpoint", args["load_checkpoint"], "")] if args.get("load_checkpoint") else []

    @staticmethod
    def architecture_only(args):
        return {**args, "load_checkpoint": "", "text_params": {**args["text_params"], "pretrained": False}}

    def __init__(self, video_params, text_params, emb_dim=256, dropout=0.0, text_attention_mask=False,
                 frozen_text="train", load_checkpoint=""):
        super().__init__()
        self.check_args(video_params, text_params, frozen_text)
        self.visual_encoder = build_video_encoder(video_params)
        self.textual_encoder = TEXT_ENCODERS.build("huggingface", **text_params)
        text_dim = self.textual_encoder.config.hidden_size
        self.embed_dim, self.text_attention_mask, self.frozen_text = emb_dim, text_attention_mask, frozen_text
        self.dropout = nn.Dropout(dropout)
        self.vis_emb = nn.Linear(self.visual_encoder.feature_dim, emb_dim)
        self.text_emb = nn.Sequential(nn.Linear(text_dim, 2 * emb_dim), nn.BatchNorm1d(2 * emb_dim), nn.ReLU(),
                                      nn.Linear(2 * emb_dim, emb_dim))
        if load_checkpoint:
            checkpoint.load_checkpoint(self, load_checkpoint)
        self.train()  # HF returns its models in eval mode; the official trains the text tower's dropout too

    @property
    def text_vocab_size(self):
        return self.textual_encoder.config.vocab_size

    @property
    def text_context_length(self):
        return self.textual_encoder.config.max_position_embeddings

    def compute_video(self, video):
        """video (B, T, 3, H, W) -> unit-norm embeddings (B, E)."""
        return F.normalize(self.vis_emb(self.dropout(self.visual_encoder(video))), dim=1)

    def text_features(self, text):
        """Tokenizer output -> the text tower's mean over non-padding tokens (id != 0, [CLS] and [SEP] included)."""
        ids = token_ids(text)
        mask = None
        if self.text_attention_mask:
            mask = text["attention_mask"] if isinstance(text, dict) else (ids != 0).long()
        hidden = self.textual_encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        keep = (ids != 0).unsqueeze(2).to(hidden.dtype)
        return (hidden * keep).sum(1) / keep.sum(1).clamp(min=1)

    def compute_text(self, text, grad=True):
        """Tokenizer output -> unit-norm embeddings (B, E); `grad=False` runs the text tower without gradient
        (the curriculum's frozen stage), in the mode `frozen_text` says."""
        if grad:
            features = self.text_features(text)
        else:
            was_training = self.textual_encoder.training
            self.textual_encoder.train(was_training and self.frozen_text == "train")
            with torch.no_grad():
                features = self.text_features(text)
            self.textual_encoder.train(was_training)
        return F.normalize(self.text_emb(features), dim=1)

    def forward(self, batch):
        """batch: `text` (tokenizer output, one caption per clip), `video` (B, T, 3, H, W), optional `text_grad`."""
        return self.compute_text(batch["text"], batch.get("text_grad", True)), self.compute_video(batch["video"])
