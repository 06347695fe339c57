"""ViT video encoder with 3-D tubelet patches and per-slot token keeping (the TVTS masked encoder).

Tokens are ordered time-major (tubelet slot, then raster position). Each patch token gets the spatial
`pos_embed[1 + s]` plus the learned `temporal_embed[t]`; the CLS token gets `pos_embed[0]` only. Embeddings are
added before masking, then `keep_ind` (B, T/tubelet, n_keep) picks the kept tokens of each slot in the given
order. Joint space-time attention runs over CLS + kept tokens and the final LayerNorm covers all of them.
"""
import torch
import torch.nn as nn

from .blocks import Block, run_blocks
from .registry import VIDEO_ENCODERS

ARCH_PRESETS = {
    "base_patch16_224": dict(img_size=224, patch_size=16, embed_dim=768, depth=12, num_heads=12, mlp_ratio=4.0),
}


class TubeletEmbed(nn.Module):
    """(B, C, T, H, W) -> (B, T/tubelet * patches per frame, D) with a Conv3d of kernel = stride."""

    def __init__(self, in_chans, embed_dim, tubelet_size, patch_size):
        super().__init__()
        size = (tubelet_size, patch_size, patch_size)
        self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=size, stride=size)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


@VIDEO_ENCODERS.register("tubelet_vit")
class VideoTransformer(nn.Module):
    def __init__(self, img_size=224, patch_size=16, in_chans=3, embed_dim=768, depth=12, num_heads=12,
                 mlp_ratio=4.0, qkv_bias=True, num_frames=16, tubelet_size=2, attention="sdpa",
                 grad_checkpointing=False, drop_path_rate=0.0, temporal_embed_std=0.0):
        super().__init__()
        if img_size % patch_size:
            raise ValueError(f"img_size={img_size} is not a multiple of patch_size={patch_size}")
        if num_frames % tubelet_size:
            raise ValueError(f"num_frames={num_frames} is not a multiple of tubelet_size={tubelet_size}")
        self.img_size, self.patch_size, self.in_chans = img_size, patch_size, in_chans
        self.tubelet_size = tubelet_size
        self.embed_dim = embed_dim
        self.num_tubes = num_frames // tubelet_size
        self.patches_per_frame = (img_size // patch_size) ** 2
        self.grad_checkpointing = grad_checkpointing

        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.patches_per_frame + 1, embed_dim))
        self.temporal_embed = nn.Parameter(torch.zeros(1, self.num_tubes, embed_dim))
        self.patch_embed = TubeletEmbed(in_chans, embed_dim, tubelet_size, patch_size)
        rates = torch.linspace(0, drop_path_rate, depth).tolist()  # stochastic depth grows linearly with depth
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias=qkv_bias, attention=attention, drop_path=rate)
            for rate in rates)
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self._init_weights(temporal_embed_std)

    def _init_weights(self, temporal_embed_std):
        # Official order: trunc-normal CLS and pos_embed, then Linear/LayerNorm init; the Conv3d keeps
        # PyTorch's default and temporal_embed stays zero unless temporal_embed_std > 0 (drawn last, so every
        # other tensor gets the same values either way).
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if temporal_embed_std > 0:
            nn.init.trunc_normal_(self.temporal_embed, std=temporal_embed_std)

    def _check_inputs(self, video, keep_ind):
        if video.ndim != 5 or video.shape[2] != self.in_chans:
            raise ValueError(f"video must be (B, T, {self.in_chans}, H, W), got shape {tuple(video.shape)}")
        b, t, _, h, w = video.shape
        if (h, w) != (self.img_size, self.img_size):
            raise ValueError(f"video frames must be {self.img_size}x{self.img_size}, got {h}x{w}")
        if t % self.tubelet_size or not 0 < t // self.tubelet_size <= self.num_tubes:
            raise ValueError(f"video must have a multiple of {self.tubelet_size} frames, at most "
                             f"{self.num_tubes * self.tubelet_size}; got {t}")
        if keep_ind is None:
            return
        n_tubes = t // self.tubelet_size
        if keep_ind.ndim != 3 or keep_ind.shape[0] != b or keep_ind.shape[1] < n_tubes:
            raise ValueError(f"keep_ind must be (B={b}, >= {n_tubes} tubelet slots, n_keep), "
                             f"got shape {tuple(keep_ind.shape)}")
        if keep_ind.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"keep_ind must hold integer indices, got dtype {keep_ind.dtype}")
        if keep_ind.shape[2] > self.patches_per_frame:
            raise ValueError(f"keep_ind keeps {keep_ind.shape[2]} tokens per slot, more than the "
                             f"{self.patches_per_frame} patches of a frame")
        if keep_ind.device.type == "cpu" and keep_ind.numel():  # a GPU check would cost a host sync
            lo, hi = int(keep_ind.min()), int(keep_ind.max())
            if lo < 0 or hi >= self.patches_per_frame:
                raise ValueError(f"keep_ind values must lie in [0, {self.patches_per_frame}), "
                                 f"got values in [{lo}, {hi}]")

    def forward(self, video, keep_ind=None):
        """video (B, T, C, H, W) -> tokens (B, 1 + kept patches, D); `keep_ind=None` keeps every patch."""
        self._check_inputs(video, keep_ind)
        return self.encode(video.permute(0, 2, 1, 3, 4), keep_ind)

    def encode(self, video, keep_ind=None):
        """The unchecked forward on channels-first video (B, C, T, H, W), the downstream layout."""
        b, t = video.shape[0], video.shape[2]
        n_tubes = t // self.tubelet_size
        x = self.patch_embed(video)
        pos = self.pos_embed[:, 1:].unsqueeze(1) + self.temporal_embed[:, :n_tubes].unsqueeze(2)
        x = x.reshape(b, n_tubes, self.patches_per_frame, self.embed_dim) + pos
        if keep_ind is not None:
            index = keep_ind[:, :n_tubes].to(device=x.device, dtype=torch.int64)
            x = torch.gather(x, 2, index.unsqueeze(-1).expand(-1, -1, -1, self.embed_dim))
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(b, -1, -1)
        x = torch.cat([cls, x.reshape(b, -1, self.embed_dim)], dim=1)
        x = run_blocks(self.blocks, x, self.grad_checkpointing)
        return self.norm(x)
