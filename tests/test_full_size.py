"""The full-size model: official key names, shapes and parameter counts (no weights are downloaded)."""
import pytest
import torch

from model import TVTS, VideoTransformer

FULL_ARGS = {"video_params": {"arch_config": "base_patch16_224", "num_frames": 16},
             "text_params": {"model": "distilbert-base-uncased", "pretrained": False}}


@pytest.fixture(scope="module")
def full_model():
    torch.manual_seed(0)
    return TVTS(**FULL_ARGS)


def test_parameter_counts_match_the_official_release(full_model):
    sd = full_model.state_dict()
    assert len(sd) == 284
    assert sum(p.numel() for p in full_model.parameters()) == 167_333_124
    counts = {}
    for prefix in ("text_model.", "video_model.", "txt_proj.1.", "vid_proj.0.", "pred_model."):
        keys = [k for k in sd if k.startswith(prefix)]
        counts[prefix] = (len(keys), sum(sd[k].numel() for k in keys))
    assert counts == {"text_model.": (100, 66_362_880), "video_model.": (151, 86_394_624),
                      "txt_proj.1.": (2, 196_864), "vid_proj.0.": (2, 196_864), "pred_model.": (29, 14_181_892)}


def test_key_names_and_shapes(full_model):
    sd = full_model.state_dict()
    expected = {
        "text_model.embeddings.word_embeddings.weight": (30522, 768),
        "text_model.embeddings.position_embeddings.weight": (512, 768),
        "text_model.transformer.layer.5.attention.q_lin.weight": (768, 768),
        "text_model.transformer.layer.5.ffn.lin1.weight": (3072, 768),
        "text_model.transformer.layer.5.output_layer_norm.bias": (768,),
        "video_model.cls_token": (1, 1, 768),
        "video_model.pos_embed": (1, 197, 768),
        "video_model.temporal_embed": (1, 8, 768),
        "video_model.patch_embed.proj.weight": (768, 3, 2, 16, 16),
        "video_model.blocks.11.attn.qkv.weight": (2304, 768),
        "video_model.blocks.11.mlp.fc2.weight": (768, 3072),
        "video_model.norm.bias": (768,),
        "txt_proj.1.weight": (256, 768),
        "vid_proj.0.weight": (256, 768),
        "pred_model.type_embed": (1, 2, 768),
        "pred_model.blocks.1.attn.proj.weight": (768, 768),
        "pred_model.norm.weight": (768,),
        "pred_model.head.weight": (4, 768),
    }
    for key, shape in expected.items():
        assert tuple(sd[key].shape) == shape, key
    block = [k for k in sd if k.startswith("video_model.blocks.0.")]
    assert sum(sd[k].numel() for k in block) == 7_087_872
    assert {k.split(".", 1)[0] for k in sd} == {"text_model", "video_model", "txt_proj", "vid_proj", "pred_model"}


def test_official_initialisation_invariants(full_model):
    assert torch.count_nonzero(full_model.video_model.temporal_embed) == 0
    assert torch.count_nonzero(full_model.pred_model.type_embed) == 0


def test_mae_loadable_tensors_are_all_but_temporal_embed():
    assert len([k for k in VideoTransformer().state_dict() if k != "temporal_embed"]) == 150


def test_full_size_forward_shapes(full_model):
    b = 2
    batch = {"text": {"input_ids": torch.randint(1000, 2000, (4 * b, 12)),
                      "attention_mask": torch.ones(4 * b, 12, dtype=torch.long)},
             "video": torch.randn(b, 16, 3, 224, 224),
             "keep_ind": torch.stack([torch.stack([torch.randperm(196)[:49] for _ in range(8)]) for _ in range(b)])}
    with torch.no_grad():
        tokens = full_model.video_model(batch["video"], batch["keep_ind"])
        text, video, logits = full_model(batch)
    assert tokens.shape == (b, 393, 768)
    assert text.shape == (b, 256) and video.shape == (b, 256) and logits.shape == (b, 4, 4)
