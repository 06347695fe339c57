"""TVTSv2 on tiny towers: the forward against an independent restatement of the official arithmetic, divided
attention, tube masking, the text tower, frozen text blocks, checkpoints."""
import pytest
import torch

from conftest import make_v2_batch, tiny_v2_args, tiny_v2_model
from model import TVTSv2, build_model, load_checkpoint
from model.blocks import Attention, ResidualAttentionBlock, SpaceTimeBlock
from model.checkpoint import CheckpointError
from official_v2_reference import tvtsv2_forward


@pytest.mark.parametrize("attention", ["sdpa", "plain"])
@pytest.mark.parametrize("flavour", [("quick_gelu", "all_normed"), ("gelu", "patches_raw")])
def test_forward_matches_the_official_arithmetic(attention, flavour):
    act, output_tokens = flavour
    model = tiny_v2_model(attention=attention, act=act, video_params={"output_tokens": output_tokens}).eval()
    batch = make_v2_batch()
    with torch.no_grad():
        text, video, logits = model(batch)
        ref = tvtsv2_forward(model, batch, video_heads=4, text_heads=4, sort_heads=4, act=act,
                             output_tokens=output_tokens)
    for ours, theirs in zip((text, video, logits), ref):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    assert text.shape == video.shape == (2, 24) and logits.shape == (2, 4, 4)


def test_text_as_tokenizer_dict_or_tensor_and_padding_do_not_change_the_output():
    model = tiny_v2_model().eval()
    batch = make_v2_batch()
    ids = batch["text"]
    longest = int((ids != 0).sum(1).max())
    with torch.no_grad():
        full = model(batch)
        trimmed = model({**batch, "text": {"input_ids": ids[:, :longest], "attention_mask": (ids[:, :longest] != 0)}})
    for a, b in zip(full, trimmed):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


def test_zero_temporal_attention_at_one_frame_is_the_clip_image_block():
    torch.manual_seed(0)
    block = SpaceTimeBlock(32, 4).eval()
    image = ResidualAttentionBlock(32, 4, attn_layer=lambda d, h: Attention(d, h)).eval()
    state = {k: v for k, v in block.state_dict().items() if not k.startswith(("timeattn.", "ln_3."))}
    image.load_state_dict(state)
    assert torch.count_nonzero(block.timeattn.qkv.weight) == 0 and torch.all(block.timeattn.proj.weight == 1)
    x = torch.randn(2, 1 + 9, 32)
    with torch.no_grad():
        torch.testing.assert_close(block(x, frames=1), image(x))


def test_temporal_attention_starts_as_identity_but_receives_gradient():
    torch.manual_seed(0)
    block = SpaceTimeBlock(32, 4)
    x = torch.randn(2, 1 + 3 * 4, 32, requires_grad=True)
    t = x + block.timeattn(block.ln_3(x), 3, "time")
    torch.testing.assert_close(t, x)
    block(x, frames=3).sum().backward()
    assert block.timeattn.qkv.weight.grad.abs().sum() > 0


def test_spatial_residual_starts_from_the_block_input():
    """The official wiring: s = x + Space(LN1(x + Time(LN3 x))), not x + Time + Space."""
    torch.manual_seed(0)
    block = SpaceTimeBlock(16, 2).eval()
    for p in block.timeattn.parameters():
        torch.nn.init.normal_(p)
    x = torch.randn(1, 1 + 2 * 3, 16)
    with torch.no_grad():
        t = x + block.timeattn(block.ln_3(x), 2, "time")
        s = x + block.attn(block.ln_1(t), 2, "space")
        torch.testing.assert_close(block(x, frames=2), s + block.mlp(block.ln_2(s)))
        assert not torch.allclose(t - x, torch.zeros_like(x))


def test_divided_attention_keeps_frames_apart_in_space_and_positions_apart_in_time():
    """With only spatial attention, a change in frame 1 reaches frame 0's patches through CLS only; with temporal
    attention, patch j of frame 0 sees patch j of frame 1 but not patch k != j."""
    torch.manual_seed(0)
    attn = SpaceTimeBlock(16, 2).attn.eval()
    x = torch.randn(1, 1 + 2 * 3, 16)
    y = x.clone()
    y[0, 1 + 3 + 1] += 1.0  # frame 1, patch 1
    with torch.no_grad():
        space_x, space_y = attn(x, 2, "space"), attn(y, 2, "space")
        time_x, time_y = attn(x, 2, "time"), attn(y, 2, "time")
    assert torch.allclose(space_x[0, 1:4], space_y[0, 1:4])  # frame 0's patches: no path but CLS, whose key is x's
    assert not torch.allclose(time_x[0, 2], time_y[0, 2])  # frame 0 patch 1 sees frame 1 patch 1
    assert torch.allclose(time_x[0, 1], time_y[0, 1]) and torch.allclose(time_x[0, 3], time_y[0, 3])
    assert not torch.allclose(space_x[0, 0], space_y[0, 0])  # CLS attends to everything


