"""TVTS (v1): masked tubelet ViT + Hugging Face transcript encoder + projections + transcript-sort head.

`build_model({"type": "TVTS", "args": ...})` or `TVTS(**config["arch"]["args"])`; `model(batch) -> (text_embeddings,
video_embeddings, sort_logits)` exactly as the official `TVTS.forward`. The `state_dict` keys (`text_model.*`,
`video_model.*`, `txt_proj.1.*`, `vid_proj.0.*`, `pred_model.*`) are those of the official release.
"""
import logging

import torch.nn as nn

from . import checkpoint
from .checkpoint import MAE_INFLATIONS, load_mae_weights
from .registry import ARCHITECTURES, TEXT_ENCODERS, VIDEO_ENCODERS
from .text_encoder import TEXT_PARAM_KEYS, encode_text
from .transcript_sort import SORT_PARAM_KEYS, TranscriptSortModel, build_sort_head, check_attention, check_keys
from .video_transformer import ARCH_PRESETS

log = logging.getLogger(__name__)

VIT_OVERRIDE_KEYS = ("img_size", "patch_size", "embed_dim", "depth", "num_heads", "mlp_ratio", "tubelet_size")
VIDEO_PARAM_KEYS = ("arch_config", "num_frames", "mae_checkpoint", "mae_inflation",
                    "temporal_embed_std") + VIT_OVERRIDE_KEYS


