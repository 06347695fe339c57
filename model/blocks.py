"""Pre-norm transformer block shared by the video encoder and the sort transformer.

Parameter names (`norm1`, `attn.qkv`, `attn.proj`, `norm2`, `mlp.fc1`, `mlp.fc2`) are those of the
official checkpoints, so their weights load unchanged.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

ATTENTION_IMPLS = ("sdpa", "plain")


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection.

    `impl="sdpa"` uses `F.scaled_dot_product_attention` (flash / memory-efficient kernels on GPU);
    `impl="plain"` computes softmax(q k^T * scale) v explicitly, as the official code does.
    """

    def __init__(self, dim, num_heads, qkv_bias=True, impl="sdpa"):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"attention width {dim} is not divisible by num_heads={num_heads}")
        if impl not in ATTENTION_IMPLS:
            raise ValueError(f"attention impl must be one of {ATTENTION_IMPLS}, got {impl!r}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.impl = impl
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        if self.impl == "sdpa":
            x = F.scaled_dot_product_attention(q, k, v, scale=self.scale)
        else:
            attn = (q @ k.transpose(-2, -1)) * self.scale
            x = attn.softmax(dim=-1) @ v
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim, hidden_dim):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
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
    """x + Attn(LN(x)), then x + MLP(LN(x)); LayerNorm eps 1e-6, exact-erf GELU, no dropout.

    `drop_path` (stochastic depth on both branches) is 0 in pretraining and in the official downstream runs;
    fine-tuning can turn it on.
    """

    def __init__(self, dim, num_heads, mlp_ratio=4.0, qkv_bias=True, attention="sdpa", drop_path=0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, impl=attention)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = drop_path

    def forward(self, x):
        x = x + drop_path(self.attn(self.norm1(x)), self.drop_path, self.training)
        return x + drop_path(self.mlp(self.norm2(x)), self.drop_path, self.training)


def run_blocks(blocks, x, grad_checkpointing=False):
    """Apply `blocks` in turn, recomputing each block's activations in backward when asked."""
    use_ckpt = grad_checkpointing and torch.is_grad_enabled()
    for blk in blocks:
        x = torch.utils.checkpoint.checkpoint(blk, x, use_reentrant=False) if use_ckpt else blk(x)
    return x
