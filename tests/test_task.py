"""The TVTS task: losses as the objective defines them, the loss precision switch, DDP's unused-parameter flag,
validation outputs and metrics."""
import types

import torch

from conftest import make_v2_batch, tiny_v2_model
from model import TVTSLoss
from trainer.task import build_task


def cfg(precision="fp32", fp32_loss=True):
    return {"loss": {"type": "TVTSLoss", "args": {"sort_weight": 2.0}},
            "trainer": {"gather": "official", "fp32_loss": fp32_loss, "precision": precision}}


def batch():
    b = make_v2_batch()
    return {"text": {"input_ids": b["text"], "attention_mask": (b["text"] != 0).long()}, "video": b["video"],
            "keep_ind": b["keep_ind"], "label": torch.arange(4).repeat(2, 1)}


def test_training_losses_are_the_objective_on_the_network_outputs():
    model = tiny_v2_model().eval()
    task = build_task(cfg(), model, "cpu")
    losses = task.training_losses(model, batch())
    with torch.no_grad():
        text, video, logits = model(batch())
    expected = TVTSLoss(sort_weight=2.0)(video, text, logits)
    for key in ("total", "nce", "sort"):
        torch.testing.assert_close(losses[key], expected[key])


def test_loss_precision_follows_fp32_loss_under_autocast():
    model = tiny_v2_model().eval()
    low = build_task(cfg("bf16", fp32_loss=False), model, "cpu").training_losses(model, batch())
    high = build_task(cfg("bf16", fp32_loss=True), model, "cpu").training_losses(model, batch())
    assert low["total"].dtype == torch.bfloat16 and high["total"].dtype == torch.float32


def test_unused_parameters_only_with_single_caption_loaders():
    task = build_task(cfg(), tiny_v2_model(), "cpu")
    yt, webvid = types.SimpleNamespace(texts_per_sample=4), types.SimpleNamespace(texts_per_sample=1)
    assert not task.find_unused_parameters([yt]) and task.find_unused_parameters([yt, webvid])


def test_validation_metrics_report_retrieval_and_sorting():
    model = tiny_v2_model().eval()
    task = build_task(cfg(), model, "cpu")
    out = task.validation_outputs(model, batch())
    assert set(out) == {"text", "video", "sort_logits", "sort_labels"}
    metrics = task.validation_metrics(out)
    assert {"t2v_R1", "v2t_MedR", "sort_acc", "sort_order_acc"} <= set(metrics)
    single = batch()
    single["text"] = {k: v[:2] for k, v in single["text"].items()}
    single["label"] = torch.zeros(2, 1, dtype=torch.int64)
    assert "sort_logits" not in task.validation_outputs(model, single)
    assert "sort acc" in task.format_metrics(metrics)
