"""Transformer layers shared by every tower: attention variants, MLPs, and the pre-norm residual blocks that take
their attention layer as an argument.

Two parameter layouts exist because the released checkpoints use both: `Block` has the ViT names of the TVTS v1
encoder and sort head (`norm1`, `attn.qkv`, `attn.proj`, `norm2`, `mlp.fc1`, `mlp.fc2`; with `QVBiasAttention`, the
VideoMAE/SimVTP layout: `attn.qkv` without bias beside `attn.q_bias` and `attn.v_bias`); `ResidualAttentionBlock`
has the CLIP names of the TVTSv2 towers (`ln_1`, `attn`, `ln_2`, `mlp.c_fc`, `mlp.c_proj`). `SpaceTimeBlock` is the
CLIP block with a second, temporal attention (divided space-time attention); it is a block variant, not another
encoder.
"""
import functools
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

ATTENTION_IMPLS = ("sdpa", "plain")


def attend(q, k, v, scale, impl="sdpa", causal=False, bias=None):
    """softmax(q k^T * scale + bias) v over the last two dimensions (any leading batch dimensions); `causal` hides
    the keys after each query; `bias` is an additive mask broadcast over the scores (SimVTP: 0 for a token, -10000
    for padding). `impl="plain"` computes the softmax explicitly, as the official code does."""
    if impl == "sdpa":
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=scale, is_causal=causal)
    attn = (q @ k.transpose(-2, -1)) * scale
    if bias is not None:
        attn = attn + bias
    if causal:
        hidden = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool, device=q.device).triu(1)
        attn = attn.masked_fill(hidden, float("-inf"))
    return attn.softmax(dim=-1) @ v


def _check_heads(dim, num_heads, impl):
    if dim % num_heads:
        raise ValueError(f"attention width {dim} is not divisible by num_heads={num_heads}")
    if impl not in ATTENTION_IMPLS:
        raise ValueError(f"attention impl must be one of {ATTENTION_IMPLS}, got {impl!r}")


class Attention(nn.Module):
    """Multi-head self-attention over all tokens with a fused `qkv` projection and an output `proj`."""

    def __init__(self, dim, num_heads, qkv_bias=True, impl="sdpa"):
        super().__init__()
        _check_heads(dim, num_heads, impl)
        self.num_heads, self.head_dim, self.impl = num_heads, dim // num_heads, impl
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def _heads(self, x):
        """(B, N, C) -> q, k, v each (B, heads, N, head_dim)."""
        b, n, _ = x.shape
        return self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)

    def _merge(self, x):
        """(B, heads, N, head_dim) -> proj((B, N, C))."""
        b, _, n, _ = x.shape
        return self.proj(x.transpose(1, 2).reshape(b, n, -1))

    def forward(self, x):
        q, k, v = self._heads(x)
        return self._merge(attend(q, k, v, self.scale, self.impl))


class QVBiasAttention(Attention):
    """`Attention` in VideoMAE's layout: `qkv` has no bias; the query and value biases are the parameters `q_bias`
    and `v_bias`, and the key has none. `bias` (forward): an additive mask over the keys, (B, 1, 1, N) or None."""

    def __init__(self, dim, num_heads, qkv_bias=True, impl="sdpa"):
        super().__init__(dim, num_heads, qkv_bias=False, impl=impl)
        self.q_bias = nn.Parameter(torch.zeros(dim)) if qkv_bias else None
        self.v_bias = nn.Parameter(torch.zeros(dim)) if qkv_bias else None

    def forward(self, x, bias=None):
        qkv_bias = None if self.q_bias is None else torch.cat([self.q_bias, torch.zeros_like(self.q_bias),
                                                               self.v_bias])
        b, n, _ = x.shape
        qkv = F.linear(x, self.qkv.weight, qkv_bias).reshape(b, n, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        return self._merge(attend(q, k, v, self.scale, self.impl, bias=bias))


class FactorisedAttention(Attention):
    """Attention within groups of patch tokens for a sequence [CLS, frame 0 patches, frame 1 patches, ...].

    The CLS query attends to every token. With `axis="space"` each patch attends to the patches of its own frame,
    with `axis="time"` to the patches at the same kept index in every frame; either way the CLS key and value are
    added to every group. Kept indices must mean the same place in every frame (tube masking).
    """

    def forward(self, x, frames, axis):
        q, k, v = self._heads(x)
        b, h, n, d = q.shape
        per_frame = (n - 1) // frames
        cls_out = attend(q[:, :, :1], k, v, self.scale, self.impl)

        def groups(t):  # (B, h, 1 + T * P, d) patches -> (B, h, groups, members, d)
            t = t[:, :, 1:].reshape(b, h, frames, per_frame, d)
            return t if axis == "space" else t.transpose(2, 3)

        qg, kg, vg = groups(q), groups(k), groups(v)
        size = qg.shape[2]
        kg = torch.cat([k[:, :, None, :1].expand(-1, -1, size, -1, -1), kg], dim=3)
        vg = torch.cat([v[:, :, None, :1].expand(-1, -1, size, -1, -1), vg], dim=3)
        out = attend(qg, kg, vg, self.scale, self.impl)
        if axis == "time":
            out = out.transpose(2, 3)
        return self._merge(torch.cat([cls_out, out.reshape(b, h, n - 1, d)], dim=2))


class InProjAttention(nn.Module):
    """Self-attention with `nn.MultiheadAttention`'s parameter names (`in_proj_weight`, `in_proj_bias`,
    `out_proj`), as the CLIP text tower stores them; `causal=True` is CLIP's text mask."""

    def __init__(self, dim, num_heads, causal=False, impl="sdpa"):
        super().__init__()
        _check_heads(dim, num_heads, impl)
        self.num_heads, self.head_dim, self.impl, self.causal = num_heads, dim // num_heads, impl, causal
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, x):
        b, n, c = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        q, k, v = qkv.reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        out = attend(q, k, v, self.head_dim ** -0.5, self.impl, self.causal)
        return self.out_proj(out.transpose(1, 2).reshape(b, n, c))


