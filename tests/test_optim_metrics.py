"""The official optimiser rule, the learning-rate schedule, and the validation metrics."""
import math

import numpy as np
import pytest
import torch

from trainer.metrics import retrieval_metrics, sort_accuracy
from trainer.optim import HFAdamW, LRSchedule, build_optimizer


def test_hf_adamw_follows_its_update_rule_step_by_step():
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(5, dtype=torch.float64))
    opt = HFAdamW([p], lr=0.1, betas=(0.9, 0.99), eps=1e-3, weight_decay=0.01)
    x, m, v = p.detach().clone(), torch.zeros(5, dtype=torch.float64), torch.zeros(5, dtype=torch.float64)
    for t in range(1, 4):
        g = torch.randn(5, dtype=torch.float64)
        p.grad = g.clone()
        opt.step()
        m = 0.9 * m + 0.1 * g
        v = 0.99 * v + 0.01 * g * g
        x = x - 0.1 * math.sqrt(1 - 0.99 ** t) / (1 - 0.9 ** t) * m / (v.sqrt() + 1e-3)
        x = x - 0.1 * 0.01 * x
        torch.testing.assert_close(p.detach(), x)
    assert set(opt.state[p]) == {"step", "exp_avg", "exp_avg_sq"}


def test_hf_adamw_differs_from_torch_adamw_where_eps_matters():
    def run(opt_cls):
        p = torch.nn.Parameter(torch.full((3,), 1.0))
        opt = opt_cls([p], lr=0.1, eps=1e-2, weight_decay=0.0)
        for _ in range(2):
            p.grad = torch.full((3,), 1e-3)
            opt.step()
        return p.detach()
    assert not torch.allclose(run(HFAdamW), run(torch.optim.AdamW))
    with pytest.raises(ValueError, match="Adagrad"):
        build_optimizer(torch.nn.Linear(2, 2), "Adagrad")


def test_step_schedule_is_the_official_epoch_milestones():
    s = LRSchedule(1e-4, steps_per_epoch=10, epochs=20, milestones=(12, 16))
    assert s.lr(0) == 1e-4 and s.lr(119) == 1e-4  # epochs 1-12
    assert s.lr(120) == pytest.approx(1e-5) and s.lr(159) == pytest.approx(1e-5)  # epochs 13-16
    assert s.lr(160) == pytest.approx(1e-6)


def test_warmup_and_cosine():
    s = LRSchedule(1.0, steps_per_epoch=10, epochs=2, decay="cosine", warmup_steps=4, min_lr=0.1)
    assert s.lr(0) == pytest.approx(0.25 * (0.1 + 0.45 * (1 + math.cos(0))))
    assert s.lr(10) == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi / 2)))
    assert s.lr(20) == pytest.approx(0.1)


def test_retrieval_metrics_on_known_ranks():
    sims = np.array([[0.9, 0.1, 0.0],   # true item first
                     [0.8, 0.5, 0.1],   # true item second
                     [0.2, 0.3, 0.1]])  # true item third
    m = retrieval_metrics(sims)
    assert m["R1"] == pytest.approx(100 / 3) and m["R5"] == 100.0
    assert m["MedR"] == 2 and m["MeanR"] == 2
    tied = np.array([[0.5, 0.5], [0.5, 0.5]])
    assert retrieval_metrics(tied)["R1"] == 100.0
    assert retrieval_metrics(tied, ties="averaged")["MeanR"] == 1.5
    assert retrieval_metrics(tied, ties="averaged")["R1"] == 0.0  # rank 0.5: the official counts only rank 0


def test_sort_accuracy_per_transcript_and_whole_order():
    labels = torch.tensor([[0, 1, 2, 3], [0, 1, 2, 3]])
    acc = sort_accuracy(torch.tensor([[0, 1, 2, 3], [0, 2, 1, 3]]), labels)
    assert acc["sort_acc"] == 75.0 and acc["sort_order_acc"] == 50.0
