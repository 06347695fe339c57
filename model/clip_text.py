"""The CLIP text tower: token + position embeddings, causal transformer blocks, final LayerNorm, and the EOT token
(the highest id of each sequence) through `text_projection`.

The blocks are the `text_model` of TVTSv2 (`text_model.resblocks.N.attn.in_proj_weight`, ... as in CLIP); the
embedding tables, final norm and projection belong to the architecture, whose attribute names the released
checkpoints fix. Because the mask is causal, the EOT output does not depend on the padding after it, so batches
may be padded to their longest sequence instead of the full context.
"""
import functools

import torch
import torch.nn as nn

from .blocks import ACTIVATIONS, InProjAttention, ResidualAttentionBlock, run_blocks
from .registry import TEXT_ENCODERS


@TEXT_ENCODERS.register("clip")
class ClipTextTransformer(nn.Module):
    """(N, L, width) embeddings -> (N, L, width); the attention is causal."""

    def __init__(self, width=512, layers=12, heads=8, act="quick_gelu", attention="sdpa", grad_checkpointing=False):
        super().__init__()
        if act not in ACTIVATIONS:
            raise ValueError(f"act must be one of {sorted(ACTIVATIONS)}, got {act!r}")
        attn = functools.partial(InProjAttention, causal=True, impl=attention)
        self.resblocks = nn.ModuleList(ResidualAttentionBlock(width, heads, 4.0, ACTIVATIONS[act], attn)
                                       for _ in range(layers))
        self.grad_checkpointing = grad_checkpointing

    def forward(self, x):
        return run_blocks(self.resblocks, x, self.grad_checkpointing)

    def freeze_all_but_last(self, trainable_blocks):
        """requires_grad=False for every block but the last `trainable_blocks` (None: all stay trainable)."""
        if trainable_blocks is None:
            return
        first = len(self.resblocks) - trainable_blocks
        for i, block in enumerate(self.resblocks):
            block.requires_grad_(i >= first)


def eot_features(hidden, token_ids, projection):
    """The hidden state at each sequence's highest token id (CLIP's end-of-text) times `projection`."""
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), token_ids.argmax(dim=-1)] @ projection
