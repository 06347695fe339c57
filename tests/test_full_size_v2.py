"""The full-size TVTSv2 models: official key names, shapes, tensor and parameter counts (no weights downloaded).

The counts and shapes were read off the official `model_dist_TVTSv2_ViT_*` classes."""
import pytest
import torch

from model import build_model

COUNTS = {"ViT-B-32": (403, 185_962_244), "ViT-B-16": (403, 184_305_668), "ViT-H-14": (907, 1_221_286_404)}


def full(clip_config, device="cpu"):
    torch.manual_seed(0)
    with torch.device(device):
        return build_model({"type": "TVTSv2", "args": {"clip_config": clip_config}})


@pytest.fixture(scope="module")
def b32():
    return full("ViT-B-32")


@pytest.mark.parametrize("clip_config", list(COUNTS))
def test_tensor_and_parameter_counts_match_the_official_models(clip_config, b32):
    model = b32 if clip_config == "ViT-B-32" else full(clip_config, "meta" if clip_config == "ViT-H-14" else "cpu")
    assert (len(model.state_dict()), sum(p.numel() for p in model.parameters())) == COUNTS[clip_config]
    assert {k.split(".", 1)[0] for k in model.state_dict()} == {
        "text_model", "text_token_embedding", "text_positional_embedding", "text_ln_final", "text_projection",
        "video_model", "pred_model"}


def test_key_names_and_shapes(b32):
    sd = b32.state_dict()
    expected = {
        "text_model.resblocks.11.attn.in_proj_weight": (1536, 512),
        "text_model.resblocks.11.attn.out_proj.weight": (512, 512),
        "text_model.resblocks.0.mlp.c_fc.weight": (2048, 512),
        "text_token_embedding.weight": (49408, 512),
        "text_positional_embedding": (77, 512),
        "text_ln_final.weight": (512,),
        "text_projection": (512, 512),
        "video_model.conv1.weight": (768, 3, 32, 32),
        "video_model.class_embedding": (768,),
        "video_model.positional_embedding": (50, 768),
        "video_model.temporal_embedding": (12, 768),
        "video_model.ln_pre.weight": (768,),
        "video_model.transformer.resblocks.11.attn.qkv.weight": (2304, 768),
        "video_model.transformer.resblocks.11.attn.proj.weight": (768, 768),
        "video_model.transformer.resblocks.11.timeattn.qkv.bias": (2304,),
        "video_model.transformer.resblocks.11.ln_3.weight": (768,),
        "video_model.transformer.resblocks.11.mlp.c_proj.weight": (768, 3072),
        "video_model.ln_post.bias": (768,),
        "video_model.proj": (768, 512),
        "pred_model.type_embed": (1, 2, 512),
        "pred_model.blocks.1.attn.qkv.weight": (1536, 512),
        "pred_model.head.weight": (4, 512),
    }
    for key, shape in expected.items():
        assert tuple(sd[key].shape) == shape, key
    assert "video_model.conv1.bias" not in sd
    block = [k for k in sd if k.startswith("video_model.transformer.resblocks.0.")]
    assert len(block) == 18 and sum(sd[k].numel() for k in block) == 9_451_776  # 2 attentions (4d^2 + 4d each), 3 LayerNorms, MLP (8d^2 + 5d)


def test_h14_towers_and_sort_head_sizes():
    sd = full("ViT-H-14", "meta").state_dict()
    assert tuple(sd["video_model.conv1.weight"].shape) == (1280, 3, 14, 14)
    assert tuple(sd["video_model.positional_embedding"].shape) == (257, 1280)
    assert tuple(sd["video_model.proj"].shape) == (1280, 1024)
    assert tuple(sd["text_token_embedding.weight"].shape) == (49408, 1024)
    assert "text_model.resblocks.23.ln_2.weight" in sd and "video_model.transformer.resblocks.31.ln_3.bias" in sd
    assert tuple(sd["pred_model.blocks.0.attn.qkv.weight"].shape) == (3072, 1024)


def test_official_initialisation_invariants(b32):
    block = b32.video_model.transformer.resblocks[3]
    assert torch.count_nonzero(block.timeattn.qkv.weight) == 0 and torch.count_nonzero(block.timeattn.qkv.bias) == 0
    assert torch.all(block.timeattn.proj.weight == 1) and torch.count_nonzero(block.timeattn.proj.bias) == 0
    std = b32.video_model.temporal_embedding.std().item()
    assert abs(std - 768 ** -0.5) < 0.1 * 768 ** -0.5  # random normal, std width^-0.5
    trainable = sorted({int(n.split(".")[2]) for n, p in b32.named_parameters()
                        if n.startswith("text_model.resblocks.") and p.requires_grad})
    assert trainable == [9, 10, 11]
    h14 = full("ViT-H-14", "meta")
    assert sorted({int(n.split(".")[2]) for n, p in h14.named_parameters()
                   if n.startswith("text_model.resblocks.") and p.requires_grad}) == list(range(18, 24))


def test_full_size_forward_shapes(b32):
    b = 2
    ids = torch.zeros(4 * b, 77, dtype=torch.int64)
    ids[:, 0], ids[:, 1:6], ids[:, 6] = 49406, 1000, 49407
    batch = {"text": ids, "video": torch.randn(b, 4, 3, 224, 224),
             "keep_ind": torch.stack([torch.randperm(49) for _ in range(b)])}
    with torch.no_grad():
        text, video, logits = b32.eval()(batch)
        tokens, _ = b32.compute_video(batch["video"], batch["keep_ind"])
    assert text.shape == video.shape == (b, 512) and logits.shape == (b, 4, 4) and tokens.shape == (b, 197, 512)
