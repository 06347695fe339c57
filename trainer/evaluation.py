"""Validation: embeddings of every validation clip (gathered over ranks), retrieval ranks and sort accuracy."""
from collections import Counter

import torch

from data_loader.loader import set_epoch
from model import sim_matrix

from utils.distributed import all_reduce_sum, gather_rows
from .metrics import retrieval_metrics, sort_accuracy


@torch.no_grad()
def evaluate(model, loaders, dataset_names, device, autocast_dtype=None):
    """{dataset name: metrics}: text-to-video and video-to-text R@1/5/10/50, MedR, MeanR (the text of a clip is
    the mean of its transcript embeddings), sort accuracy per transcript and per whole order, and how many clips
    were evaluated and how many were skipped as unreadable. Validation draws are fixed (epoch 0) so every
    evaluation sees the same windows, crops and masks."""
    was_training = model.training
    model.eval()
    results = {}
    for name, loader in zip(dataset_names, loaders):
        set_epoch(loader, 0)
        texts, videos, logits, labels, skipped = [], [], [], [], Counter()
        for batch in loader:
            skipped.update(r["reason"] for r in batch["skipped"])
            if "video" not in batch:
                continue
            inputs = {"text": {k: v.to(device) for k, v in batch["text"].items()},
                      "video": batch["video"].to(device), "keep_ind": batch["keep_ind"]}
            with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                text, video, logit = model(inputs)
            texts.append(text.float())
            videos.append(video.float())
            if logit is not None:
                logits.append(logit.float())
                labels.append(batch["label"].to(device))
        if not texts:
            raise RuntimeError(f"validation of {name}: no clip could be loaded ({dict(skipped)})")
        text, video = gather_rows(torch.cat(texts)), gather_rows(torch.cat(videos))
        sims = sim_matrix(text, video).cpu().numpy()
        metrics = {f"t2v_{k}": v for k, v in retrieval_metrics(sims).items()}
        metrics.update({f"v2t_{k}": v for k, v in retrieval_metrics(sims.T, ties="averaged").items()})
        if logits:
            metrics.update(sort_accuracy(gather_rows(torch.cat(logits)).cpu(), gather_rows(torch.cat(labels)).cpu()))
        reasons = sorted(skipped)
        counts = all_reduce_sum([skipped[r] for r in reasons], device) if reasons else []
        metrics["val_clips"], metrics["val_skipped"] = len(text), int(sum(counts))
        results[name] = metrics
    model.train(was_training)
    return results


def format_results(epoch, results):
    """One line per dataset, as printed in the log."""
    lines = []
    for name, m in results.items():
        line = (f"[val] epoch {epoch} {name}: t2v R@1/5/10 {m['t2v_R1']:.1f}/{m['t2v_R5']:.1f}/{m['t2v_R10']:.1f} "
                f"MedR {m['t2v_MedR']:.0f}, v2t R@1/5/10 {m['v2t_R1']:.1f}/{m['v2t_R5']:.1f}/{m['v2t_R10']:.1f} "
                f"MedR {m['v2t_MedR']:.0f}")
        if "sort_acc" in m:
            line += f", sort acc {m['sort_acc']:.1f}% (whole order {m['sort_order_acc']:.1f}%)"
        lines.append(line + f" on {m['val_clips']} clips ({m['val_skipped']} unreadable skipped)")
    return lines
