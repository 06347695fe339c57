"""Downstream metrics on hand-made cases: top-k accuracy, the multi-view merge and leave-one-out retrieval."""
import math

import numpy as np
import pytest
import torch

from downstream.metrics import accuracy, merge_views, video_retrieval_recall


def test_accuracy_top1_top2_and_k_capped_at_the_class_count():
    logits = torch.tensor([[0.1, 0.9, 0.5, 0.0],   # order 1, 2, 0, 3
                           [0.8, 0.1, 0.0, 0.3],   # order 0, 3, 1, 2
                           [0.0, 0.1, 0.2, 0.3]])  # order 3, 2, 1, 0
    target = torch.tensor([1, 3, 0])
    top1, top2, top5 = accuracy(logits, target, topk=(1, 2, 5))
    assert top1 == pytest.approx(100 / 3)
    assert top2 == pytest.approx(200 / 3)
    assert top5 == pytest.approx(100.0)


def test_accuracy_rejects_mismatched_or_empty_batches():
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        accuracy(torch.zeros(2, 3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="empty"):
        accuracy(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))


def merge_case():
    """Two videos; video "a" has one confident view for class 0 and two mild views for class 1."""
    ids = ["a", "a", "a", "b", "b"]
    chunks = [0, 0, 1, 0, 1]
    splits = [0, 1, 0, 0, 0]
    logits = torch.tensor([[10.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 3.0]])
    labels = [1, 1, 1, 2, 2]
    return ids, chunks, splits, logits, labels


def test_logit_and_softmax_merges_disagree_on_a_crafted_video():
    # mean logits of "a": (10/3, 4/3, 0) -> class 0 (wrong). Mean probabilities: view 1 ~ (1, 0, 0); views 2, 3
    # softmax(0, 2, 0) = (1, e^2, 1) / (2 + e^2); class 1 gets 2 e^2 / (2 + e^2) / 3 ~ 0.525 > class 0 ~ 0.404
    p1 = 2 * math.exp(2) / (2 + math.exp(2)) / 3
    p0 = (1 / (1 + 2 * math.exp(-10)) + 2 / (2 + math.exp(2))) / 3
    assert p1 > p0
    by_logits = merge_views(*merge_case(), merge="logits")
    by_softmax = merge_views(*merge_case(), merge="softmax")
    assert by_logits["predictions"] == {"a": 0, "b": 2}
    assert by_softmax["predictions"] == {"a": 1, "b": 2}
    assert by_logits["top1"] == pytest.approx(50.0) and by_softmax["top1"] == pytest.approx(100.0)
    assert by_logits["top5"] == by_softmax["top5"] == pytest.approx(100.0)
    assert (by_logits["videos"], by_logits["views"]) == (2, 5)


def test_padding_duplicates_count_once_with_the_first_copy_kept():
    ids, chunks, splits, logits, labels = merge_case()
    # a padded repeat of view ("a", 0, 0) with logits that would flip "a" to class 2 if it were averaged in
    ids, chunks, splits, labels = ids + ["a"], chunks + [0], splits + [0], labels + [1]
    logits = torch.cat([logits, torch.tensor([[0.0, 0.0, 100.0]])])
    result = merge_views(ids, torch.tensor(chunks), torch.tensor(splits), logits, torch.tensor(labels))
    assert result["predictions"]["a"] == 0
    assert (result["videos"], result["views"]) == (2, 5)


def test_top5_and_tie_rule():
    # 7 classes; video 0's label 5 is 6th (miss), video 1's label 4 is 5th (hit); video 2 ties classes 1 and 3
    logits = torch.tensor([[6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.0],
                           [6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.0],
                           [0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0]])
    result = merge_views([10, 11, 12], [0, 0, 0], [0, 0, 0], logits, [5, 4, 3])
    assert result["predictions"] == {10: 0, 11: 0, 12: 1}
    assert result["top1"] == pytest.approx(0.0)
    assert result["top5"] == pytest.approx(200 / 3)


def test_views_of_one_video_with_different_labels_raise():
    with pytest.raises(ValueError, match="'v'.*labelled 0 and 1"):
        merge_views(["v", "v"], [0, 1], [0, 0], torch.zeros(2, 3), [0, 1])
    with pytest.raises(ValueError, match="same views"):
        merge_views(["v"], [0, 1], [0, 0], torch.zeros(2, 3), [0, 0])
    with pytest.raises(ValueError, match="merge"):
        merge_views(["v"], [0], [0], torch.zeros(1, 3), [0], merge="max")


