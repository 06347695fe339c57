"""The masked video encoder: token keeping, embeddings, variable frame counts, checkpointing, bad input."""
import pytest
import torch

from conftest import random_keep_ind
from model import VideoTransformer

P = 16  # patches per 32x32 frame with 8x8 patches


def tiny_vit(seed=0, **kw):
    torch.manual_seed(seed)
    vit = VideoTransformer(img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=4, num_frames=16, **kw)
    with torch.no_grad():
        vit.temporal_embed.normal_()
    return vit.eval()


def video(b=2, t=16, seed=0):
    return torch.randn(b, t, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_keeping_every_token_in_order_equals_the_unmasked_path():
    vit, x = tiny_vit(), video()
    keep_all = torch.arange(P).expand(2, 8, P)
    torch.testing.assert_close(vit(x, keep_all), vit(x, None), rtol=1e-5, atol=1e-6)


def test_kept_tokens_are_the_chosen_ones_in_the_given_order():
    vit, x = tiny_vit(), video()
    keep = random_keep_ind(2, 8, 4, P, torch.Generator().manual_seed(1))
    vit.blocks = torch.nn.ModuleList()  # no mixing: outputs are LN(embedded tokens)
    full, masked = vit(x, None), vit(x, keep)
    assert masked.shape == (2, 1 + 8 * 4, 64)
    for b in range(2):
        expected = torch.cat([full[b, :1]] + [full[b, 1 + t * P + keep[b, t]] for t in range(8)])
        torch.testing.assert_close(masked[b], expected)


def test_permuting_kept_tokens_within_a_slot_leaves_the_cls_output_unchanged():
    vit, x = tiny_vit(), video()
    keep = random_keep_ind(2, 8, 4, P, torch.Generator().manual_seed(2))
    shuffled = keep[:, :, torch.randperm(4)]
    torch.testing.assert_close(vit(x, keep)[:, 0], vit(x, shuffled)[:, 0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("frames", [2, 4])
def test_short_clips_use_the_first_temporal_slots(frames):
    vit, x = tiny_vit(), video(t=frames)
    keep = random_keep_ind(2, 8, P, P, torch.Generator().manual_seed(3))  # (B, 8, 196)-style, truncated inside
    out = vit(x, keep)
    assert out.shape == (2, 1 + frames // 2 * P, 64)
    with torch.no_grad():
        vit.temporal_embed[:, frames // 2:] += 5.0
    torch.testing.assert_close(vit(x, keep), out)
    with torch.no_grad():
        vit.temporal_embed[:, 0] += 5.0
    assert not torch.allclose(vit(x, keep), out)


def test_static_clip_patch_embedding_is_one_conv3d_over_two_frames():
    vit = tiny_vit()
    frame = torch.randn(1, 3, 32, 32)
    clip = frame.unsqueeze(2).repeat(1, 1, 2, 1, 1)
    w = vit.patch_embed.proj.weight
    expected = torch.nn.functional.conv2d(frame, w[:, :, 0] + w[:, :, 1], vit.patch_embed.proj.bias, stride=8)
    torch.testing.assert_close(vit.patch_embed(clip), expected.flatten(2).transpose(1, 2), rtol=1e-5, atol=1e-5)


def test_gradient_checkpointing_gives_the_same_outputs_and_gradients():
    x = video()
    keep = random_keep_ind(2, 8, 4, P, torch.Generator().manual_seed(4))
    results = []
    for ckpt in (False, True):
        vit = tiny_vit(grad_checkpointing=ckpt).train()
        out = vit(x, keep)
        out.square().sum().backward()
        results.append((out, [p.grad for p in vit.parameters()]))
    torch.testing.assert_close(results[0][0], results[1][0])
    for g0, g1 in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(g0, g1)


def test_official_initialisation():
    vit = VideoTransformer(img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=4)
    assert torch.count_nonzero(vit.temporal_embed) == 0
    assert vit.pos_embed.std() < 0.03 and vit.pos_embed.abs().max() <= 2.0
    assert torch.count_nonzero(vit.blocks[0].attn.qkv.bias) == 0
    assert torch.equal(vit.blocks[0].norm1.weight, torch.ones(64))


def test_temporal_embed_std_draws_only_the_temporal_embedding():
    """The demo's switch: a random temporal_embed breaks the symmetry between time slots from the first step;
    every other tensor keeps the values of the official (zero) initialisation."""
    torch.manual_seed(3)
    official = VideoTransformer(img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=4)
    torch.manual_seed(3)
    drawn = VideoTransformer(img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=4, temporal_embed_std=0.5)
    t = drawn.temporal_embed.detach()
    assert 0.4 < t.std() < 0.6 and t.abs().max() <= 2.0 and torch.count_nonzero(t) == t.numel()
    a, b = official.state_dict(), drawn.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a if k != "temporal_embed")


@pytest.mark.parametrize("x, keep, message", [
    (torch.zeros(2, 16, 3, 48, 48), None, "32x32"),
    (torch.zeros(2, 16, 32, 32), None, r"\(B, T, 3, H, W\)"),
    (torch.zeros(2, 15, 3, 32, 32), None, "multiple of 2"),
    (torch.zeros(2, 18, 3, 32, 32), None, "at most 16"),
    (torch.zeros(2, 16, 3, 32, 32), torch.zeros(2, 4, 4, dtype=torch.long), "tubelet slots"),
    (torch.zeros(2, 16, 3, 32, 32), torch.zeros(2, 8, dtype=torch.long), "keep_ind must be"),
    (torch.zeros(2, 16, 3, 32, 32), torch.full((2, 8, 4), 16), r"\[0, 16\)"),
    (torch.zeros(2, 16, 3, 32, 32), torch.full((2, 8, 4), -1), r"\[0, 16\)"),
    (torch.zeros(2, 16, 3, 32, 32), torch.zeros(2, 8, 4), "integer"),
    (torch.zeros(2, 16, 3, 32, 32), torch.zeros(2, 8, 17, dtype=torch.long), "more than the 16"),
])
def test_bad_input_is_named(x, keep, message):
    with pytest.raises(ValueError, match=message):
        tiny_vit()(x, keep)
