"""Text-video retrieval metrics: hand-worked ties, MedR/MeanR and dual softmax, and agreement with an independent
restatement of the official metric code (Frozen-in-Time's t2v_metrics / v2t_metrics with one caption per video)."""
import math

import numpy as np
import pytest
import torch

from utils.retrieval import dual_softmax, rank_metrics, retrieval_ranks, text_video_metrics


def test_tie_rules_by_hand():
    sims = torch.tensor([[0.9, 0.9, 0.1], [0.5, 0.2, 0.8], [0.3, 0.3, 0.3]])
    assert retrieval_ranks(sims, "optimistic").tolist() == [0.0, 2.0, 0.0]
    assert retrieval_ranks(sims, "averaging").tolist() == [0.5, 2.0, 1.0]
    with pytest.raises(ValueError, match="square"):
        retrieval_ranks(torch.zeros(2, 3), "optimistic")


def test_rank_metrics_by_hand():
    m = rank_metrics([0, 2, 0, 7, 60])
    assert (m["R@1"], m["R@5"], m["R@10"], m["R@50"]) == (40.0, 60.0, 80.0, 80.0)
    assert m["MedR"] == 3.0 and m["MeanR"] == pytest.approx(69 / 5 + 1)
    assert rank_metrics([0, 1, 2, 3])["MedR"] == 2.5  # numpy median of an even count, + 1


def official_t2v_ranks(sims):
    """The official t2v rule, restated: sort each row's distances, find where the true distance sits by exact
    equality, keep the first position of each row when there are ties."""
    dists = -sims
    sorted_dists = np.sort(dists, axis=1)
    gt = np.diag(dists)[:, None]
    rows, cols = np.where((sorted_dists - gt) == 0)
    _, first = np.unique(rows, return_index=True)
    return cols[first].astype(float)


def official_v2t_ranks(sims):
    """The official v2t rule, restated: per video, the mean sorted position of the entries equal to its caption's."""
    dists = -sims.T
    return np.array([np.where((np.sort(row) - row[i]) == 0)[0].mean() for i, row in enumerate(dists)])


def official_cols2metrics(cols):
    n = len(cols)
    return {"R@1": 100 * float(np.sum(cols == 0)) / n, "R@5": 100 * float(np.sum(cols < 5)) / n,
            "R@10": 100 * float(np.sum(cols < 10)) / n, "R@50": 100 * float(np.sum(cols < 50)) / n,
            "MedR": np.median(cols) + 1, "MeanR": np.mean(cols) + 1}


@pytest.mark.parametrize("levels", [3, 7, 1000])
def test_agrees_with_the_official_rules_including_ties(levels):
    rng = np.random.default_rng(levels)
    sims = np.round(rng.uniform(-1, 1, size=(120, 120)) * levels) / levels  # few levels: many ties
    sims[7] = sims[3]  # duplicate captions: tied true scores, fractional v2t ranks
    sims[8] = sims[3]
    ours = text_video_metrics(torch.from_numpy(sims))
    for direction, ranks in (("t2v", official_t2v_ranks(sims)), ("v2t", official_v2t_ranks(sims))):
        expected = official_cols2metrics(ranks)
        assert ours[direction] == pytest.approx(expected, abs=1e-9), direction


def test_dual_softmax_by_hand():
    sims = torch.tensor([[0.5, 0.6], [0.1, 0.7]], dtype=torch.float64)
    t = 0.1
    col0, col1 = [math.exp(5), math.exp(1)], [math.exp(6), math.exp(7)]
    expected = torch.tensor([[0.5 * col0[0] / sum(col0), 0.6 * col1[0] / sum(col1)],
                             [0.1 * col0[1] / sum(col0), 0.7 * col1[1] / sum(col1)]], dtype=torch.float64)
    torch.testing.assert_close(dual_softmax(sims, t, 0), expected)
    # the hub video 1 beats text 0's own video before re-weighting, not after
    plain, dsl = text_video_metrics(sims), text_video_metrics(sims, "dsl", t)
    assert plain["t2v"]["R@1"] == 50.0 and dsl["t2v"]["R@1"] == 100.0
    with pytest.raises(ValueError, match="postprocess"):
        text_video_metrics(sims, "qb_norm")


def test_a_tie_at_the_top_is_not_a_hit_at_one_in_v2t():
    """Two identical captions: each video's caption ties with the other's (averaged rank 0.5), which the official
    counts as a miss at R@1 and a hit at R@5."""
    sims = torch.tensor([[0.9, 0.9, 0.1], [0.9, 0.9, 0.1], [0.1, 0.2, 0.8]])
    v2t = text_video_metrics(sims)["v2t"]
    assert v2t["R@1"] == pytest.approx(100 / 3) and v2t["R@5"] == 100.0
    assert official_cols2metrics(official_v2t_ranks(sims.numpy()))["R@1"] == pytest.approx(100 / 3)
