"""An independent, loop-and-matmul statement of the official TVTS forward, computed straight from a state dict.

It follows the spec of the official code (tvts_v1_pretrain.md sections 1 and 9.3) literally: add the tiled
spatial + temporal embeddings to all tokens, prepend CLS, then index kept tokens slot by slot; attention with
q|k|v read from one qkv matrix and an explicit softmax; LayerNorm eps 1e-6; the sort head appends the detached
text CLS features after the video tokens. It shares no code with `model/` so the two can be compared.
"""
import math

import torch
import torch.nn.functional as F


def _ln(x, sd, prefix, eps=1e-6):
    return F.layer_norm(x, x.shape[-1:], sd[prefix + ".weight"], sd[prefix + ".bias"], eps)


def _lin(x, sd, prefix):
    return x @ sd[prefix + ".weight"].t() + sd[prefix + ".bias"]


def _block(x, sd, p, heads):
    b, n, c = x.shape
    h = _ln(x, sd, p + ".norm1")
    qkv = _lin(h, sd, p + ".attn.qkv")
    q, k, v = qkv[..., :c], qkv[..., c:2 * c], qkv[..., 2 * c:]
    d = c // heads
    out = torch.empty_like(q)
    for i in range(heads):
        sl = slice(i * d, (i + 1) * d)
        att = torch.softmax(q[..., sl] @ k[..., sl].transpose(1, 2) / math.sqrt(d), dim=-1)
        out[..., sl] = att @ v[..., sl]
    x = x + _lin(out, sd, p + ".attn.proj")
    h = _lin(F.gelu(_lin(_ln(x, sd, p + ".norm2"), sd, p + ".mlp.fc1")), sd, p + ".mlp.fc2")
    return x + h


def video_forward(sd, video, keep_ind, heads, tubelet=2):
    """sd: the video_model.* tensors without prefix. video (B, T, C, H, W) -> tokens (B, 1 + kept, D)."""
    w = sd["patch_embed.proj.weight"]
    x = F.conv3d(video.permute(0, 2, 1, 3, 4), w, sd["patch_embed.proj.bias"], stride=w.shape[2:])
    b, dim, slots = x.shape[:3]
    x = x.flatten(2).transpose(1, 2)  # (B, slots * P, D), time-major
    patches = x.shape[1] // slots
    pos = sd["pos_embed"][0]
    tokens = [x[:, i] + pos[1 + i % patches] + sd["temporal_embed"][0, i // patches] for i in range(x.shape[1])]
    cls = sd["cls_token"][0, 0] + pos[0]
    seqs = []
    for bi in range(b):
        seq = [cls]
        for t in range(slots):
            for s in keep_ind[bi, t].tolist():
                seq.append(tokens[t * patches + s][bi])
        seqs.append(torch.stack(seq))
    x = torch.stack(seqs)
    depth = len({k.split(".")[1] for k in sd if k.startswith("blocks.")})
    for i in range(depth):
        x = _block(x, sd, f"blocks.{i}", heads)
    return _ln(x, sd, "norm")


def sort_forward(sd, text, video_tokens, heads):
    """sd: the pred_model.* tensors without prefix. text (B, K, D), video_tokens (B, N, D) -> (B, K, classes)."""
    x = torch.cat([video_tokens + sd["type_embed"][0, 0], text + sd["type_embed"][0, 1]], dim=1)
    for i in range(len({k.split(".")[1] for k in sd if k.startswith("blocks.")})):
        x = _block(x, sd, f"blocks.{i}", heads)
    return _lin(_ln(x[:, -text.shape[1]:], sd, "norm"), sd, "head")


def tvts_forward(model, batch, video_heads, sort_heads):
    """The official TVTS.forward for `model`'s weights; only the HF text model itself is called as a module."""
    sd = {k: v.detach() for k, v in model.state_dict().items()}
    sub = lambda p: {k[len(p):]: v for k, v in sd.items() if k.startswith(p)}  # noqa: E731
    b = batch["video"].shape[0]
    text_cls = model.text_model(**batch["text"]).last_hidden_state[:, 0].detach()
    k = text_cls.shape[0] // b
    text_emb = torch.stack([
        torch.stack([_lin(torch.relu(text_cls[j * b + i]), sd, "txt_proj.1") for j in range(k)]).mean(0)
        for i in range(b)])
    tokens = video_forward(sub("video_model."), batch["video"], batch["keep_ind"], video_heads)
    video_emb = _lin(tokens[:, 0], sd, "vid_proj.0")
    sort_text = torch.stack([text_cls[[j * b + i for j in range(k)]] for i in range(b)])
    logits = sort_forward(sub("pred_model."), sort_text, tokens, sort_heads)
    return text_emb, video_emb, logits
