"""Downstream training augmentation: policy parsing, per-clip RandAugment, crop box, flip, cube erasing."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import downstream.video_augment as video_augment
from data_loader.transforms import IMAGENET_MEAN, IMAGENET_STD, random_resized_crop_box
from downstream.video_augment import (CubeErasing, RandAugmentConfig, TrainAugment, VideoRandAugment, apply_op,
                                      parse_rand_augment)


def clip(t=8, h=40, w=56, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


def rng(seed):
    return np.random.default_rng(seed)


def normalised(frames):
    """Independent reference: (T, H, W, 3) uint8 -> (3, T, H, W) ImageNet-normalised float32."""
    x = frames.astype(np.float32) / 255.0
    x = (x - np.array(IMAGENET_MEAN, np.float32)) / np.array(IMAGENET_STD, np.float32)
    return torch.from_numpy(x.transpose(3, 0, 1, 2).copy())


# ---- policy string ----

def test_official_policy_parses():
    assert parse_rand_augment("rand-m7-n4-mstd0.5-inc1") == RandAugmentConfig(7, 4, 0.5, True)


def test_missing_sections_take_the_official_defaults_and_inc0_follows_the_official_quirk():
    assert parse_rand_augment("rand-n3-m9") == RandAugmentConfig(magnitude=9, num_ops=3, magnitude_std=0.0,
                                                                 increasing=False)
    assert parse_rand_augment("rand") == RandAugmentConfig(10, 2, 0.0, False)
    assert parse_rand_augment("rand-m9-inc0").increasing  # official: bool("0") is True
    assert not parse_rand_augment("rand-m9-inc0", honour_inc0=True).increasing
    assert parse_rand_augment("rand-m9-inc1", honour_inc0=True).increasing


@pytest.mark.parametrize("bad", ["", "augmix-m7", "rand-m7.5", "rand-x3", "rand-m7-m8", "rand-inc2", "rand-m",
                                 "rand-mstd-1", "rand-m7-w0", "rand-m7-"])
def test_bad_policies_are_rejected_with_the_string_named(bad):
    with pytest.raises(ValueError, match="RandAugment policy"):
        parse_rand_augment(bad)


# ---- whole pipeline ----

def test_output_shape_dtype_and_seed_reproducibility():
    frames = clip()
    aug = TrainAugment(input_size=32, reprob=1.0)
    out = aug(frames, rng(3))
    assert out.shape == (3, 8, 32, 32) and out.dtype == torch.float32
    assert torch.equal(out, aug(frames, rng(3)))
    assert not torch.equal(out, aug(frames, rng(4)))
    assert np.array_equal(frames, clip())  # the input is not modified in place


@pytest.mark.parametrize("size", [16, 24])
def test_full_frame_box_is_normalised_laid_out_and_resized_bilinearly(size):
    frames = clip(t=4, h=16, w=16)
    aug = TrainAugment(input_size=size, auto_augment=None, scale=(1.0, 1.0), ratio=(1.0, 1.0), reprob=0)
    expected = normalised(frames)
    if size != 16:
        expected = F.interpolate(expected, size=(size, size), mode="bilinear", align_corners=False)
    torch.testing.assert_close(aug(frames, rng(0)), expected, rtol=0, atol=1e-5)


def test_identical_frames_stay_identical_through_augment_and_erasing():
    frames = np.repeat(clip(t=1), 8, axis=0)
    changed = 0
    for seed in range(6):
        for reprob in (0.0, 1.0):  # constant-fill erasing: pixel noise differs per frame by design
            out = TrainAugment(input_size=32, reprob=reprob, remode="const")(frames, rng(seed))
            assert all(torch.equal(out[:, 0], out[:, t]) for t in range(8))
        # TrainAugment draws its RandAugment first, so this is the RandAugment the outputs above went through
        augmented = VideoRandAugment(parse_rand_augment("rand-m7-n4-mstd0.5-inc1"))(frames, rng(seed))
        changed += not np.array_equal(augmented, frames)
    assert changed >= 3  # RandAugment changed the frames, so the equalities above are not vacuous


def test_each_frame_gets_the_same_op_magnitude_and_sign():
    aug = VideoRandAugment(parse_rand_augment("rand-m9-n4-mstd0.5-inc1"))
    frames = clip(t=2)
    changed = 0
    for seed in range(8):
        both = aug(frames, rng(seed))
        alone = aug(frames[1:], rng(seed))
        assert np.array_equal(both[1], alone[0])
        changed += not np.array_equal(both, frames)
    assert changed > 0


def test_each_drawn_op_applies_with_probability_one_half():
    aug = VideoRandAugment(parse_rand_augment("rand-m10-n1-mstd0-inc1"))
    frames = np.random.default_rng(0).integers(50, 200, (2, 40, 56, 3), dtype=np.uint8)  # every op changes it
    applied = []
    for seed in range(40):
        draws = rng(seed)
        draws.integers(15, size=1)  # the op choice
        applied.append(draws.random() <= 0.5)  # then the apply-or-skip draw
        assert (not np.array_equal(aug(frames, rng(seed)), frames)) == applied[-1]
    assert 10 < sum(applied) < 30


INCREASING = {"AutoContrast", "Equalize", "Invert", "Rotate", "PosterizeIncreasing", "SolarizeIncreasing",
              "SolarizeAdd", "ColorIncreasing", "ContrastIncreasing", "BrightnessIncreasing", "SharpnessIncreasing",
              "ShearX", "ShearY", "TranslateXRel", "TranslateYRel"}
STANDARD = {"AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "SolarizeAdd", "Color",
            "Contrast", "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel"}


@pytest.mark.parametrize("policy, honour_inc0, expected", [("rand-m7-n2-inc1", False, INCREASING),
                                                            ("rand-m7-n2-inc0", False, INCREASING),
                                                            ("rand-m7-n2-inc0", True, STANDARD),
                                                            ("rand-m7-n2", False, STANDARD)])
def test_ops_are_drawn_from_the_whole_op_set(monkeypatch, policy, honour_inc0, expected):
    drawn = []
    monkeypatch.setattr(video_augment, "apply_op", lambda images, name, *rest: drawn.append(name) or images)
    aug = VideoRandAugment(parse_rand_augment(policy, honour_inc0))
    for seed in range(300):
        aug(clip(t=1, h=4, w=4), rng(seed))
    assert set(drawn) == expected


# ---- single ops against hand-derived values ----

def test_brightness_increasing_at_full_magnitude_is_1_plus_or_minus_0_9():
    frame = np.full((2, 2, 3), 100, np.uint8)
    factors = set()
    for seed in range(8):
        factor = 0.1 if rng(seed).random() > 0.5 else 1.9  # the op's only draw: the sign
        out = np.asarray(apply_op([Image.fromarray(frame)], "BrightnessIncreasing", 10, rng(seed))[0])
        assert np.abs(out.astype(int) - 100 * factor).max() <= 1
        factors.add(factor)
    assert factors == {0.1, 1.9}


def test_solarize_add_at_full_magnitude_adds_110_below_128():
    values = np.array([0, 100, 127, 128, 150, 200, 255], np.uint8)
    frame = np.repeat(values[None, :, None], 3, axis=2)
    for magnitude in (10, 12.5):  # magnitudes above 10 are clipped to 10
        out = np.asarray(apply_op([Image.fromarray(frame)], "SolarizeAdd", magnitude, rng(0))[0])
        assert out[0, :, 0].tolist() == [110, 210, 237, 128, 150, 200, 255]


def test_posterize_increasing_keeps_4_minus_int_0_4_magnitude_bits():
    frame = np.full((2, 3, 3), [255, 100, 63], np.uint8)
    out = np.asarray(apply_op([Image.fromarray(frame)], "PosterizeIncreasing", 5, rng(0))[0])
    assert out[0, 0].tolist() == [192, 64, 0]  # 2 bits kept
    out = np.asarray(apply_op([Image.fromarray(frame)], "PosterizeIncreasing", 10, rng(0))[0])
    assert out.max() == 0  # 0 bits: black, as the Pillow of the official runs gave


def test_shear_x_matches_a_direct_pil_affine_with_fill_and_bicubic():
    frame = clip(t=1)[0]
    signs = set()
    for seed in range(6):
        negative = rng(seed).random() > 0.5  # the op's only draw: the sign
        factor = -0.3 if negative else 0.3  # magnitude 10 -> 10 / 10 * 0.3
        expected = Image.fromarray(frame).transform((56, 40), Image.AFFINE, (1, factor, 0, 0, 1, 0),
                                                    resample=Image.BICUBIC, fillcolor=(128, 128, 128))
        got = apply_op([Image.fromarray(frame)], "ShearX", 10, rng(seed))[0]
        assert np.array_equal(np.asarray(got), np.asarray(expected))
        signs.add(negative)
    assert signs == {True, False}


# ---- crop box ----

def test_crop_boxes_stay_inside_and_follow_scale_and_ratio():
    boxes = [random_resized_crop_box(40, 56, (0.08, 1.0), (0.75, 1.3333), rng(s)) for s in range(300)]
    for top, left, h, w in boxes:
        assert 0 <= top and top + h <= 40 and 0 <= left and left + w <= 56 and h > 0 and w > 0
        if (h, w) != (40, 53):  # not the fallback
            assert 0.08 * 0.8 <= h * w / (40 * 56) <= 1.0
            assert 0.75 * 0.85 <= w / h <= 1.3333 / 0.85  # pixel rounding of small boxes
    assert len({b[2:] for b in boxes}) > 50 and len({b[:2] for b in boxes}) > 50


def test_crop_falls_back_to_the_ratio_clamped_centre_crop():
    impossible = (2.0, 3.0)  # never fits, so all 10 tries fail
    assert random_resized_crop_box(40, 56, impossible, (0.75, 1.3333), rng(0)) == (0, 1, 40, 53)
    assert random_resized_crop_box(56, 40, impossible, (0.75, 1.3333), rng(0)) == (1, 0, 53, 40)
    assert random_resized_crop_box(40, 50, impossible, (0.75, 1.3333), rng(0)) == (0, 0, 40, 50)
    assert random_resized_crop_box(41, 60, impossible, (0.75, 1.3333), rng(0)) == (0, 2, 41, 55)  # 54.67 rounds
    assert random_resized_crop_box(60, 41, impossible, (0.75, 1.3333), rng(0)) == (2, 0, 55, 41)


# ---- flip ----

def test_flip_only_when_asked():
    ramp = np.broadcast_to((np.arange(56) * 4).astype(np.uint8)[None, None, :, None], (2, 40, 56, 3)).copy()

    def left_to_right(flip, seed):
        out = TrainAugment(input_size=16, auto_augment=None, flip=flip, reprob=0)(ramp, rng(seed))
        return bool(out[0, 0, :, -1].mean() > out[0, 0, :, 0].mean())

    assert all(left_to_right(False, s) for s in range(20))
    assert {left_to_right(True, s) for s in range(20)} == {True, False}


# ---- erasing ----

def test_erasing_probability_zero_and_one():
    frames = clip()
    for seed in range(5):
        kept = TrainAugment(input_size=32, reprob=0.0)(frames, rng(seed))
        erased = TrainAugment(input_size=32, reprob=1.0)(frames, rng(seed))
        assert not torch.equal(kept, erased)  # erasing is last, so everything before it drew the same numbers
    hits = sum(not torch.equal(CubeErasing(0.5, "const")(torch.ones(3, 2, 8, 8), rng(s)), torch.ones(3, 2, 8, 8))
               for s in range(400))
    assert 150 < hits < 250


def test_erased_box_is_one_rectangle_at_the_same_place_in_every_frame():
    frames = clip()
    for seed in range(5):
        kept = TrainAugment(input_size=32, reprob=0.0)(frames, rng(seed))
        erased = TrainAugment(input_size=32, reprob=1.0, remode="pixel")(frames, rng(seed))
        changed = (kept != erased).any(dim=0)  # (T, H, W)
        box = changed[0]
        assert all(torch.equal(box, changed[t]) for t in range(8))
        rows, cols = box.any(dim=1).nonzero().flatten(), box.any(dim=0).nonzero().flatten()
        h, w = int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)
        assert int(box.sum()) == h * w  # a filled rectangle
        assert 0.02 * 0.5 <= h * w / 32 ** 2 <= 1 / 3 * 1.3
        inside = erased[:, :, box]  # (3, T, h*w): fresh N(0, 1) noise in every frame, as official
        assert not torch.equal(inside[:, 0], inside[:, 1])


def test_more_than_one_box_skips_the_first_frames_unless_fixed():
    for seed in range(5):
        out = CubeErasing(1.0, "const", count=2)(torch.ones(3, 8, 40, 56), rng(seed))
        assert torch.equal(out[:, :4], torch.ones(3, 4, 40, 56))
        assert all((out[:, t] == 0).any() for t in range(4, 8))
        fixed = CubeErasing(1.0, "const", count=2, erase_all_frames=True)(torch.ones(3, 8, 40, 56), rng(seed))
        assert all((fixed[:, t] == 0).any() for t in range(8))


# ---- input checks ----

def test_bad_inputs_and_settings_are_errors():
    with pytest.raises(ValueError, match="uint8"):
        TrainAugment()(clip().astype(np.float32), rng(0))
    with pytest.raises(ValueError, match="uint8"):
        TrainAugment()(clip()[..., :2], rng(0))
    with pytest.raises(ValueError, match="interpolation"):
        TrainAugment(interpolation="nearest")
    with pytest.raises(ValueError, match="erasing mode"):
        TrainAugment(remode="noise")
