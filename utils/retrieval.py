"""Text-video retrieval ranks and metrics with the official rules (Frozen-in-Time's `t2v_metrics` / `v2t_metrics`,
used by TVTS and TVTSv2 validation and zero-shot evaluation), and dual-softmax re-ranking; one text per video.
"""
import numpy as np
import torch


def retrieval_ranks(sims, ties):
    """0-based rank of each row's true column (the diagonal) among that row's scores.

    `ties` "optimistic": the number of columns scoring strictly higher (a tie with the true column counts in its
    favour); "averaging": the mean position over the run of tied scores, i.e. higher + (tied - 1) / 2. These are
    the two rules of the official metric code (Frozen-in-Time's `t2v_metrics` and `v2t_metrics`), which located
    the true score in each sorted row by exact equality.
    """
    sims = torch.as_tensor(sims)
    if sims.ndim != 2 or sims.shape[0] != sims.shape[1] or sims.shape[0] == 0:
        raise ValueError(f"retrieval needs a square (N, N) similarity matrix, got {tuple(sims.shape)}")
    true = sims.diagonal().unsqueeze(1)
    higher = (sims > true).sum(1).double()
    if ties == "optimistic":
        return higher
    if ties == "averaging":
        return higher + ((sims == true).sum(1).double() - 1) / 2
    raise ValueError(f"ties must be 'optimistic' or 'averaging', got {ties!r}")


def rank_metrics(ranks, ks=(1, 5, 10, 50)):
    """R@K (percent of queries ranked below K; R@1: ranked 0), MedR = median rank + 1, MeanR = mean rank + 1 (numpy's median:
    the mean of the two middle ranks for an even count), as the official `cols2metrics`."""
    ranks = np.asarray(torch.as_tensor(ranks).double().cpu())
    # R@1 counts rank 0 exactly, as the official: an averaged tie rank of 0.5 is not a hit at 1 (but is at 5)
    out = {f"R@{k}": 100.0 * float(np.mean(ranks == 0 if k == 1 else ranks < k)) for k in ks}
    out["MedR"] = float(np.median(ranks)) + 1
    out["MeanR"] = float(np.mean(ranks)) + 1
    return out


def dual_softmax(sims, temperature, axis):
    """Dual-softmax re-weighting (CAMoE, arXiv 2109.04290) of a text x video similarity matrix: every score times
    the softmax of the scores / `temperature` over `axis`, the axis opposite to the one being ranked (axis 0, over
    texts, for text-to-video; axis 1, over videos, for video-to-text). Transductive: each score depends on every
    other query of the test set."""
    sims = torch.as_tensor(sims).double()
    return sims * torch.softmax(sims / temperature, dim=axis)


def text_video_metrics(sims, postprocess="none", temperature=0.01):
    """t2v and v2t metrics of a text x video similarity matrix (text i belongs to video i): t2v ties broken
    optimistically, v2t by averaging (the official rules). `postprocess` "dsl" ranks the dual-softmax scores."""
    sims = torch.as_tensor(sims).double()
    if postprocess == "none":
        t2v, v2t = sims, sims.T
    elif postprocess == "dsl":
        t2v, v2t = dual_softmax(sims, temperature, 0), dual_softmax(sims, temperature, 1).T
    else:
        raise ValueError(f"postprocess must be 'none' or 'dsl', got {postprocess!r}")
    return {"t2v": rank_metrics(retrieval_ranks(t2v, "optimistic")),
            "v2t": rank_metrics(retrieval_ranks(v2t, "averaging"))}
