"""The TVTS composite: text pooling and order, the sort branch, stop-gradient, construction and bad input."""
import pytest
import torch

from conftest import make_batch, tiny_args, tiny_model
from model import TVTS, TVTSLoss


def test_outputs_and_transcript_major_text_order(model, batch):
    model.eval()
    with torch.no_grad():
        text, video, logits = model(batch)
        b = batch["video"].shape[0]
        for i in range(b):
            rows = [k * b + i for k in range(4)]  # transcript k of clip i sits at row k * B + i
            sub = {key: v[rows] for key, v in batch["text"].items()}
            cls = model.text_model(**sub).last_hidden_state[:, 0]
            torch.testing.assert_close(text[i], model.txt_proj(cls).mean(0), rtol=1e-5, atol=1e-6)
    assert video.shape == (b, 32) and logits.shape == (b, 4, 4)


def test_sort_logits_are_permutation_equivariant_over_transcripts(model, batch):
    model.eval()
    b = batch["video"].shape[0]
    perm = torch.tensor([2, 0, 3, 1])
    rows = (perm[:, None] * b + torch.arange(b)).reshape(-1)  # permute whole transcript blocks
    shuffled = {**batch, "text": {k: v[rows] for k, v in batch["text"].items()}}
    with torch.no_grad():
        text, video, logits = model(batch)
        text_s, video_s, logits_s = model(shuffled)
    torch.testing.assert_close(logits_s, logits[:, perm], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(text_s, text, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(video_s, video)


def test_sort_loss_reaches_video_and_sort_head_but_not_text_encoder(model, batch):
    _, _, logits = model(batch)
    TVTSLoss(nce_weight=0.0)(torch.randn(2, 32), torch.randn(2, 32), logits)["total"].backward()
    for name, p in model.named_parameters():
        has_grad = p.grad is not None and p.grad.abs().sum() > 0
        if name.startswith(("text_model.", "txt_proj.", "vid_proj.")):
            assert not has_grad, name
    assert model.video_model.blocks[0].attn.qkv.weight.grad.abs().sum() > 0
    assert model.pred_model.head.weight.grad.abs().sum() > 0


def test_contrastive_loss_trains_text_video_and_projections_not_sort_head(model, batch):
    text, video, logits = model(batch)
    TVTSLoss()(video, text, None)["total"].backward()
    assert model.text_model.embeddings.word_embeddings.weight.grad.abs().sum() > 0
    assert model.txt_proj[1].weight.grad.abs().sum() > 0
    assert model.vid_proj[0].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.pred_model.parameters())


def test_single_caption_batches_skip_the_sort_head(model):
    text, video, logits = model(make_batch(k=1, frames=4))
    assert logits is None and text.shape == (2, 32)


def test_unmasked_batch_without_keep_ind(model, batch):
    model.eval()
    full = {**batch, "keep_ind": torch.arange(16).expand(2, 8, 16)}
    with torch.no_grad():
        torch.testing.assert_close(model({k: v for k, v in batch.items() if k != "keep_ind"})[1], model(full)[1],
                                   rtol=1e-5, atol=1e-6)


def test_k_mismatches_are_named(model):
    batch = make_batch(k=3)
    with pytest.raises(ValueError, match="K=3"):
        model(batch)
    batch["text"] = {k: v[:-1] for k, v in batch["text"].items()}
    with pytest.raises(ValueError, match="5 transcripts for 2 clips"):
        model(batch)


def test_model_is_in_train_mode_after_construction(model):
    assert model.training and model.text_model.training


def test_pretrained_text_model_loads_from_a_local_directory(tmp_path, model):
    model.text_model.save_pretrained(tmp_path)
    args = tiny_args(text_params={"model": str(tmp_path), "pretrained": True})
    other = TVTS(**args)
    for (name, a), b in zip(model.text_model.state_dict().items(), other.text_model.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)


def test_bert_models_use_the_pooler_output():
    args = tiny_args(text_params={"model": "bert-tiny", "pretrained": False,
                                  "config": {"vocab_size": 100, "hidden_size": 64, "num_hidden_layers": 1,
                                             "num_attention_heads": 4, "intermediate_size": 128}})
    model = TVTS(**args).eval()
    batch = make_batch()
    with torch.no_grad():
        text = model(batch)[0]
        pooled = model.text_model(batch["text"]["input_ids"], attention_mask=batch["text"]["attention_mask"])
        expected = model.txt_proj(pooled.pooler_output).reshape(4, 2, -1).mean(0)
    torch.testing.assert_close(text, expected)


def test_identity_projection():
    model = tiny_model(projection="").eval()
    batch = make_batch()
    with torch.no_grad():
        text, video, _ = model(batch)
    assert text.shape == (2, 64) and video.shape == (2, 64)
    assert "txt_proj.1.weight" not in model.state_dict()


@pytest.mark.parametrize("overrides, message", [
    ({"projection": "mlp"}, "projection"),
    ({"attention": "flash"}, "attention"),
    ({"sort_params": {"width": 3}}, "sort_params"),
    ({"video_params": {"num_frame": 16}}, "video_params"),
    ({"video_params": {"arch_config": "large_patch14"}}, "arch_config"),
    ({"video_params": {"temporal_embed_std": -0.5}}, "temporal_embed_std"),
    ({"video_params": {"temporal_embed_std": "0.5"}}, "temporal_embed_std"),
    ({"text_params": {"model": "t5-small", "pretrained": False}}, "model_type"),
    ({"video_params": {"img_size": 32, "patch_size": 8, "embed_dim": 32, "depth": 1, "num_heads": 4}},
     "widths must match"),
])
def test_bad_arch_args_are_named(overrides, message):
    with pytest.raises(ValueError, match=message):
        TVTS(**tiny_args(**overrides))
