"""TVTSv2: CLIP towers turned into a video-text model with divided space-time attention, a partly frozen text
tower and the transcript-sort head.

One class for every size: `clip_config` picks a preset of `CLIP_CONFIGS` ("ViT-B-32", "ViT-B-16", "ViT-H-14"),
and `video_params` / `text_params` override any of its fields (tiny test models are overrides too). The
`state_dict` keys are the official ones: `text_model.resblocks.*` (the CLIP text blocks),
`text_token_embedding.weight`, `text_positional_embedding`, `text_ln_final.*`, `text_projection`,
`video_model.*` (the video tower, CLIP visual names plus `temporal_embedding`, `timeattn`, `ln_3`), `pred_model.*`.

Text: token + position embeddings, causal blocks, `ln_final`, the EOT token through `text_projection`; only the
last `trainable_blocks` blocks are trained (the others get requires_grad=False). The same projected EOT feature
serves the contrastive loss and (detached) the sort head. Video: the CLS embedding projected by `proj`; the sort
head reads every token after `ln_post` + `proj` (B towers) or the patch tokens through `proj` alone (H/14).
"""
import copy
import logging

import torch
import torch.nn as nn

from . import checkpoint
from .clip_text import eot_features
from .clip_weights import load_clip_weights
from .registry import ARCHITECTURES, TEXT_ENCODERS, VIDEO_ENCODERS
from .space_time_vit import OUTPUT_TOKENS
from .transcript_sort import (SORT_PARAM_KEYS, TranscriptSortModel, build_sort_head, check_attention, check_keys,
                               token_ids)

log = logging.getLogger(__name__)

_B_TEXT = {"context_length": 77, "vocab_size": 49408, "width": 512, "layers": 12, "heads": 8, "trainable_blocks": 3}
CLIP_CONFIGS = {
    "ViT-B-32": {"embed_dim": 512, "act": "quick_gelu", "sort_heads": 8, "text": _B_TEXT,
                 "vision": {"image_size": 224, "patch_size": 32, "width": 768, "layers": 12, "heads": 12,
                            "mlp_ratio": 4.0, "output_tokens": "all_normed"}},
    "ViT-B-16": {"embed_dim": 512, "act": "quick_gelu", "sort_heads": 8, "text": _B_TEXT,
                 "vision": {"image_size": 224, "patch_size": 16, "width": 768, "layers": 12, "heads": 12,
                            "mlp_ratio": 4.0, "output_tokens": "all_normed"}},
    "ViT-H-14": {"embed_dim": 1024, "act": "gelu", "sort_heads": 16,
                 "text": {"context_length": 77, "vocab_size": 49408, "width": 1024, "layers": 24, "heads": 16,
                          "trainable_blocks": 6},
                 "vision": {"image_size": 224, "patch_size": 14, "width": 1280, "layers": 32, "heads": 16,
                            "mlp_ratio": 4.0, "output_tokens": "patches_raw"}},
}
VIDEO_PARAM_KEYS = tuple(CLIP_CONFIGS["ViT-B-16"]["vision"]) + ("num_frames", "temporal_embedding_std")
TEXT_PARAM_KEYS = tuple(_B_TEXT)


def resolved_config(clip_config, embed_dim=None, act=None, video_params=None, text_params=None):
    """The preset `clip_config` with the given overrides applied (what the network is built from)."""
    if clip_config not in CLIP_CONFIGS:
        raise ValueError(f"arch.args.clip_config {clip_config!r} is unknown; known: {sorted(CLIP_CONFIGS)}")
    cfg = copy.deepcopy(CLIP_CONFIGS[clip_config])
    check_keys(video_params or {}, VIDEO_PARAM_KEYS, "video_params")
    check_keys(text_params or {}, TEXT_PARAM_KEYS, "text_params")
    cfg["vision"].update({"num_frames": 12, "temporal_embedding_std": None, **(video_params or {})})
    cfg["text"].update(text_params or {})
    if embed_dim is not None:
        cfg["embed_dim"] = embed_dim
    if act is not None:
        cfg["act"] = act
    return cfg