@ARCHITECTURES.register("TVTS")
class TVTS(TranscriptSortModel):
    """Arguments (all from `arch.args`):

    video_params: `arch_config` preset (only `base_patch16_224`), `num_frames` (sizes `temporal_embed`: one slot
        per 2 frames), optional overrides of the preset (`img_size`, `patch_size`, `embed_dim`, `depth`,
        `num_heads`, `mlp_ratio`, `tubelet_size`), `mae_checkpoint` (ImageMAE encoder file used when
        `load_checkpoint` is empty; "" leaves the random init), `mae_inflation` ("repeat", official, or "mean")
        and `temporal_embed_std` (0: `temporal_embed` starts at zero, official; > 0: normal with that std, cut at
        +-2, so tokens carry their time slot from the first step; see docs/faithfulness.md).
    text_params: `model` (HF hub name or local directory), `pretrained`, `config` (overrides), `input` (unused).
    projection: "minimal" (text ReLU+Linear, video Linear) or "" (identity); projection_dim: 256.
    load_checkpoint: a full TVTS checkpoint (official or ours) loaded strictly after building; MAE is skipped.
    n_trans: transcripts per clip K, the sort head's class count (official: 4).
    sort_params: sort transformer `depth` (2), `num_heads` (12), `mlp_ratio` (4); `head` (HEADS, "sort_transformer";
        "segment_sort" and "clip_order" sort the clip's video segments: Table 1), `hidden` and `dropout` (the
        "clip_order" head's) and `stop_gradient` (true: the sort loss does not reach the transcript encoder).
    attention: "sdpa" or "plain" (explicit softmax, the official arithmetic); grad_checkpointing: recompute
        block activations in backward to save memory.
    """

    tokenizer = "huggingface"
    masking = "per_slot"

    @staticmethod
    def check_args(video_params, text_params, projection="minimal", sort_params=None, attention="sdpa", **_):
        """Validate `arch.args` without building anything (so a config error stops a run before any work)."""
        check_keys(video_params, VIDEO_PARAM_KEYS, "video_params")
        check_keys(text_params, TEXT_PARAM_KEYS, "text_params")
        check_keys(sort_params or {}, SORT_PARAM_KEYS, "sort_params")
        check_attention(attention)
        if video_params.get("mae_inflation", "repeat") not in MAE_INFLATIONS:
            raise ValueError(f"arch.args.video_params.mae_inflation must be one of {MAE_INFLATIONS}")
        std = video_params.get("temporal_embed_std", 0.0)
        if isinstance(std, bool) or not isinstance(std, (int, float)) or std < 0:
            raise ValueError(f"arch.args.video_params.temporal_embed_std must be a number >= 0, got {std!r}")
        if video_params.get("arch_config", "base_patch16_224") not in ARCH_PRESETS:
            raise ValueError(f"arch.args.video_params.arch_config {video_params['arch_config']!r} is unknown; known: "
                             f"{list(ARCH_PRESETS)}")
        if projection not in ("minimal", ""):
            raise ValueError(f"arch.args.projection must be 'minimal' or '', got {projection!r}")
        if "model" not in text_params:
            raise ValueError("arch.args.text_params.model is required (a HF model name or directory)")

    @staticmethod
    def patches_per_frame(args):
        """Patch tokens per frame of the video tower these `arch.args` build (what the loaders' maskers draw from)."""
        vp = args["video_params"]
        vit = {**ARCH_PRESETS[vp.get("arch_config", "base_patch16_224")], **vp}
        return (vit["img_size"] // vit["patch_size"]) ** 2

    @staticmethod
    def default_tokenizer_name(args):
        return args["text_params"]["model"]

    @staticmethod
    def weight_files(args):
        """(config key, path, hint) of each weight file these `arch.args` will read (a full checkpoint replaces
        ImageMAE)."""
        if args.get("load_checkpoint"):
            return [("arch.args.load_checkpoint", args["load_checkpoint"], "")]
        mae = args.get("video_params", {}).get("mae_checkpoint", "")
        return [("arch.args.video_params.mae_checkpoint", mae,
                 "download mae_pretrain_vit_base.pth from the ImageMAE release")] if mae else []

    @staticmethod
    def architecture_only(args):
        """`arch.args` that build the same network without loading or downloading any weights."""
        return {**args, "load_checkpoint": "",
                "video_params": {**args["video_params"], "mae_checkpoint": ""},
                "text_params": {**args["text_params"], "pretrained": False}}

    def __init__(self, video_params, text_params, projection_dim=256, projection="minimal", load_checkpoint="",
                 n_trans=4, sort_params=None, attention="sdpa", grad_checkpointing=False):
        super().__init__()
        video_params, text_params, sort_params = dict(video_params), dict(text_params), dict(sort_params or {})
        self.check_args(video_params=video_params, text_params=text_params, projection=projection,
                        sort_params=sort_params, attention=attention)
        self.n_trans = n_trans

        self.text_model = TEXT_ENCODERS.build("huggingface", **text_params)
        text_dim = self.text_model.config.hidden_size

        arch = video_params.get("arch_config", "base_patch16_224")
        vit_args = {**ARCH_PRESETS[arch], **{k: video_params[k] for k in VIT_OVERRIDE_KEYS if k in video_params}}
        self.video_model = VIDEO_ENCODERS.build(
            "tubelet_vit", num_frames=video_params.get("num_frames", 16), attention=attention,
            grad_checkpointing=grad_checkpointing, temporal_embed_std=video_params.get("temporal_embed_std", 0.0),
            **vit_args)
        video_dim = self.video_model.embed_dim
        mae = video_params.get("mae_checkpoint", "")
        if not load_checkpoint:
            if mae:
                load_mae_weights(self.video_model, mae, video_params.get("mae_inflation", "repeat"))
            else:
                log.info("no mae_checkpoint and no load_checkpoint: the video encoder keeps its random init")

        if projection == "minimal":
            self.txt_proj = nn.Sequential(nn.ReLU(), nn.Linear(text_dim, projection_dim))
            self.vid_proj = nn.Sequential(nn.Linear(video_dim, projection_dim))
        else:
            self.txt_proj, self.vid_proj = nn.Identity(), nn.Identity()

        if text_dim != video_dim:
            raise ValueError(f"the sort head attends over text ({text_dim}-d) and video ({video_dim}-d) features "
                             "together: their widths must match")
        self.pred_model, self.sort_stop_gradient = build_sort_head(
            video_dim, n_trans, attention, grad_checkpointing, {"depth": 2, "num_heads": 12, "mlp_ratio": 4.0},
            sort_params, video_segments=True)
        if load_checkpoint:
            checkpoint.load_checkpoint(self, load_checkpoint)
        self.train()  # HF returns its models in eval mode; the official puts the text model in train mode

    @property
    def text_vocab_size(self):
        return self.text_model.config.vocab_size

    @property
    def text_context_length(self):
        return self.text_model.config.max_position_embeddings

    def compute_text(self, text):
        """Tokenizer output for N transcripts -> (features before projection (N, D), projected (N, P))."""
        features = encode_text(self.text_model, text)
        return features, self.txt_proj(features)

    def compute_video(self, video, keep_ind=None):
        """video (B, T, 3, H, W) -> (all output tokens (B, 1 + kept, D), projected CLS (B, P))."""
        tokens = self.video_model(video, keep_ind)
        return tokens, self.vid_proj(tokens[:, 0])

    def segment_features(self, video, keep_ind, k):
        """The CLS output of each of the K equal runs of frames (one per transcript window under the official
        sampler), encoded alone from temporal slot 0 with the tokens `keep_ind` keeps of its slots: (B, K, D)."""
        b, t = video.shape[:2]
        frames = k * self.video_model.tubelet_size
        if t % frames:
            raise ValueError(f"{t} frames do not split into {k} segments of whole tubelets of "
                             f"{self.video_model.tubelet_size}")
        segments = video.reshape(b * k, t // k, *video.shape[2:])
        if keep_ind is not None:
            slots = t // self.video_model.tubelet_size
            keep_ind = keep_ind[:, :slots].reshape(b * k, slots // k, keep_ind.shape[2])
        return self.video_model(segments, keep_ind)[:, 0].reshape(b, k, -1)
