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

    def transcript_features(self, text, video_tokens):
        """text (B, K, D), video_tokens (B, N, D) -> the normed output features of the K transcript tokens."""
        x = torch.cat([video_tokens + self.type_embed[:, :1], text + self.type_embed[:, 1:]], dim=1)
        return self.joint_features(x, text.shape[1])

    def joint_features(self, x, k):
        """Joint attention over the tokens x (B, N, D) -> the normed outputs of the last k (the items sorted)."""
        return self.norm(run_blocks(self.blocks, x, self.grad_checkpointing)[:, -k:])

    def forward(self, text, video_tokens):
        """text (B, K, D), video_tokens (B, N, D) -> logits (B, K, num_classes): each transcript's position (the
        official K-way head; with the `factorial` sort loss, the per-slot scores of an order)."""
        return self.head(self.transcript_features(text, video_tokens))


@HEADS.register("pairwise_sort")
class PairwiseSortHead(SortTransformer):
    """The Table 3 "pairwise" variant (ours: the paper gives no code): the same joint transformer, then one
    binary logit per ordered pair of transcripts, "is i earlier than j", from Linear(2D -> 1) on [h_i; h_j]."""

    def __init__(self, embed_dim=768, depth=2, num_heads=12, mlp_ratio=4.0, num_classes=4, attention="sdpa",
                 grad_checkpointing=False):
        super().__init__(embed_dim, depth, num_heads, mlp_ratio, num_classes, attention, grad_checkpointing)
        self.head = nn.Linear(2 * embed_dim, 1)

    def forward(self, text, video_tokens):
        """-> pair logits (B, K, K): entry (i, j) scores "transcript i comes before transcript j" (diagonal unused)."""
        h = self.transcript_features(text, video_tokens)
        k = h.shape[1]
        pairs = torch.cat([h.unsqueeze(2).expand(-1, -1, k, -1), h.unsqueeze(1).expand(-1, k, -1, -1)], dim=-1)
        return self.head(pairs).squeeze(-1)