def test_tube_mask_of_every_patch_equals_no_mask_and_order_only_permutes_tokens():
    model = tiny_v2_model().eval()
    batch = make_v2_batch(n_keep=16)
    with torch.no_grad():
        tokens_all, cls_all = model.compute_video(batch["video"], torch.arange(16).expand(2, 16))
        tokens_none, cls_none = model.compute_video(batch["video"], None)
        tokens_perm, cls_perm = model.compute_video(batch["video"], batch["keep_ind"])
    torch.testing.assert_close(tokens_all, tokens_none)
    torch.testing.assert_close(cls_perm, cls_none, rtol=1e-5, atol=1e-5)
    assert tokens_perm.shape == (2, 1 + 12 * 16, 24)


def test_kept_patch_count_comes_from_keep_ind_and_images_are_one_frame():
    model = tiny_v2_model().eval()
    with torch.no_grad():
        tokens, _ = model.compute_video(torch.randn(2, 5, 3, 32, 32), torch.stack([torch.randperm(16)[:3]] * 2))
        image_tokens, image_emb = model.compute_video(torch.randn(2, 3, 32, 32))
    assert tokens.shape == (2, 1 + 5 * 3, 24) and image_tokens.shape == (2, 17, 24) and image_emb.shape == (2, 24)


def test_bad_inputs_are_clear_errors():
    model = tiny_v2_model()
    video = torch.randn(2, 12, 3, 32, 32)
    with pytest.raises(ValueError, match="tube masking"):
        model.compute_video(video, torch.zeros(2, 6, 4, dtype=torch.int64))  # a v1 per-slot mask
    with pytest.raises(ValueError, match=r"\[0, 16\)"):
        model.compute_video(video, torch.full((2, 4), 16))
    with pytest.raises(ValueError, match="13 frames"):
        model.compute_video(torch.randn(1, 13, 3, 32, 32))
    with pytest.raises(ValueError, match=r"L <= 16"):
        model.compute_text(torch.ones(2, 17, dtype=torch.int64))
    with pytest.raises(ValueError, match="n_trans=4"):
        model({**make_v2_batch(), "text": make_v2_batch(k=3)["text"]})


def test_only_the_last_text_blocks_and_everything_else_train():
    model = tiny_v2_model()
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen and all(n.startswith(("text_model.resblocks.0.", "text_model.resblocks.1.")) for n in frozen)
    assert all(p.requires_grad for n, p in model.named_parameters() if n.startswith("text_model.resblocks.2."))
    text, video, logits = model(make_v2_batch())
    (text.sum() + video.sum() + logits.sum()).backward()
    for name, p in model.named_parameters():
        if name in frozen:
            assert p.grad is None, name
        else:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
    every = TVTSv2(**tiny_v2_args(text_params={"trainable_blocks": None}))
    assert all(p.requires_grad for p in every.parameters())


def test_sort_loss_reaches_video_and_head_but_never_the_text_tower():
    model = tiny_v2_model()
    _, _, logits = model(make_v2_batch())
    logits.sum().backward()
    assert all(p.grad is None for n, p in model.named_parameters() if n.startswith("text"))
    assert model.video_model.conv1.weight.grad is not None and model.pred_model.head.weight.grad is not None


def test_checkpoints_load_strictly_and_released_files_may_lack_the_sort_head(tmp_path):
    model = tiny_v2_model().eval()
    state = {"module." + k: v for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "epoch": 3}, tmp_path / "train.pth")
    torch.save({"state_dict": {k: v for k, v in state.items() if ".pred_model." not in k}}, tmp_path / "release.pth")
    batch = make_v2_batch()
    with torch.no_grad():
        expected = model(batch)
    full = build_model({"type": "TVTSv2", "args": tiny_v2_args()}).eval()
    assert load_checkpoint(full, tmp_path / "train.pth")["absent"] == {}
    release = build_model({"type": "TVTSv2", "args": tiny_v2_args()}).eval()
    report = load_checkpoint(release, tmp_path / "release.pth")
    assert report["absent"] == {"pred_model": 29} and report["loaded"] == len(state) - 29
    with torch.no_grad():
        for a, b in zip(full(batch), expected):
            torch.testing.assert_close(a, b)
        text, video, _ = release(batch)
    torch.testing.assert_close(text, expected[0])
    torch.testing.assert_close(video, expected[1])
    partial = {k: v for k, v in state.items() if k != "module.pred_model.head.bias"}
    torch.save({"state_dict": partial}, tmp_path / "partial.pth")
    with pytest.raises(CheckpointError, match="pred_model.head.bias"):
        load_checkpoint(release, tmp_path / "partial.pth")


def test_unknown_preset_and_keys_are_errors():
    with pytest.raises(ValueError, match="ViT-L-14.*known"):
        TVTSv2(clip_config="ViT-L-14")
    with pytest.raises(ValueError, match="video_params"):
        TVTSv2(**tiny_v2_args(video_params={"frames": 8}))
    with pytest.raises(ValueError, match="trainable_blocks"):
        TVTSv2(**tiny_v2_args(text_params={"trainable_blocks": 9}))
