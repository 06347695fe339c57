"""Validation metrics: text-video retrieval ranks and transcript-sort accuracy."""
import numpy as np
import torch

from utils.retrieval import rank_metrics, retrieval_ranks


def retrieval_metrics(sims, ties="optimistic"):
    """Query rows against gallery columns, the true match on the diagonal: R1/5/10/50 (percent), median and mean
    rank (1-based). Ties: "optimistic" ranks the true item first among equal scores (the official text-to-video
    rule), "averaged" gives it the mean position of its tie group (the official video-to-text rule; R1 counts
    rank 0 only, as official)."""
    if ties not in ("optimistic", "averaged"):
        raise ValueError(f"ties must be 'optimistic' or 'averaged', got {ties!r}")
    ranks = retrieval_ranks(torch.as_tensor(np.asarray(sims, dtype=np.float64)),
                            "optimistic" if ties == "optimistic" else "averaging")
    return {k.replace("@", ""): v for k, v in rank_metrics(ranks).items()}


def sort_accuracy(positions, labels):
    """Per-transcript accuracy and whole-order accuracy (every transcript of a clip right; the official
    'Top-1 Accuracy for Frame Prediction'), in percent, of predicted `positions` (B, K) against `labels` (B, K)."""
    correct = torch.as_tensor(positions) == torch.as_tensor(labels)
    return {"sort_acc": 100.0 * correct.float().mean().item(),
            "sort_order_acc": 100.0 * correct.all(-1).float().mean().item()}
