"""Validation metrics: text-video retrieval ranks and transcript-sort accuracy."""
import numpy as np
import torch


def retrieval_metrics(sims, ties="optimistic"):
    """Query rows against gallery columns, the true match on the diagonal: R@1/5/10/50 (percent), median and mean
    rank (1-based). Ties: "optimistic" ranks the true item first among equal scores (the official text-to-video
    rule), "averaged" gives it the mean position of its tie group (the official video-to-text rule)."""
    sims = np.asarray(sims, dtype=np.float64)
    if sims.ndim != 2 or sims.shape[0] != sims.shape[1]:
        raise ValueError(f"retrieval needs a square similarity matrix, got {sims.shape}")
    if ties not in ("optimistic", "averaged"):
        raise ValueError(f"ties must be 'optimistic' or 'averaged', got {ties!r}")
    diag = np.diag(sims)[:, None]
    ranks = (sims > diag).sum(1).astype(np.float64)  # 0-based rank of the true item
    if ties == "averaged":
        ranks += ((sims == diag).sum(1) - 1) / 2
    out = {f"R{k}": 100.0 * float(np.mean(ranks < k)) for k in (1, 5, 10, 50)}
    out["MedR"] = float(np.median(ranks) + 1)
    out["MeanR"] = float(np.mean(ranks) + 1)
    return out


def sort_accuracy(logits, labels):
    """Per-transcript accuracy and whole-order accuracy (every transcript of a clip right; the official
    'Top-1 Accuracy for Frame Prediction'), in percent."""
    pred = torch.as_tensor(logits).argmax(-1)
    correct = pred == torch.as_tensor(labels)
    return {"sort_acc": 100.0 * correct.float().mean().item(),
            "sort_order_acc": 100.0 * correct.all(-1).float().mean().item()}
