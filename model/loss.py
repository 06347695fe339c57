"""The TVTS objectives: NormSoftmax video-text contrastive loss and the transcript-sort cross-entropy."""
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


def sort_loss(sort_logits, labels=None):
    """Mean K-way cross-entropy over every transcript; `labels` (B, K) default to the identity order."""
    b, k, n = sort_logits.shape
    if labels is None:
        labels = torch.arange(k, device=sort_logits.device).repeat(b)
    return F.cross_entropy(sort_logits.reshape(-1, n), labels.reshape(-1))


@OBJECTIVES.register("TVTSLoss")
class TVTSLoss(nn.Module):
    """total = nce_weight * NCE(sim(video, text)) + sort_weight * sort CE (official weights 1 and 2, tau 0.05).

    Takes the (gathered) embeddings with videos as rows, as the official trainer does. The sort term is zero
    when there are no sort logits (single-caption datasets).
    """

    def __init__(self, temperature=0.05, nce_weight=1.0, sort_weight=2.0):
        super().__init__()
        self.temperature, self.nce_weight, self.sort_weight = temperature, nce_weight, sort_weight

    def forward(self, video_embeddings, text_embeddings, sort_logits=None, labels=None):
        nce = norm_softmax_loss(sim_matrix(video_embeddings, text_embeddings), self.temperature)
        sort = sort_loss(sort_logits, labels) if sort_logits is not None else nce.new_zeros(())
        return {"total": self.nce_weight * nce + self.sort_weight * sort, "nce": nce, "sort": sort}
