"""The objectives against direct, element-by-element computations of their formulas."""
import math

import torch

from model import TVTSLoss, norm_softmax_loss, sim_matrix, sort_loss


def test_sim_matrix_is_cosine_similarity_with_a_clamped_norm():
    a, b = torch.randn(3, 5, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64)
    sim = sim_matrix(a, b)
    for i in range(3):
        for j in range(4):
            assert math.isclose(sim[i, j].item(), (a[i] @ b[j] / a[i].norm() / b[j].norm()).item(), rel_tol=1e-12)
    zero = sim_matrix(torch.zeros(1, 5), torch.randn(2, 5))
    assert torch.equal(zero, torch.zeros(1, 2))


def test_norm_softmax_sums_both_directions():
    sim = torch.rand(4, 4, dtype=torch.float64) * 2 - 1
    tau = 0.05
    rows = -sum(sim[i, i] / tau - math.log(sum(math.exp(sim[i, j] / tau) for j in range(4))) for i in range(4)) / 4
    cols = -sum(sim[j, j] / tau - math.log(sum(math.exp(sim[i, j] / tau) for i in range(4))) for j in range(4)) / 4
    assert math.isclose(norm_softmax_loss(sim, tau).item(), rows + cols, rel_tol=1e-10)


def test_sort_loss_is_mean_cross_entropy_against_the_identity_order():
    logits = torch.randn(3, 4, 4, dtype=torch.float64)
    expected = 0.0
    for b in range(3):
        for k in range(4):
            expected += -(logits[b, k, k] - torch.logsumexp(logits[b, k], 0)).item()
    assert math.isclose(sort_loss(logits).item(), expected / 12, rel_tol=1e-10)
    labels = torch.tensor([[3, 2, 1, 0]] * 3)
    flipped = sum(-(logits[b, k, 3 - k] - torch.logsumexp(logits[b, k], 0)).item() for b in range(3) for k in range(4))
    assert math.isclose(sort_loss(logits, labels).item(), flipped / 12, rel_tol=1e-10)


def test_total_is_nce_plus_two_sort_with_videos_as_rows():
    v, t = torch.randn(4, 8, dtype=torch.float64), torch.randn(4, 8, dtype=torch.float64)
    logits = torch.randn(4, 4, 4, dtype=torch.float64)
    out = TVTSLoss()(v, t, logits)
    nce = norm_softmax_loss(sim_matrix(v, t), 0.05)
    assert math.isclose(out["nce"].item(), nce.item(), rel_tol=1e-12)
    assert math.isclose(out["total"].item(), nce.item() + 2 * sort_loss(logits).item(), rel_tol=1e-12)
    custom = TVTSLoss(temperature=0.1, nce_weight=0.5, sort_weight=3.0)(v, t, logits)
    expected = 0.5 * norm_softmax_loss(sim_matrix(v, t), 0.1) + 3 * sort_loss(logits)
    assert math.isclose(custom["total"].item(), expected.item(), rel_tol=1e-12)
    assert TVTSLoss()(v, t, None)["sort"].item() == 0.0
