"""Our TVTS against an independent statement of the official forward (tests/official_reference.py)."""
import pytest
import torch

from conftest import make_batch, tiny_model
from official_reference import tvts_forward


def _close(ours, ref, rtol=1e-5, name=""):
    """Largest absolute difference relative to the largest reference magnitude."""
    err = ((ours - ref).abs().max() / ref.abs().max()).item()
    assert err < rtol, f"{name} max relative error {err:.2e}"


@pytest.mark.parametrize("attention", ["sdpa", "plain"])
def test_forward_matches_official_arithmetic(attention):
    model = tiny_model(seed=3, attention=attention).eval()
    with torch.no_grad():  # non-zero embeddings the official init leaves at zero, so they are exercised
        model.video_model.temporal_embed.normal_(std=0.5)
        model.pred_model.type_embed.normal_(std=0.5)
    batch = make_batch(b=3, seed=5)
    with torch.no_grad():
        text, video, logits = model(batch)
        ref_text, ref_video, ref_logits = tvts_forward(model, batch, video_heads=4, sort_heads=4)
    assert text.shape == (3, 32) and video.shape == (3, 32) and logits.shape == (3, 4, 4)
    _close(text, ref_text)
    _close(video, ref_video)
    _close(logits, ref_logits)


def test_sdpa_and_plain_attention_agree_in_train_mode_with_gradients():
    batch = make_batch(seed=1)
    outs, grads = [], []
    for attention in ("sdpa", "plain"):
        model = tiny_model(seed=4, attention=attention)
        model.text_model.eval()  # dropout off so both runs see identical text features
        text, video, logits = model(batch)
        (text.sum() + video.square().sum() + logits.square().sum()).backward()
        outs.append((text, video, logits))
        grads.append({n: p.grad for n, p in model.named_parameters() if p.grad is not None})
    for a, b in zip(*outs):
        _close(a, b)
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        _close(grads[0][name], grads[1][name], name=name)
