"""Frame and image transforms: resize rule, crops shared across frames, normalisation."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from data_loader.transforms import IMAGENET_MEAN, IMAGENET_STD, ImageTransform, VideoTransform


def frames(t=3, h=64, w=80, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


def unnormalize(x):
    return x * torch.tensor(IMAGENET_STD).view(3, 1, 1) + torch.tensor(IMAGENET_MEAN).view(3, 1, 1)


def test_centre_crop_of_the_resized_short_side_matches_pil_bilinear():
    clip = frames()
    out = VideoTransform(32, train=False)(clip, np.random.default_rng(0))
    assert out.shape == (3, 3, 32, 32) and out.dtype == torch.float32
    resized = np.asarray(Image.fromarray(clip[1]).resize((int(38 * 80 / 64), 38), Image.BILINEAR))
    top, left = round((38 - 32) / 2), round((47 - 32) / 2)
    expected = resized[top:top + 32, left:left + 32].astype(np.float32) / 255
    got = unnormalize(out[1]).permute(1, 2, 0).numpy()
    assert np.abs(got - expected).max() <= 1.5 / 255  # PIL and the antialiased tensor resize agree to a level


def test_frames_already_at_the_short_side_are_not_resized():
    clip = frames(h=38, w=50)
    out = VideoTransform(32, train=False)(clip, np.random.default_rng(0))
    expected = torch.from_numpy(clip[0, 3:35, 9:41]).permute(2, 0, 1).float() / 255
    torch.testing.assert_close(unnormalize(out[0]), expected)


def test_random_crop_is_shared_by_all_frames_and_seeded():
    base = frames(t=1)
    clip = np.concatenate([base, base, base])
    t = VideoTransform(32, train=True)
    out = t(clip, np.random.default_rng(5))
    torch.testing.assert_close(out[0], out[2])
    torch.testing.assert_close(out, t(clip, np.random.default_rng(5)))
    crops = {t(clip, np.random.default_rng(s))[0, 0, 0, 0].item() for s in range(20)}
    assert len(crops) > 1


def test_normalisation_uses_imagenet_statistics():
    clip = np.full((2, 40, 40, 3), 128, np.uint8)
    out = VideoTransform(32, train=False, resize_ratio=1.25)(clip, np.random.default_rng(0))
    for c in range(3):
        torch.testing.assert_close(out[:, c], torch.full((2, 32, 32), (128 / 255 - IMAGENET_MEAN[c]) /
                                                          IMAGENET_STD[c]))


def full_frame_reference(clip, resized_hw, top, left, crop):
    """The straightforward pipeline: resize whole frames (uint8, antialiased bilinear), crop, /255, normalise."""
    x = torch.from_numpy(clip).permute(0, 3, 1, 2).contiguous()
    x = F.interpolate(x, size=resized_hw, mode="bilinear", antialias=True, align_corners=False)
    x = x[..., top:top + crop, left:left + crop].float() / 255
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (x - mean) / std


def textured_frames(t, h, w, seed):
    """Noise over a smooth gradient: both fine detail (worst case for any resampling shortcut) and large areas."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 150, w)[None, :, None] + np.linspace(0, 60, h)[:, None, None]
    return np.clip(ramp + rng.integers(0, 46, (t, h, w, 3)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("h, w", [(90, 160), (64, 80), (100, 70)])  # downscale, upscale, portrait
@pytest.mark.parametrize("train", [True, False])
def test_output_matches_the_full_frame_resize_crop_normalise(h, w, train):
    clip, crop, short = textured_frames(2, h, w, seed=h), 48, 57  # short side int(48 * 1.2)
    resized = (short, int(short * w / h)) if h <= w else (int(short * h / w), short)
    for seed in range(4):
        if train:
            draw = np.random.default_rng(seed)  # same draws in the same order: top, then left
            top, left = int(draw.integers(0, resized[0] - crop + 1)), int(draw.integers(0, resized[1] - crop + 1))
        else:
            top, left = round((resized[0] - crop) / 2), round((resized[1] - crop) / 2)
        out = VideoTransform(crop, train=train)(clip, np.random.default_rng(seed))
        expected = full_frame_reference(clip, resized, top, left, crop)
        assert out.shape == expected.shape and out.dtype == torch.float32 and out.is_contiguous()
        # the fused multiply-add differs from (x / 255 - mean) / std by float rounding only
        torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)


def test_image_transform_train_and_val_shapes_and_determinism():
    img = frames(t=1, h=120, w=90)[0]
    val = ImageTransform(32, train=False)
    torch.testing.assert_close(val(img, np.random.default_rng(0)), val(img, np.random.default_rng(1)))
    train = ImageTransform(32, train=True)
    a, b = train(img, np.random.default_rng(0)), train(img, np.random.default_rng(0))
    assert a.shape == (3, 32, 32)
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, train(img, np.random.default_rng(1)))


@pytest.mark.parametrize("size", [(360, 640), (100, 150), (300, 200), (268, 500), (241, 241), (1080, 1920)])
@pytest.mark.parametrize("train", [True, False])
def test_nearest_resize_and_crop_are_pixel_exact_against_pil(size, train):
    """TVTSv2's pipeline (official video_transforms): frames become PIL images, PIL NEAREST to short side 268, then
    the 224 crop."""
    h, w = size
    frames = np.random.default_rng(0).integers(0, 256, (3, h, w, 3), dtype=np.uint8)
    out = VideoTransform(224, train=train, interpolation="nearest")(frames, np.random.default_rng(5))
    nh, nw = (268, int(268 * w / h)) if h <= w else (int(268 * h / w), 268)
    resized = np.stack([np.asarray(Image.fromarray(f).resize((nw, nh), Image.NEAREST)) for f in frames])
    if train:  # the same draws as the transform: top, then left
        rng = np.random.default_rng(5)
        top, left = int(rng.integers(0, nh - 224 + 1)), int(rng.integers(0, nw - 224 + 1))
    else:
        top, left = int(round((nh - 224) / 2)), int(round((nw - 224) / 2))
    crop = torch.from_numpy(resized[:, top:top + 224, left:left + 224]).permute(0, 3, 1, 2).float() / 255
    torch.testing.assert_close(unnormalize(out), crop, atol=1e-5, rtol=0)