class QuickGELU(nn.Module):
    """x * sigmoid(1.702 x): the activation of OpenAI's CLIP towers."""

    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


ACTIVATIONS = {"gelu": nn.GELU, "quick_gelu": QuickGELU}


class Mlp(nn.Module):
    def __init__(self, dim, hidden_dim, act_layer=nn.GELU):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def drop_path(x, rate, training):
    """Stochastic depth: zero a residual branch for a random subset of samples, rescaling the rest."""
    if rate == 0.0 or not training:
        return x
    keep = 1.0 - rate
    mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
    return x * mask / keep


class Block(nn.Module):
    """x + Attn(LN(x)), then x + MLP(LN(x)); LayerNorm eps 1e-6, exact-erf GELU, no dropout (ViT names).

    `attn_layer` builds the attention from (dim, num_heads, qkv_bias=, impl=); extra forward arguments go to it.
    `drop_path` (stochastic depth on both branches) is 0 in pretraining and in the official downstream runs;
    fine-tuning can turn it on.
    """

    def __init__(self, dim, num_heads, mlp_ratio=4.0, qkv_bias=True, attention="sdpa", drop_path=0.0,
                 attn_layer=Attention, act_layer=nn.GELU):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = attn_layer(dim, num_heads, qkv_bias=qkv_bias, impl=attention)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer)
        self.drop_path = drop_path

    def forward(self, x, **attn_args):
        x = x + drop_path(self.attn(self.norm1(x), **attn_args), self.drop_path, self.training)
        return x + drop_path(self.mlp(self.norm2(x)), self.drop_path, self.training)


class ClipMlp(nn.Sequential):
    def __init__(self, dim, hidden_dim, act_layer):
        super().__init__(OrderedDict([("c_fc", nn.Linear(dim, hidden_dim)), ("gelu", act_layer()),
                                      ("c_proj", nn.Linear(hidden_dim, dim))]))


class ResidualAttentionBlock(nn.Module):
    """x + Attn(LN(x)), then x + MLP(LN(x)) with CLIP's names and LayerNorm eps 1e-5.

    `attn_layer(dim, num_heads)` builds the attention (for the text tower: causal `InProjAttention`); extra
    forward arguments go to it.
    """

    def __init__(self, dim, num_heads, mlp_ratio=4.0, act_layer=QuickGELU, attn_layer=Attention):
        super().__init__()
        self.attn = attn_layer(dim, num_heads)
        self.ln_1 = nn.LayerNorm(dim)
        self.mlp = ClipMlp(dim, int(dim * mlp_ratio), act_layer)
        self.ln_2 = nn.LayerNorm(dim)

    def forward(self, x, **attn_args):
        x = x + self.attn(self.ln_1(x), **attn_args)
        return x + self.mlp(self.ln_2(x))


def zero_temporal_attention(attn):
    """The TVTSv2 start for a new temporal attention: q, k, v all zero (the output is exactly zero, so the block
    starts as its image block) and the output projection's weight all ones, so gradients still reach qkv."""
    with torch.no_grad():
        attn.qkv.weight.zero_()
        attn.qkv.bias.zero_()
        attn.proj.weight.fill_(1.0)
        attn.proj.bias.zero_()


class SpaceTimeBlock(ResidualAttentionBlock):
    """Divided space-time attention in the TVTSv2 wiring:

        t = x + TimeAttn(LN3(x));  s = x + SpaceAttn(LN1(t));  out = s + MLP(LN2(s))

    The spatial residual starts from the block input x, not from t: the temporal branch reaches the stream only
    through the input of the spatial attention. `timeattn` starts at zero (`zero_temporal_attention`).
    """

    def __init__(self, dim, num_heads, mlp_ratio=4.0, act_layer=QuickGELU, attention="sdpa"):
        attn_layer = functools.partial(FactorisedAttention, qkv_bias=True, impl=attention)
        super().__init__(dim, num_heads, mlp_ratio, act_layer, attn_layer)
        self.timeattn = attn_layer(dim, num_heads)
        zero_temporal_attention(self.timeattn)
        self.ln_3 = nn.LayerNorm(dim)

    def forward(self, x, frames):
        t = x + self.timeattn(self.ln_3(x), frames, "time")
        s = x + self.attn(self.ln_1(t), frames, "space")
        return s + self.mlp(self.ln_2(s))


def run_blocks(blocks, x, grad_checkpointing=False, **block_args):
    """Apply `blocks` in turn, recomputing each block's activations in backward when asked."""
    use_ckpt = grad_checkpointing and torch.is_grad_enabled()
    for blk in blocks:
        if use_ckpt:
            x = torch.utils.checkpoint.checkpoint(blk, x, use_reentrant=False, **block_args)
        else:
            x = blk(x, **block_args)
    return x
