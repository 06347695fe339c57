"""The TVTSv2 video tower: a CLIP image ViT run over frames with divided space-time attention and tube masking.

Tokens are [CLS, frame 0 patches, frame 1 patches, ...]. CLS gets CLIP's `positional_embedding[0]`; the patch at
raster position p of frame t gets `positional_embedding[1 + p] + temporal_embedding[t]`. Embeddings are added
before masking; `keep_ind` (B, n_keep) then keeps the same patch indices in every frame, in the given order, and
`ln_pre` normalises CLS + kept patches. The number of kept patches per frame is read from `keep_ind` itself.

Two output flavours (`output_tokens`): "all_normed" (the OpenAI B towers) puts every token through `ln_post`
and `proj` and returns all of them for the sort head, the video embedding being token 0; "patches_raw" (the
OpenCLIP H/14 tower) projects `ln_post(CLS)` for the video embedding and returns the patch tokens through `proj`
without `ln_post`. Attribute names are CLIP's (`conv1`, `class_embedding`, `transformer.resblocks.N`, `ln_post`,
`proj`), so CLIP weights load after renaming `in_proj_` to `qkv.` and `out_proj` to `proj`.
"""
import torch
import torch.nn as nn

from .blocks import ACTIVATIONS, SpaceTimeBlock, run_blocks
from .registry import VIDEO_ENCODERS

OUTPUT_TOKENS = ("all_normed", "patches_raw")


class SpaceTimeTransformer(nn.Module):
    def __init__(self, width, layers, heads, mlp_ratio, act_layer, attention):
        super().__init__()
        self.resblocks = nn.ModuleList(SpaceTimeBlock(width, heads, mlp_ratio, act_layer, attention)
                                       for _ in range(layers))
        self.grad_checkpointing = False

    def forward(self, x, frames):
        return run_blocks(self.resblocks, x, self.grad_checkpointing, frames=frames)


@VIDEO_ENCODERS.register("space_time_vit")
class SpaceTimeViT(nn.Module):
    """forward(video (B, T, 3, H, W) or images (B, 3, H, W), keep_ind (B, n_keep) or None) ->
    (sort tokens, video embedding (B, output_dim)); `keep_ind=None` keeps every patch in raster order.

    `temporal_embedding_std` None draws the temporal table from N(0, width^-0.5), as the official; every other
    tensor is CLIP's random init until CLIP weights are loaded, except the temporal attentions, which start at
    zero (see `zero_temporal_attention`).
    """

    def __init__(self, image_size=224, patch_size=16, width=768, layers=12, heads=12, mlp_ratio=4.0,
                 output_dim=512, num_frames=12, act="quick_gelu", output_tokens="all_normed",
                 temporal_embedding_std=None, attention="sdpa", grad_checkpointing=False):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size={image_size} is not a multiple of patch_size={patch_size}")
        if act not in ACTIVATIONS:
            raise ValueError(f"act must be one of {sorted(ACTIVATIONS)}, got {act!r}")
        if output_tokens not in OUTPUT_TOKENS:
            raise ValueError(f"output_tokens must be one of {OUTPUT_TOKENS}, got {output_tokens!r}")
        self.image_size, self.patch_size, self.width, self.num_frames = image_size, patch_size, width, num_frames
        self.output_tokens = output_tokens
        self.patches_per_frame = (image_size // patch_size) ** 2
        scale = width ** -0.5
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(self.patches_per_frame + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = SpaceTimeTransformer(width, layers, heads, mlp_ratio, ACTIVATIONS[act], attention)
        self.transformer.grad_checkpointing = grad_checkpointing
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))
        std = scale if temporal_embedding_std is None else temporal_embedding_std
        self.temporal_embedding = nn.Parameter(std * torch.randn(num_frames, width))

    def _check_inputs(self, video, keep_ind):
        if video.ndim != 5 or video.shape[2] != 3:
            raise ValueError(f"video must be (B, T, 3, H, W) or (B, 3, H, W), got shape {tuple(video.shape)}")
        b, t, _, h, w = video.shape
        if (h, w) != (self.image_size, self.image_size):
            raise ValueError(f"frames must be {self.image_size}x{self.image_size}, got {h}x{w}")
        if not 0 < t <= self.num_frames:
            raise ValueError(f"video has {t} frames; the temporal embedding has {self.num_frames} slots")
        if keep_ind is None:
            return
        if keep_ind.ndim != 2 or keep_ind.shape[0] != b:
            raise ValueError(f"keep_ind must be (B={b}, n_keep): one set of patch indices per clip, shared by every "
                             f"frame (tube masking); got shape {tuple(keep_ind.shape)}")
        if keep_ind.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"keep_ind must hold integer indices, got dtype {keep_ind.dtype}")
        if not 0 < keep_ind.shape[1] <= self.patches_per_frame:
            raise ValueError(f"keep_ind keeps {keep_ind.shape[1]} patches per frame; a frame has "
                             f"{self.patches_per_frame}")
        if keep_ind.device.type == "cpu":  # a GPU check would cost a host sync
            lo, hi = int(keep_ind.min()), int(keep_ind.max())
            if lo < 0 or hi >= self.patches_per_frame:
                raise ValueError(f"keep_ind values must lie in [0, {self.patches_per_frame}), got [{lo}, {hi}]")

    def forward(self, video, keep_ind=None):
        if video.ndim == 4:
            video = video.unsqueeze(1)
        self._check_inputs(video, keep_ind)
        b, t = video.shape[:2]
        x = self.conv1(video.flatten(0, 1)).flatten(2).transpose(1, 2)  # (B*T, P, width)
        pos = self.positional_embedding[1:].unsqueeze(0) + self.temporal_embedding[:t].unsqueeze(1)
        x = x.reshape(b, t, self.patches_per_frame, self.width) + pos
        if keep_ind is not None:
            index = keep_ind.to(device=x.device, dtype=torch.int64)[:, None, :, None]
            x = torch.gather(x, 2, index.expand(-1, t, -1, self.width))
        cls = (self.class_embedding + self.positional_embedding[0]).expand(b, 1, -1)
        x = self.ln_pre(torch.cat([cls.to(x.dtype), x.reshape(b, -1, self.width)], dim=1))
        x = self.transformer(x, frames=t)
        if self.output_tokens == "all_normed":
            tokens = self.ln_post(x) @ self.proj
            return tokens, tokens[:, 0]
        return x[:, 1:] @ self.proj, self.ln_post(x[:, 0]) @ self.proj
