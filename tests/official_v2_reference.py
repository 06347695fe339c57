"""An independent, loop-and-matmul statement of the official TVTSv2 forward, computed straight from a state dict.

It follows the spec of the official v2 code (tvtsv2.md sections 1.2, 1.3 and 1.5) literally and shares no code
with `model/`: patch embedding per frame, embeddings added before the tube mask, `ln_pre`; in every block the
temporal attention, then the spatial attention fed LN1(x + time) with its residual from x, then the MLP; each
query's key set is built by listing token positions (CLS: all; a patch: CLS plus the tokens of its own frame or
of its own kept index); LayerNorm eps 1e-5; the text tower with an explicit causal mask and the EOT token.
"""
import math

import torch
import torch.nn.functional as F

from official_reference import sort_forward


def _ln(x, sd, prefix):
    return F.layer_norm(x, x.shape[-1:], sd[prefix + ".weight"], sd[prefix + ".bias"], 1e-5)


def _lin(x, sd, prefix):
    return x @ sd[prefix + ".weight"].t() + sd[prefix + ".bias"]


def _act(x, act):
    return x * torch.sigmoid(1.702 * x) if act == "quick_gelu" else F.gelu(x)


def _mlp(x, sd, p, act):
    return _lin(_act(_lin(x, sd, p + ".c_fc"), act), sd, p + ".c_proj")


def _attend(q, k, v, heads, keys_of):
    """q, k, v (N, C) of one sequence; keys_of(i) lists the positions query i attends to."""
    n, c = q.shape
    d = c // heads
    out = torch.empty_like(q)
    for h in range(heads):
        sl = slice(h * d, (h + 1) * d)
        for i in range(n):
            idx = keys_of(i)
            w = torch.softmax(q[i, sl] @ k[idx, sl].t() / math.sqrt(d), dim=-1)
            out[i, sl] = w @ v[idx, sl]
    return out


def _video_attention(x, sd, p, heads, frames, axis):
    b, n, c = x.shape
    per_frame = (n - 1) // frames
    qkv = _lin(x, sd, p + ".qkv")

    def keys_of(i):
        if i == 0:
            return list(range(n))
        t, j = divmod(i - 1, per_frame)
        if axis == "space":
            return [0] + [1 + t * per_frame + jj for jj in range(per_frame)]
        return [0] + [1 + tt * per_frame + j for tt in range(frames)]

    out = torch.stack([_attend(qkv[s, :, :c], qkv[s, :, c:2 * c], qkv[s, :, 2 * c:], heads, keys_of)
                       for s in range(b)])
    return _lin(out, sd, p + ".proj")


def video_forward(sd, video, keep_ind, heads, act="quick_gelu", output_tokens="all_normed"):
    """sd: the video_model.* tensors without prefix; video (B, T, 3, H, W) -> (sort tokens, video embedding)."""
    b, t = video.shape[:2]
    w = sd["conv1.weight"]
    patches = F.conv2d(video.flatten(0, 1), w, stride=w.shape[-1]).flatten(2).transpose(1, 2)  # (B*T, P, C)
    pos, temporal = sd["positional_embedding"], sd["temporal_embedding"]
    seqs = []
    for bi in range(b):
        seq = [sd["class_embedding"] + pos[0]]
        for ti in range(t):
            for j in keep_ind[bi].tolist():
                seq.append(patches[bi * t + ti, j] + (pos[1 + j] + temporal[ti]))
        seqs.append(torch.stack(seq))
    x = _ln(torch.stack(seqs), sd, "ln_pre")
    depth = len({k.split(".")[2] for k in sd if k.startswith("transformer.resblocks.")})
    for i in range(depth):
        p = f"transformer.resblocks.{i}"
        time_out = x + _video_attention(_ln(x, sd, p + ".ln_3"), sd, p + ".timeattn", heads, t, "time")
        space_out = x + _video_attention(_ln(time_out, sd, p + ".ln_1"), sd, p + ".attn", heads, t, "space")
        x = space_out + _mlp(_ln(space_out, sd, p + ".ln_2"), sd, p + ".mlp", act)
    if output_tokens == "all_normed":
        tokens = _ln(x, sd, "ln_post") @ sd["proj"]
        return tokens, tokens[:, 0]
    return x[:, 1:] @ sd["proj"], _ln(x[:, 0], sd, "ln_post") @ sd["proj"]


def text_forward(sd, ids, heads, act="quick_gelu"):
    """sd: the whole TVTSv2 state dict; ids (N, L) CLIP token ids -> projected EOT features (N, E)."""
    x = sd["text_token_embedding.weight"][ids] + sd["text_positional_embedding"][:ids.shape[1]]
    depth = len({k.split(".")[2] for k in sd if k.startswith("text_model.resblocks.")})
    n, length, c = x.shape
    for i in range(depth):
        p = f"text_model.resblocks.{i}"
        h = _ln(x, sd, p + ".ln_1")
        qkv = h @ sd[p + ".attn.in_proj_weight"].t() + sd[p + ".attn.in_proj_bias"]
        att = torch.stack([_attend(qkv[s, :, :c], qkv[s, :, c:2 * c], qkv[s, :, 2 * c:], heads,
                                   lambda q: list(range(q + 1))) for s in range(n)])
        x = x + _lin(att, sd, p + ".attn.out_proj")
        x = x + _mlp(_ln(x, sd, p + ".ln_2"), sd, p + ".mlp", act)
    x = _ln(x, sd, "text_ln_final")
    eot = ids.argmax(dim=-1)
    return torch.stack([x[s, eot[s]] for s in range(n)]) @ sd["text_projection"]


def tvtsv2_forward(model, batch, video_heads, text_heads, sort_heads, act="quick_gelu",
                   output_tokens="all_normed"):
    """The official TVTSv2 forward for `model`'s weights: (text embeddings, video embeddings, sort logits)."""
    sd = {k: v.detach() for k, v in model.state_dict().items()}
    sub = lambda p: {k[len(p):]: v for k, v in sd.items() if k.startswith(p)}  # noqa: E731
    b = batch["video"].shape[0]
    text = text_forward(sd, batch["text"], text_heads, act)
    k = text.shape[0] // b
    text_emb = torch.stack([torch.stack([text[j * b + i] for j in range(k)]).mean(0) for i in range(b)])
    tokens, video_emb = video_forward(sub("video_model."), batch["video"], batch["keep_ind"], video_heads, act,
                                      output_tokens)
    sort_text = torch.stack([text[[j * b + i for j in range(k)]] for i in range(b)])
    logits = sort_forward(sub("pred_model."), sort_text, tokens, sort_heads)
    return text_emb, video_emb, logits