def six_points():
    """Unit vectors at 0, 10, 25, 90, 100, 180 degrees (two scaled, to check normalisation), labels A B A B C C.

    By angle, first same-label neighbour (0-based rank): p0 -> p2 (1), p1 -> p3 (2), p2 -> p0 (1), p3 -> p1 (2),
    p4 -> p5 (2: p3 at 10, p2 at 75, then p5 at 80 degrees), p5 -> p4 (0).
    """
    angles = torch.tensor([0.0, 10.0, 25.0, 90.0, 100.0, 180.0]) * math.pi / 180
    feats = torch.stack([angles.cos(), angles.sin()], dim=1)
    feats[3] *= 5.0
    feats[5] *= 0.1
    return feats, torch.tensor([0, 1, 0, 1, 2, 2])


def test_retrieval_recall_on_six_points_with_known_neighbours():
    feats, labels = six_points()
    result = video_retrieval_recall(feats, labels, ks=(1, 2, 3))
    assert result["R1"] == pytest.approx(100 / 6)
    assert result["R2"] == pytest.approx(50.0)
    assert result["R3"] == pytest.approx(100.0)
    assert result["queries"] == 6


@pytest.mark.parametrize("block_size", [1, 2, 4, 5, 1024])
def test_retrieval_blocks_give_the_same_answer(block_size):
    feats, labels = six_points()
    assert video_retrieval_recall(feats, labels, ks=(1, 2, 3), block_size=block_size) == \
        video_retrieval_recall(feats, labels, ks=(1, 2, 3), block_size=6)


def test_retrieval_ties_and_self_exclusion():
    # q0 = (1, 0) and q1 = (0, 1) share label 0; each sees the other at cosine 0, tied with a different label.
    # q2 and q3 have labels nobody else has: with themselves excluded they can never hit.
    feats = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, -1.0], [-1.0, 0.0]])
    labels = torch.tensor([0, 0, 1, 2])
    optimistic = video_retrieval_recall(feats, labels, ks=(1, 2, 3))
    pessimistic = video_retrieval_recall(feats, labels, ks=(1, 2, 3), ties="pessimistic")
    assert (optimistic["R1"], optimistic["R2"], optimistic["R3"]) == (50.0, 50.0, 50.0)
    assert (pessimistic["R1"], pessimistic["R2"], pessimistic["R3"]) == (0.0, 50.0, 50.0)


def test_identical_features_retrieve_each_other_and_zero_features_do_not_crash():
    feats = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([3, 3, 4, 4])
    # 0 <-> 1 at cosine 1. The zero vector scores 0 against everything, so queries 2 and 3 each see their partner
    # at 0 tied with the others (first under the optimistic rule, last under the pessimistic one).
    assert video_retrieval_recall(feats, labels, ks=(1, 3)) == {"R1": 100.0, "R3": 100.0, "queries": 4}
    assert video_retrieval_recall(feats, labels, ks=(1, 3), ties="pessimistic") == \
        {"R1": 50.0, "R3": 100.0, "queries": 4}


def brute_force_hits(feats, labels, k):
    """The official computation: full N x N cosine matrix, diagonal -1000 (so a query sorts itself last), sort each
    row, look for a same-label item among the first k."""
    unit = feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-8)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -1000)
    order = np.argsort(-sims, axis=1)
    relevant = labels[order] == labels[:, None]
    return 100.0 * relevant[:, :k].any(axis=1).mean()


def test_retrieval_matches_the_full_matrix_computation_on_random_features():
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(50, 8, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 5, (50,), generator=gen)
    result = video_retrieval_recall(feats, labels, ks=(1, 5, 10), block_size=7)
    for k in (1, 5, 10):
        assert result[f"R{k}"] == pytest.approx(brute_force_hits(feats.numpy(), labels.numpy(), k))


def test_half_precision_features_are_scored_in_float32():
    feats, labels = six_points()
    assert video_retrieval_recall(feats.half(), labels, ks=(1, 2, 3)) == \
        video_retrieval_recall(feats.half().float(), labels, ks=(1, 2, 3))


def test_retrieval_input_errors():
    with pytest.raises(ValueError, match="one label per feature row"):
        video_retrieval_recall(torch.zeros(3, 2), torch.zeros(2))
    with pytest.raises(ValueError, match="N >= 2"):
        video_retrieval_recall(torch.zeros(1, 2), torch.zeros(1))
    with pytest.raises(ValueError, match="ties"):
        video_retrieval_recall(torch.zeros(3, 2), torch.zeros(3), ties="random")
