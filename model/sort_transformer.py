"""The transcript-sorting head: joint attention over video tokens and (detached) transcript features.

Text tokens carry one shared type embedding and no position embedding, so permuting the transcripts permutes
the logits identically: predicting each transcript's index is the same task as un-shuffling them.
"""
import torch
import torch.nn as nn

from .blocks import Block, run_blocks
from .registry import HEADS


@HEADS.register("sort_transformer")
class SortTransformer(nn.Module):
    def __init__(self, embed_dim=768, depth=2, num_heads=12, mlp_ratio=4.0, num_classes=4, attention="sdpa",
                 grad_checkpointing=False):
        super().__init__()
        self.grad_checkpointing = grad_checkpointing
        # Official init: type_embed at zero and PyTorch's default Linear init (no trunc-normal pass).
        self.type_embed = nn.Parameter(torch.zeros(1, 2, embed_dim))
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio, attention=attention) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Linear(embed_dim, num_classes)

    def forward(self, text, video_tokens):
        """text (B, K, D), video_tokens (B, N, D) -> logits (B, K, num_classes)."""
        k = text.shape[1]
        x = torch.cat([video_tokens + self.type_embed[:, :1], text + self.type_embed[:, 1:]], dim=1)
        x = run_blocks(self.blocks, x, self.grad_checkpointing)
        return self.head(self.norm(x[:, -k:]))
