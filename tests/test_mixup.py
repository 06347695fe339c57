"""Batch mixup / cutmix on video tensors: draws, boxes, label weights, soft targets and the loss."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from downstream.mixup import Mixup, cutmix_box, soft_target_cross_entropy


class ScriptedDraws(np.random.RandomState):
    """A RandomState whose rand / beta / randint return scripted values, to pin lam and the box by hand."""

    def __init__(self, rand=(), beta=(), randint=()):
        super().__init__(0)
        self.script = {"rand": list(rand), "beta": list(beta), "randint": list(randint)}
        self.randint_args = []

    def rand(self, *size):
        return self.script["rand"].pop(0)

    def beta(self, a, b, size=None):
        return self.script["beta"].pop(0)

    def randint(self, low, high=None, size=None):
        self.randint_args.append((low, high))
        return self.script["randint"].pop(0)

    def used_up(self):
        return all(not values for values in self.script.values())


def batch_of_constants(b=2, c=1, t=4, h=8, w=8):
    """Video i is filled with the value i, so every mixed voxel says where it came from."""
    return torch.arange(b, dtype=torch.float32).view(b, 1, 1, 1, 1).expand(b, c, t, h, w).clone()


def test_mixup_blends_each_video_with_its_mirror_and_mixes_smoothed_targets():
    draws = ScriptedDraws(rand=[0.3, 0.9], beta=[0.7])  # apply (0.3 < 1), mixup (0.9 >= 0.5), lam 0.7
    mix = Mixup(num_classes=5, label_smoothing=0.1, rng=draws)
    x = torch.randn(4, 3, 2, 4, 4)
    out, soft = mix(x.clone(), torch.tensor([0, 1, 2, 3]))
    assert draws.used_up()
    torch.testing.assert_close(out, 0.7 * x + 0.3 * x.flip(0))
    # off = 0.1 / 5 = 0.02, on = 0.92; video 0 (class 0) is mixed with video 3 (class 3)
    row0 = torch.tensor([0.92 * 0.7 + 0.02 * 0.3, 0.02, 0.02, 0.02 * 0.7 + 0.92 * 0.3, 0.02])
    torch.testing.assert_close(soft[0], row0)
    row1 = torch.tensor([0.02, 0.92 * 0.7 + 0.02 * 0.3, 0.02 * 0.7 + 0.92 * 0.3, 0.02, 0.02])
    torch.testing.assert_close(soft[1], row1)
    torch.testing.assert_close(soft.sum(1), torch.ones(4))


def test_official_cutmix_pastes_along_time_and_height_over_the_full_width():
    # lam 0.75 -> sides int(8 * 0.5) = 4; centre (3, 5) -> rows 1..5, cols 3..7 of an 8 x 8 frame
    draws = ScriptedDraws(rand=[0.0, 0.1], beta=[0.75], randint=[3, 5])
    x = batch_of_constants(t=4)
    out, _ = Mixup(num_classes=3, rng=draws, video_cutmix="official")(x, torch.tensor([0, 1]))
    assert draws.used_up() and draws.randint_args == [(0, 8), (0, 8)]
    pasted = torch.zeros(4, 8, 8, dtype=torch.bool)
    pasted[1:4, 3:7, :] = True  # the row range 1..5 lands on frames 1..3 (T = 4), the column range on rows 3..6
    assert torch.equal(out[0, 0] == 1, pasted)
    assert torch.equal(out[1, 0] == 0, pasted)


def test_fixed_cutmix_pastes_the_box_into_every_frame():
    draws = ScriptedDraws(rand=[0.0, 0.1], beta=[0.75], randint=[3, 5])
    x = batch_of_constants(t=4)
    out, _ = Mixup(num_classes=3, rng=draws, video_cutmix="fixed")(x, torch.tensor([0, 1]))
    pasted = torch.zeros(4, 8, 8, dtype=torch.bool)
    pasted[:, 1:5, 3:7] = True
    assert torch.equal(out[0, 0] == 1, pasted)
    assert torch.equal(out[1, 0] == 0, pasted)


@pytest.mark.parametrize("video_cutmix", ["official", "fixed"])
def test_cutmix_label_weight_is_corrected_to_the_clipped_box_area(video_cutmix):
    # lam 0.75 -> 4 x 4 box; centre row 0 clips rows to 0..2, so the box is 2 x 4 = 8 of 64 pixels
    draws = ScriptedDraws(rand=[0.0, 0.1], beta=[0.75], randint=[0, 5])
    _, soft = Mixup(num_classes=2, label_smoothing=0.0, rng=draws, video_cutmix=video_cutmix)(
        batch_of_constants(), torch.tensor([0, 1]))
    torch.testing.assert_close(soft, torch.tensor([[0.875, 0.125], [0.125, 0.875]]))


def test_cutmix_box_with_minmax_draws_sides_then_corner_and_weights_by_area():
    draws = ScriptedDraws(randint=[3, 5, 2, 1])
    (yl, yh, xl, xh), lam = cutmix_box(draws, 10, 20, lam=0.5, minmax=(0.2, 0.8))
    assert draws.randint_args == [(2, 8), (4, 16), (0, 7), (0, 15)]  # sides in [min, max) x size, corner inside
    assert (yl, yh, xl, xh) == (2, 5, 1, 6)
    assert lam == pytest.approx(1 - 15 / 200)


def test_minmax_forces_cutmix_alpha_one():
    assert Mixup(mixup_alpha=0.0, cutmix_alpha=0.0, cutmix_minmax=(0.2, 0.8)).cutmix_alpha == 1.0


def test_seeded_global_numpy_draws_replay_timms_order():
    """Replays timm 0.4.5's batch draw order with numpy directly: rand (apply), rand (switch), beta, then the box
    centre (row, column) for cutmix."""
    h, w = 12, 10
    x = torch.randn(2, 1, 4, h, w)
    kinds = set()
    for seed in range(8):
        np.random.seed(seed)
        out, soft = Mixup(num_classes=2, label_smoothing=0.0, video_cutmix="fixed")(x.clone(), torch.tensor([0, 1]))
        np.random.seed(seed)
        assert np.random.rand() < 1.0
        cut = np.random.rand() < 0.5
        lam = np.random.beta(1.0, 1.0) if cut else np.random.beta(0.8, 0.8)
        expected = x.clone()
        if cut:
            ch, cw = int(h * math.sqrt(1 - lam)), int(w * math.sqrt(1 - lam))
            cy, cx = np.random.randint(0, h), np.random.randint(0, w)
            y0, y1 = max(cy - ch // 2, 0), min(cy + ch // 2, h)
            x0, x1 = max(cx - cw // 2, 0), min(cx + cw // 2, w)
            expected[..., y0:y1, x0:x1] = x.flip(0)[..., y0:y1, x0:x1]
            lam = 1 - (y1 - y0) * (x1 - x0) / (h * w)
        else:
            expected = x * lam + x.flip(0) * (1 - lam)
        kinds.add(cut)
        torch.testing.assert_close(out, expected)
        torch.testing.assert_close(soft[0], torch.tensor([lam, 1 - lam], dtype=torch.float32))
    assert kinds == {True, False}


def test_private_random_state_gives_the_same_draws_as_the_seeded_global_one():
    x = torch.randn(4, 2, 4, 8, 8)
    target = torch.tensor([0, 1, 2, 0])
    np.random.seed(11)
    global_out = Mixup(num_classes=3)(x.clone(), target)
    private_out = Mixup(num_classes=3, rng=np.random.RandomState(11))(x.clone(), target)
    for a, b in zip(global_out, private_out):
        assert torch.equal(a, b)


def test_skipped_batch_keeps_the_input_and_draws_once():
    draws = ScriptedDraws(rand=[0.95])  # 0.95 >= prob 0.9: no mixing, nothing more drawn
    x = torch.randn(2, 1, 2, 4, 4)
    out, soft = Mixup(num_classes=2, prob=0.9, label_smoothing=0.2, rng=draws)(x, torch.tensor([1, 0]))
    assert draws.used_up()
    assert torch.equal(out, x)
    torch.testing.assert_close(soft, torch.tensor([[0.1, 0.9], [0.9, 0.1]]))


def test_only_one_kind_enabled_skips_the_switch_draw():
    cut_only = ScriptedDraws(rand=[0.0], beta=[0.75], randint=[4, 4])
    Mixup(mixup_alpha=0.0, cutmix_alpha=1.0, num_classes=2, rng=cut_only)(batch_of_constants(), torch.tensor([0, 1]))
    assert cut_only.used_up()
    mix_only = ScriptedDraws(rand=[0.0], beta=[0.5])
    out, _ = Mixup(mixup_alpha=0.8, cutmix_alpha=0.0, num_classes=2, rng=mix_only)(
        batch_of_constants(), torch.tensor([0, 1]))
    assert mix_only.used_up()
    assert torch.all(out == 0.5)


def test_disabled_mixup_returns_input_with_smoothed_one_hots_and_draws_nothing():
    mix = Mixup(mixup_alpha=0.0, cutmix_alpha=0.0, num_classes=4, label_smoothing=0.1)
    assert not mix.active
    np.random.seed(5)
    keys, position = np.random.get_state()[1:3]
    x = torch.randn(2, 1, 2, 4, 4)
    out, soft = mix(x, torch.tensor([2, 0]))
    assert np.array_equal(np.random.get_state()[1], keys) and np.random.get_state()[2] == position
    assert torch.equal(out, x)
    torch.testing.assert_close(soft, torch.tensor([[0.025, 0.025, 0.925, 0.025], [0.925, 0.025, 0.025, 0.025]]))


def test_bad_inputs_and_settings_raise_clear_errors():
    with pytest.raises(ValueError, match="even"):
        Mixup(num_classes=2)(torch.zeros(3, 1, 2, 4, 4), torch.tensor([0, 1, 0]))
    with pytest.raises(ValueError, match="B, C, T, H, W"):
        Mixup(num_classes=2)(torch.zeros(2, 1, 4, 4), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        Mixup(num_classes=2)(torch.zeros(2, 1, 2, 4, 4), torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="'pair'"):
        Mixup(mode="pair")
    with pytest.raises(ValueError, match="video_cutmix"):
        Mixup(video_cutmix="hw")
    with pytest.raises(TypeError, match="RandomState"):
        Mixup(rng=np.random.default_rng(0))


def test_soft_target_cross_entropy_by_hand():
    logits = torch.tensor([[0.0, math.log(3.0)], [0.0, 0.0]])  # softmax rows: (1/4, 3/4) and (1/2, 1/2)
    target = torch.tensor([[0.5, 0.5], [1.0, 0.0]])
    row0 = -0.5 * math.log(0.25) - 0.5 * math.log(0.75)
    row1 = -math.log(0.5)
    assert soft_target_cross_entropy(logits, target).item() == pytest.approx((row0 + row1) / 2)


def test_soft_targets_from_disabled_mixup_equal_label_smoothing_cross_entropy():
    logits = torch.randn(4, 6)
    target = torch.tensor([5, 0, 3, 3])
    _, soft = Mixup(mixup_alpha=0.0, cutmix_alpha=0.0, num_classes=6, label_smoothing=0.1)(
        torch.zeros(4, 1, 1, 1, 1), target)
    torch.testing.assert_close(soft_target_cross_entropy(logits, soft),
                               F.cross_entropy(logits, target, label_smoothing=0.1))
