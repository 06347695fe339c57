"""The TVTS objectives: NormSoftmax video-text contrastive loss and the sort loss, with the paper's sort modellings
(Table 3): per-item K-way classification (official), pairwise order, one K!-way order from per-slot scores, and
VCOP's K!-way order classification (Table 1). The items sorted are transcripts or, with a video-segment head
(Table 1), the clip's K video segments; either way they come in temporal order, so the labels are the identity."""
import itertools
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from utils.registry import Registry

OBJECTIVES = Registry("objective (loss.type)")


def sim_matrix(a, b, eps=1e-8):
    """Cosine similarity of the rows of `a` with the rows of `b`; row norms are clamped below at `eps`."""
    a = a / a.norm(dim=1, keepdim=True).clamp_min(eps)
    b = b / b.norm(dim=1, keepdim=True).clamp_min(eps)
    return a @ b.t()


def norm_softmax_loss(sim, temperature=0.05):
    """InfoNCE with the diagonal as positives, rows plus columns: the two directions are summed, not averaged."""
    logits = sim / temperature
    rows = -F.log_softmax(logits, dim=1).diagonal().mean()
    cols = -F.log_softmax(logits.t(), dim=1).diagonal().mean()
    return rows + cols


def identity_order(sort_logits):
    """(B, K) labels 0..K-1: the official never shuffles, every clip's transcripts come in temporal order."""
    b, k = sort_logits.shape[:2]
    return torch.arange(k, device=sort_logits.device).repeat(b, 1)


def sort_loss(sort_logits, labels=None):
    """K-way (official): mean cross-entropy of each transcript's position; `labels` (B, K) positions, default the
    identity order."""
    b, k, n = sort_logits.shape
    labels = identity_order(sort_logits) if labels is None else labels
    return F.cross_entropy(sort_logits.reshape(-1, n), labels.reshape(-1))


def pairwise_sort_loss(pair_logits, labels=None):
    """Pairwise (ours): binary cross-entropy of "transcript i comes before transcript j" over the K(K-1) ordered
    pairs i != j of every clip; `pair_logits` (B, K, K)."""
    labels = identity_order(pair_logits) if labels is None else labels
    target = (labels.unsqueeze(2) < labels.unsqueeze(1)).to(pair_logits.dtype)
    k = pair_logits.shape[1]
    off = ~torch.eye(k, dtype=torch.bool, device=pair_logits.device)
    return F.binary_cross_entropy_with_logits(pair_logits[:, off], target[:, off])


def permutations(k, device=None):
    """(K!, K): every assignment of positions to the K transcripts, in itertools order."""
    return torch.tensor(list(itertools.permutations(range(k))), device=device)


def order_scores(slot_logits):
    """(B, K!) scores of every order: the sum over transcripts of the score of the position the order gives it."""
    k = slot_logits.shape[1]
    orders = permutations(k, slot_logits.device)
    return slot_logits[:, torch.arange(k, device=slot_logits.device), orders].sum(-1)


def order_index(labels):
    """(B,) index into `permutations(K)` of each row of `labels` (B, K)."""
    orders = permutations(labels.shape[1], labels.device)
    return (orders.unsqueeze(0) == labels.unsqueeze(1)).all(-1).float().argmax(1)


def factorial_sort_loss(slot_logits, labels=None):
    """Factorial (ours): one cross-entropy over the K! orders of a clip, an order scored by the sum of its
    per-transcript position scores `slot_logits` (B, K, K) (the K-way head's output)."""
    labels = identity_order(slot_logits) if labels is None else labels
    return F.cross_entropy(order_scores(slot_logits), order_index(labels))


def order_class_loss(order_logits, labels=None):
    """VCOP (Table 1): cross-entropy of one classification over the K! orders, `order_logits` (B, K!) indexed as
    `permutations(K)` (the clip-order head's output, its classes relabelled to the segments' temporal order; the
    identity order is class 0)."""
    if labels is None:
        return F.cross_entropy(order_logits, order_logits.new_zeros(len(order_logits), dtype=torch.long))
    return F.cross_entropy(order_logits, order_index(labels))


def items_sorted(n_orders):
    """K from the K! order classes."""
    k = next((k for k in range(1, 13) if math.factorial(k) >= n_orders), 0)
    if math.factorial(k) != n_orders:
        raise ValueError(f"{n_orders} order classes is not K! for any K <= 12")
    return k


def kway_positions(logits):
    return logits.argmax(-1)


def pairwise_positions(pair_logits):
    """Each transcript's predicted position: how many others are predicted to come before it."""
    k = pair_logits.shape[1]
    before = (pair_logits > 0) & ~torch.eye(k, dtype=torch.bool, device=pair_logits.device)
    return before.sum(1)


def factorial_positions(slot_logits):
    """The positions of the best-scoring order."""
    orders = permutations(slot_logits.shape[1], slot_logits.device)
    return orders[order_scores(slot_logits).argmax(1)]


def order_class_positions(order_logits):
    """The positions of the most likely of the K! order classes."""
    return permutations(items_sorted(order_logits.shape[1]), order_logits.device)[order_logits.argmax(1)]


# sort modelling -> (loss, predicted positions, the sort heads whose output it reads)
SORT_MODELLINGS = {"kway": (sort_loss, kway_positions, ("sort_transformer", "segment_sort")),
                   "pairwise": (pairwise_sort_loss, pairwise_positions, ("pairwise_sort",)),
                   "factorial": (factorial_sort_loss, factorial_positions, ("sort_transformer", "segment_sort")),
                   "vcop": (order_class_loss, order_class_positions, ("clip_order",))}


@OBJECTIVES.register("TVTSLoss")
class TVTSLoss(nn.Module):
    """total = nce_weight * NCE(sim(video, text)) + sort_weight * sort loss (official weights 1 and 2, tau 0.05,
    `sort_modelling` "kway"). A zero weight leaves its term out of the total (still reported): `sort_weight: 0`
    is the paper's M_base, `nce_weight: 0` its M_sort.

    Takes the (gathered) embeddings with videos as rows, as the official trainer does. The sort term is zero
    when there are no sort logits (single-caption datasets).
    """

    def __init__(self, temperature=0.05, nce_weight=1.0, sort_weight=2.0, sort_modelling="kway"):
        super().__init__()
        if sort_modelling not in SORT_MODELLINGS:
            raise ValueError(f"loss.args.sort_modelling must be one of {sorted(SORT_MODELLINGS)}, got "
                             f"{sort_modelling!r}")
        self.temperature, self.nce_weight, self.sort_weight = temperature, nce_weight, sort_weight
        self.sort_modelling = sort_modelling
        self._sort_loss, self.sort_positions, _ = SORT_MODELLINGS[sort_modelling]

    def forward(self, video_embeddings, text_embeddings, sort_logits=None, labels=None):
        nce = norm_softmax_loss(sim_matrix(video_embeddings, text_embeddings), self.temperature)
        sort = self._sort_loss(sort_logits, labels) if sort_logits is not None else nce.new_zeros(())
        total = nce.new_zeros(())
        for weight, term in ((self.nce_weight, nce), (self.sort_weight, sort)):
            if weight:  # a zero-weight term stays out of the graph: its modules get no gradient
                total = total + weight * term
        return {"total": total, "nce": nce, "sort": sort}
