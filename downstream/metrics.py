"""Downstream metrics: top-k accuracy, the multi-view video merge, and zero-shot video-to-video retrieval (text-video
retrieval ranks live in `utils.retrieval`, shared with pretraining validation)."""
import numpy as np
import torch

MERGES = ("logits", "softmax")
TIE_RULES = ("optimistic", "pessimistic")


def accuracy(logits, target, topk=(1, 5)):
    """Percent of rows whose label is among the k highest logits, for each k (timm.utils.accuracy; k is capped
    at the number of classes)."""
    logits, target = torch.as_tensor(logits), torch.as_tensor(target)
    if logits.ndim != 2 or target.shape != (logits.shape[0],):
        raise ValueError(f"accuracy needs (N, C) logits and (N,) targets, got {tuple(logits.shape)} and "
                         f"{tuple(target.shape)}")
    if len(target) == 0:
        raise ValueError("accuracy of an empty batch is undefined")
    maxk = min(max(topk), logits.shape[1])
    ranked = logits.topk(maxk, dim=1).indices
    hits = ranked == target.to(ranked.device).view(-1, 1)
    return [100.0 * hits[:, :k].any(1).float().sum().item() / len(target) for k in topk]


def _as_ints(values, what):
    array = np.asarray(values.cpu() if isinstance(values, torch.Tensor) else values)
    if array.ndim != 1:
        raise ValueError(f"merge_views: {what} must be one value per view, got shape {array.shape}")
    return array.astype(np.int64)


def merge_views(ids, chunks, splits, logits, labels, merge="logits"):
    """Per-video prediction from its test views (temporal chunk x spatial split), then top-1/top-5 over videos.

    A view repeated under the same (id, chunk, split) (DistributedSampler padding) counts once: the first copy.
    merge "logits" averages raw logits over a video's views (TVTS); "softmax" averages per-view probabilities
    (VideoMAE). Ties go to the lower class index. Returns {"top1", "top5"} (percent over unique videos),
    "videos", "views" (unique views used) and "predictions" ({video id: predicted class}).
    """
    if merge not in MERGES:
        raise ValueError(f"merge must be one of {MERGES}, got {merge!r}")
    scores = torch.as_tensor(logits).detach().to("cpu", torch.float64)
    ids = [i.item() if isinstance(i, torch.Tensor) else i for i in ids]
    chunks, splits, labels = _as_ints(chunks, "chunks"), _as_ints(splits, "splits"), _as_ints(labels, "labels")
    if scores.ndim != 2 or not len(ids) == len(chunks) == len(splits) == len(labels) == scores.shape[0]:
        raise ValueError(f"merge_views: {len(ids)} ids, {len(chunks)} chunks, {len(splits)} splits, "
                         f"{len(labels)} labels and logits of shape {tuple(scores.shape)} must describe the same views")
    if merge == "softmax":
        scores = scores.softmax(dim=1)
    video_index, video_label, kept = {}, [], []
    seen = set()
    for row, (vid, chunk, split, label) in enumerate(zip(ids, chunks, splits, labels)):
        if vid not in video_index:
            video_index[vid] = len(video_index)
            video_label.append(int(label))
        elif video_label[video_index[vid]] != label:
            raise ValueError(f"merge_views: video {vid!r} has views labelled {video_label[video_index[vid]]} and "
                             f"{int(label)}")
        if (vid, chunk, split) not in seen:
            seen.add((vid, chunk, split))
            kept.append(row)
    if not kept:
        raise ValueError("merge_views: no views to merge")
    kept = torch.as_tensor(kept)
    owner = torch.as_tensor([video_index[ids[row]] for row in kept.tolist()])
    sums = torch.zeros(len(video_index), scores.shape[1], dtype=torch.float64).index_add_(0, owner, scores[kept])
    means = sums / torch.bincount(owner, minlength=len(video_index)).unsqueeze(1)
    ranked = torch.argsort(-means, dim=1, stable=True)[:, :5]
    hits = ranked == torch.as_tensor(video_label).unsqueeze(1)
    return {"top1": 100.0 * hits[:, 0].double().mean().item(), "top5": 100.0 * hits.any(1).double().mean().item(),
            "videos": len(video_index), "views": len(kept),
            "predictions": dict(zip(video_index, ranked[:, 0].tolist()))}


def video_retrieval_recall(features, labels, ks=(1, 5, 10), block_size=1024, ties="optimistic"):
    """Zero-shot video-to-video retrieval: every video queries all the others (leave-one-out) by cosine similarity;
    R@K is the percent of queries with at least one same-label video among their K nearest.

    The rank of a query's first hit is the number of other videos scoring above its best same-label video
    ("optimistic": a same-label video wins ties) or at least as high, itself aside ("pessimistic"). Exact and
    independent of `block_size`, which only bounds memory to block_size x N similarities at a time (the official
    sorted a full N x N matrix, which leaves tie order to the sort). Runs on the features' device, in float32 or
    wider (L2 norms clamped to >= 1e-8). A query whose label no other video shares never hits.
    """
    if ties not in TIE_RULES:
        raise ValueError(f"ties must be one of {TIE_RULES}, got {ties!r}")
    features = torch.as_tensor(features)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"retrieval needs (N, D) features with N >= 2, got {tuple(features.shape)}")
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    labels = torch.as_tensor(labels, device=features.device)
    if labels.shape != (features.shape[0],):
        raise ValueError(f"retrieval needs one label per feature row: {tuple(labels.shape)} labels for "
                         f"{features.shape[0]} rows")
    features = features.to(torch.promote_types(features.dtype, torch.float32))
    unit = features / features.norm(dim=1, keepdim=True).clamp_min(1e-8)
    n = unit.shape[0]
    first_hit = torch.empty(n, dtype=torch.float64, device=unit.device)
    for start in range(0, n, block_size):
        stop = min(start + block_size, n)
        sims = unit[start:stop] @ unit.T
        rows = torch.arange(stop - start, device=unit.device)
        is_self = torch.zeros_like(sims, dtype=torch.bool)
        is_self[rows, rows + start] = True
        same = (labels[start:stop, None] == labels[None, :]) & ~is_self
        best_same = sims.masked_fill(~same, float("-inf")).amax(dim=1, keepdim=True)
        if ties == "optimistic":
            ahead = (sims > best_same) & ~is_self
        else:
            ahead = (sims >= best_same) & ~same & ~is_self
        rank = ahead.sum(dim=1).double()
        first_hit[start:stop] = torch.where(same.any(dim=1), rank, torch.full_like(rank, float("inf")))
    out = {f"R{k}": 100.0 * (first_hit < k).double().mean().item() for k in ks}
    out["queries"] = n
    return out