@ARCHITECTURES.register("TVTSv2")
class TVTSv2(TranscriptSortModel):
    """Arguments (all from `arch.args`):

    clip_config: "ViT-B-32", "ViT-B-16" or "ViT-H-14" (widths, depths, heads, patch size, activation: QuickGELU
        for the OpenAI towers, GELU for H/14, and which tokens the sort head reads).
    clip_checkpoint: a local CLIP file (OpenAI `.pt` TorchScript archive, OpenCLIP `.bin`/`.safetensors`/`.pt`)
        that initialises every tensor CLIP has, when `load_checkpoint` is empty; "" keeps the random init.
    load_checkpoint: a TVTSv2 checkpoint (the released `TVTSv2_*.pth`, or ours) loaded strictly after building.
    video_params: overrides of the vision preset (`image_size`, `patch_size`, `width`, `layers`, `heads`,
        `mlp_ratio`, `output_tokens`), `num_frames` (temporal slots, 12) and `temporal_embedding_std` (None:
        width^-0.5, official).
    text_params: overrides of the text preset (`context_length`, `vocab_size`, `width`, `layers`, `heads`) and
        `trainable_blocks` (the last 3 of 12 for B, 6 of 24 for H; null trains every block).
    embed_dim, act: overrides of the output width and the activation.
    n_trans: transcripts per clip K (4); sort_params: `depth` (2), `num_heads` (the preset's: 8 for B, 16 for H),
        `mlp_ratio` (4), `head` ("sort_transformer"), `stop_gradient` (true). attention: "sdpa" or "plain";
        grad_checkpointing: recompute block activations.
    """

    tokenizer = "clip"
    masking = "tube"
    optional_checkpoint_prefixes = ("pred_model.",)

    @staticmethod
    def check_args(clip_config="ViT-B-16", embed_dim=None, act=None, video_params=None, text_params=None,
                   sort_params=None, attention="sdpa", **_):
        cfg = resolved_config(clip_config, embed_dim, act, video_params, text_params)
        check_keys(sort_params or {}, SORT_PARAM_KEYS, "sort_params")
        check_attention(attention)
        if cfg["vision"]["output_tokens"] not in OUTPUT_TOKENS:
            raise ValueError(f"arch.args.video_params.output_tokens must be one of {OUTPUT_TOKENS}")
        trainable = cfg["text"]["trainable_blocks"]
        if trainable is not None and not 0 <= trainable <= cfg["text"]["layers"]:
            raise ValueError(f"arch.args.text_params.trainable_blocks must lie in [0, {cfg['text']['layers']}] or "
                             f"be null, got {trainable!r}")
        return cfg

    @staticmethod
    def patches_per_frame(args):
        """Patch tokens per frame of the video tower these `arch.args` build (what the loaders' maskers draw from)."""
        vision = resolved_config(args.get("clip_config", "ViT-B-16"), video_params=args.get("video_params"))["vision"]
        return (vision["image_size"] // vision["patch_size"]) ** 2

    @staticmethod
    def weight_files(args):
        """(config key, path, hint) of each weight file these `arch.args` will read (a full checkpoint replaces
        CLIP's)."""
        if args.get("load_checkpoint"):
            return [("arch.args.load_checkpoint", args["load_checkpoint"], "")]
        clip = args.get("clip_checkpoint", "")
        return [("arch.args.clip_checkpoint", clip, "an OpenAI CLIP .pt or an OpenCLIP checkpoint, downloaded "
                 "beforehand")] if clip else []

    @staticmethod
    def architecture_only(args):
        return {**args, "load_checkpoint": "", "clip_checkpoint": ""}

    def __init__(self, clip_config="ViT-B-16", clip_checkpoint="", load_checkpoint="", video_params=None,
                 text_params=None, embed_dim=None, act=None, n_trans=4, sort_params=None, attention="sdpa",
                 grad_checkpointing=False):
        super().__init__()
        cfg = self.check_args(clip_config, embed_dim, act, video_params, text_params, sort_params, attention)
        self.n_trans = n_trans
        text, dim = cfg["text"], cfg["embed_dim"]

        self.text_model = TEXT_ENCODERS.build("clip", width=text["width"], layers=text["layers"],
                                              heads=text["heads"], act=cfg["act"], attention=attention,
                                              grad_checkpointing=grad_checkpointing)
        self.text_token_embedding = nn.Embedding(text["vocab_size"], text["width"])
        self.text_positional_embedding = nn.Parameter(torch.empty(text["context_length"], text["width"]))
        self.text_ln_final = nn.LayerNorm(text["width"])
        self.text_projection = nn.Parameter(torch.empty(text["width"], dim))
        self._init_text()

        self.video_model = VIDEO_ENCODERS.build("space_time_vit", output_dim=dim, act=cfg["act"],
                                                attention=attention, grad_checkpointing=grad_checkpointing,
                                                **cfg["vision"])
        self.pred_model, self.sort_stop_gradient = build_sort_head(
            dim, n_trans, attention, grad_checkpointing,
            {"depth": 2, "num_heads": cfg["sort_heads"], "mlp_ratio": 4.0}, sort_params)
        if load_checkpoint:
            checkpoint.load_checkpoint(self, load_checkpoint)
        elif clip_checkpoint:
            load_clip_weights(self, clip_checkpoint)
        else:
            log.info("no clip_checkpoint and no load_checkpoint: TVTSv2 keeps its random init")
        self.text_model.freeze_all_but_last(text["trainable_blocks"])

    def _init_text(self):
        """CLIP's initialisation of the text tower (used when no weights are loaded)."""
        width, layers = self.text_positional_embedding.shape[1], len(self.text_model.resblocks)
        nn.init.normal_(self.text_token_embedding.weight, std=0.02)
        nn.init.normal_(self.text_positional_embedding, std=0.01)
        proj_std, attn_std, fc_std = (width ** -0.5) * ((2 * layers) ** -0.5), width ** -0.5, (2 * width) ** -0.5
        for block in self.text_model.resblocks:
            nn.init.normal_(block.attn.in_proj_weight, std=attn_std)
            nn.init.normal_(block.attn.out_proj.weight, std=proj_std)
            nn.init.normal_(block.mlp.c_fc.weight, std=fc_std)
            nn.init.normal_(block.mlp.c_proj.weight, std=proj_std)
        nn.init.normal_(self.text_projection, std=width ** -0.5)

    @property
    def text_vocab_size(self):
        return self.text_token_embedding.num_embeddings

    @property
    def text_context_length(self):
        return self.text_positional_embedding.shape[0]

    def compute_text(self, text):
        """(N, L) CLIP token ids (L <= context length; padding after EOT does not change the result) ->
        (projected EOT features (N, P), the same features)."""
        ids = token_ids(text)
        context = self.text_positional_embedding.shape[0]
        if ids.ndim != 2 or ids.shape[1] > context:
            raise ValueError(f"text must be (N, L <= {context}) CLIP token ids, got shape {tuple(ids.shape)}")
        x = self.text_token_embedding(ids) + self.text_positional_embedding[:ids.shape[1]]
        features = eot_features(self.text_ln_final(self.text_model(x)), ids, self.text_projection)
        return features, features

    def compute_video(self, video, keep_ind=None):
        """video (B, T, 3, H, W), keep_ind (B, n_keep) -> (sort tokens, projected CLS (B, P))."""
        return self.video_model(video, keep_ind)
