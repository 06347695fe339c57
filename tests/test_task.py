"""The TVTS task: losses as the objective defines them, the loss precision switch, DDP's unused-parameter flag,
validation outputs and metrics."""
import types

import torch

from conftest import make_v2_batch, tiny_v2_model
from trainer.task import build_task


def cfg(precision="fp32", fp32_loss=True):
    return {"loss": {"type": "TVTSLoss", "args": {"sort_weight": 2.0}},
            "trainer": {"gather": "official", "fp32_loss": fp32_loss, "precision": precision}}


def batch():
    b = make_v2_batch()
    return {"text": {"input_ids": b["text"], "attention_mask": (b["text"] != 0).long()}, "video": b["video"],
            "keep_ind": b["keep_ind"], "label": torch.arange(4).repeat(2, 1)}


def test_training_losses_are_normsoftmax_plus_twice_the_sort_ce_of_the_network_outputs():
    model = tiny_v2_model().eval()
    task = build_task(cfg(), "cpu")
    losses = task.training_losses(model, batch())
    with torch.no_grad():
        text, video, logits = model(batch())
    # written out: cosine similarities / 0.05, -mean log-softmax of the diagonal over rows plus over columns
    sim = (video / video.norm(dim=1, keepdim=True)) @ (text / text.norm(dim=1, keepdim=True)).t() / 0.05
    nce = -sim.log_softmax(1).diagonal().mean() - sim.t().log_softmax(1).diagonal().mean()
    sort = -torch.stack([logits[b, k].log_softmax(0)[k] for b in range(2) for k in range(4)]).mean()
    torch.testing.assert_close(losses["nce"], nce)
    torch.testing.assert_close(losses["sort"], sort)
    torch.testing.assert_close(losses["total"], nce + 2 * sort)


def test_loss_precision_follows_fp32_loss_under_autocast():
    model = tiny_v2_model().eval()
    low = build_task(cfg("bf16", fp32_loss=False), "cpu").training_losses(model, batch())
    high = build_task(cfg("bf16", fp32_loss=True), "cpu").training_losses(model, batch())
    assert low["total"].dtype == torch.bfloat16 and high["total"].dtype == torch.float32


def test_unused_parameters_only_with_single_caption_loaders():
    task = build_task(cfg(), "cpu")
    yt, webvid = types.SimpleNamespace(texts_per_sample=4), types.SimpleNamespace(texts_per_sample=1)
    assert not task.find_unused_parameters([yt]) and task.find_unused_parameters([yt, webvid])


def test_validation_metrics_report_retrieval_and_sorting():
    model = tiny_v2_model().eval()
    task = build_task(cfg(), "cpu")
    out = task.validation_outputs(model, batch())
    assert set(out) == {"text", "video", "sort_logits", "sort_labels"}
    metrics = task.validation_metrics(out)
    assert {"t2v_R1", "v2t_MedR", "sort_acc", "sort_order_acc"} <= set(metrics)
    single = batch()
    single["text"] = {k: v[:2] for k, v in single["text"].items()}
    single["label"] = torch.zeros(2, 1, dtype=torch.int64)
    assert "sort_logits" not in task.validation_outputs(model, single)
    assert "sort acc" in task.format_metrics(metrics)
