"""Heads that sort the clip's video segments instead of its transcripts: the paper's Table 1 comparisons (ours: the
paper gives names and results, not code; docs/faithfulness.md rows 104-105).

A clip's frames are cut into its K segments (one per transcript window) and each segment is encoded on its own by
the video tower (`TranscriptSortModel.segment_features`), so a segment's features say nothing of where it sat.
These heads set `sorts_video_segments`, which makes the model hand them the (B, K, D) segment features in temporal
order instead of the whole clip's tokens; their outputs are arranged so that the labels are the identity order,
as for transcripts.
"""
import itertools
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .registry import HEADS
from .sort_transformer import SortTransformer

EVAL_SHUFFLE_SEED = 0


@HEADS.register("segment_sort")
class SegmentSortHead(SortTransformer):
    """MERLOT-like (both modalities): the K transcripts, in order and each with a learned order embedding, and the K
    segment features go through the joint transformer; each segment's output token is classified K-way into its
    position. The head sees no segment position, so nothing needs shuffling (as for the official transcript sort)."""

    sorts_video_segments = True

    def __init__(self, embed_dim=768, depth=2, num_heads=12, mlp_ratio=4.0, num_classes=4, attention="sdpa",
                 grad_checkpointing=False):
        super().__init__(embed_dim, depth, num_heads, mlp_ratio, num_classes, attention, grad_checkpointing)
        self.order_embed = nn.Parameter(torch.zeros(1, num_classes, embed_dim))
        nn.init.trunc_normal_(self.order_embed, std=0.02)

    def forward(self, text, segments):
        """text (B, K, D) in temporal order, segments (B, K, D) -> logits (B, K, K): each segment's position."""
        k = segments.shape[1]
        context = text + self.type_embed[:, 1:] + self.order_embed[:, :text.shape[1]]
        x = torch.cat([context, segments + self.type_embed[:, :1]], dim=1)
        return self.head(self.joint_features(x, k))


@HEADS.register("clip_order")
class ClipOrderHead(nn.Module):
    """VCOP (video only; Xu et al. 2019, clip order prediction): the K segment features are shuffled, every pair
    (i < j) of the shuffled sequence is concatenated and mapped by Linear(2D -> hidden) + ReLU, the pair features
    are concatenated, dropped out and classified into the K! orders by one Linear. Transcripts are not read.

    Training draws a permutation per clip from the global generator; evaluation draws them from a generator seeded
    with EVAL_SHUFFLE_SEED at every call, so validation figures are reproducible. The returned (B, K!) logits are
    relabelled so that class `permutations(K)[c]` means "segment i was at position order[i]" for the segments in
    their temporal order: the true class is the identity (class 0), whatever the shuffle.
    """

    sorts_video_segments = True

    def __init__(self, embed_dim=768, num_classes=4, hidden=512, dropout=0.5):
        super().__init__()
        k = num_classes
        self.pair = nn.Linear(2 * embed_dim, hidden)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(k * (k - 1) // 2 * hidden, math.factorial(k))
        orders = torch.tensor(list(itertools.permutations(range(k))))
        self.register_buffer("orders", orders, persistent=False)
        # the class index of an order, looked up by its base-K code
        codes = (orders * k ** torch.arange(k - 1, -1, -1)).sum(1)
        lookup = torch.full((k ** k,), -1, dtype=torch.long)
        lookup[codes] = torch.arange(len(orders))
        self.register_buffer("class_of_code", lookup, persistent=False)
        self.register_buffer("powers", k ** torch.arange(k - 1, -1, -1), persistent=False)

    def order_logits(self, shuffled):
        """(B, K, D) segment features in the order given -> (B, K!) logits; class c: the given sequence's
        segments come from positions `orders[c]`."""
        i, j = torch.triu_indices(shuffled.shape[1], shuffled.shape[1], 1, device=shuffled.device)
        pairs = F.relu(self.pair(torch.cat([shuffled[:, i], shuffled[:, j]], dim=-1)))
        return self.head(self.dropout(pairs.flatten(1)))

    def draw_permutations(self, b, k, device):
        generator = None
        if not self.training:
            generator = torch.Generator().manual_seed(EVAL_SHUFFLE_SEED)
        return torch.rand(b, k, generator=generator).argsort(1).to(device)

    def forward(self, text, segments, perm=None):
        """segments (B, K, D) in temporal order (text is not read); perm (B, K): shuffled slot s holds segment
        perm[:, s] (drawn when None) -> (B, K!) logits relabelled to the temporal order (see the class doc)."""
        b, k = segments.shape[:2]
        perm = self.draw_permutations(b, k, segments.device) if perm is None else perm
        raw = self.order_logits(segments[torch.arange(b, device=segments.device).unsqueeze(1), perm])
        # class c of the temporal order (segment i at position orders[c, i]) is raw class orders[c] o perm
        composed = self.orders[:, perm].transpose(0, 1)  # (B, K!, K): orders[c, perm[b, s]]
        return raw.gather(1, self.class_of_code[(composed * self.powers).sum(-1)])
