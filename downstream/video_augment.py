"""The downstream training augmentation of the official runs (VideoMAE's SSV2/Kinetics `_aug_frame`).

Order, as official: video RandAugment on the native-resolution PIL frames (one op, magnitude and sign for the
whole clip), /255 and ImageNet normalisation, one random-resized crop box for all frames resized bilinearly with
`F.interpolate`, an optional horizontal flip, then "cube" random erasing (one box at the same place in every
frame) on the normalised tensor. Every random draw comes from the caller's `numpy.random.Generator`, so a sample
is reproducible from its seed; the official code drew from Python's `random`, numpy's and torch's global states.
"""
import math
import re
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageEnhance, ImageOps

from data_loader.transforms import normalize, random_resized_crop_box

MAX_LEVEL = 10.0  # magnitudes live in [0, MAX_LEVEL]
FILL = (128, 128, 128)  # colour of the pixels that geometric ops uncover
TRANSLATE_PCT = 0.45  # relative translation at magnitude 10, as a fraction of the frame side
OP_PROBABILITY = 0.5  # each drawn op is applied with this probability
INTERPOLATIONS = {
    "bicubic": (Image.BICUBIC,),
    "bilinear": (Image.BILINEAR,),
    "lanczos": (Image.LANCZOS,),
    "hamming": (Image.HAMMING,),
    "random": (Image.BILINEAR, Image.BICUBIC),  # drawn per frame and per geometric op, as official
}
ERASE_AREA = (0.02, 1 / 3)  # erased fraction of the frame area
ERASE_ASPECT = (0.3, 1 / 0.3)
ERASE_TRIES = 100  # box draws before giving up (the cube variant's count)


@dataclass(frozen=True)
class RandAugmentConfig:
    """A parsed `rand-...` policy; the defaults are the official ones for sections the string leaves out."""
    magnitude: int = 10
    num_ops: int = 2
    magnitude_std: float = 0.0
    increasing: bool = False


def parse_rand_augment(config_str, honour_inc0=False):
    """`rand-m{M}-n{N}-mstd{S}-inc{0|1}` (sections in any order, each optional) -> RandAugmentConfig.

    The official parser tests `bool("0")`, which is True, so `inc0` still selects the increasing op set; that
    stays the default, and `honour_inc0=True` makes `inc0` select the standard set. Unknown, repeated or
    malformed sections are errors (the official parser skipped them silently).
    """
    sections = str(config_str).split("-")
    if sections[0] != "rand":
        raise ValueError(f"RandAugment policy {config_str!r}: expected it to start with 'rand-'")
    parsers = {"m": int, "n": int, "mstd": float, "inc": int}
    values = {}
    for section in sections[1:]:
        match = re.fullmatch(r"([a-z]+)(\d+(?:\.\d+)?)", section)
        if match is None or match.group(1) not in parsers:
            raise ValueError(f"RandAugment policy {config_str!r}: bad section {section!r}; expected m<int>, "
                             "n<int>, mstd<float> or inc<0|1>")
        key, text = match.groups()
        if key in values:
            raise ValueError(f"RandAugment policy {config_str!r}: section {key!r} given twice")
        try:
            values[key] = parsers[key](text)
        except ValueError:
            raise ValueError(f"RandAugment policy {config_str!r}: {key!r} needs an integer, got {text!r}") from None
    if values.get("inc", 0) not in (0, 1):
        raise ValueError(f"RandAugment policy {config_str!r}: inc must be 0 or 1, got {values['inc']}")
    increasing = values["inc"] == 1 if honour_inc0 else "inc" in values
    defaults = RandAugmentConfig()
    return RandAugmentConfig(magnitude=values.get("m", defaults.magnitude), num_ops=values.get("n", defaults.num_ops),
                             magnitude_std=values.get("mstd", defaults.magnitude_std), increasing=increasing)


# ---- magnitude -> op argument -------------------------------------------------------------------------------

def _random_sign(value, rng):
    """Negate with probability 1/2 (the official draw: negate when u > 0.5)."""
    return -value if rng.random() > 0.5 else value


def _rotate_arg(level, rng):
    return (_random_sign(level / MAX_LEVEL * 30.0, rng),)


def _enhance_arg(level, rng):
    return (level / MAX_LEVEL * 1.8 + 0.1,)


def _enhance_increasing_arg(level, rng):
    return (1.0 + _random_sign(level / MAX_LEVEL * 0.9, rng),)


def _shear_arg(level, rng):
    return (_random_sign(level / MAX_LEVEL * 0.3, rng),)


def _translate_rel_arg(level, rng):
    return (_random_sign(level / MAX_LEVEL * TRANSLATE_PCT, rng),)


def _posterize_arg(level, rng):
    return (int(level / MAX_LEVEL * 4),)


def _posterize_increasing_arg(level, rng):
    return (4 - int(level / MAX_LEVEL * 4),)


def _solarize_arg(level, rng):
    return (int(level / MAX_LEVEL * 256),)


def _solarize_increasing_arg(level, rng):
    return (256 - int(level / MAX_LEVEL * 256),)


def _solarize_add_arg(level, rng):
    return (int(level / MAX_LEVEL * 110),)


def _no_arg(level, rng):
    return ()


# ---- ops on one PIL frame (geometric ones take a resampling filter) -----------------------------------------

def _affine(img, coefficients, resample):
    return img.transform(img.size, Image.AFFINE, coefficients, resample=resample, fillcolor=FILL)


def _rotate(img, degrees, resample):
    return img.rotate(degrees, resample=resample, fillcolor=FILL)


def _shear_x(img, factor, resample):
    return _affine(img, (1, factor, 0, 0, 1, 0), resample)


def _shear_y(img, factor, resample):
    return _affine(img, (1, 0, 0, factor, 1, 0), resample)


def _translate_x_rel(img, pct, resample):
    return _affine(img, (1, 0, pct * img.size[0], 0, 1, 0), resample)


def _translate_y_rel(img, pct, resample):
    return _affine(img, (1, 0, 0, 0, 1, pct * img.size[1]), resample)


def _posterize(img, bits):
    """Keep the top `bits` bits; 0 bits gives black, as the Pillow of the official runs did (Pillow >= 10
    rejects 0, which the increasing variant reaches at magnitude 10)."""
    if bits >= 8:
        return img
    mask = ~(2 ** (8 - bits) - 1)
    return img.point([i & mask for i in range(256)] * len(img.getbands()))


def _solarize_add(img, add, threshold=128):
    table = [min(255, i + add) if i < threshold else i for i in range(256)]
    return img.point(table * len(img.getbands()))


def _enhancer(kind):
    return lambda img, factor: kind(img).enhance(factor)


GEOMETRIC_OPS = {"Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel"}
OPS = {  # name -> (magnitude -> arguments, op on one PIL frame)
    "AutoContrast": (_no_arg, ImageOps.autocontrast),
    "Equalize": (_no_arg, ImageOps.equalize),
    "Invert": (_no_arg, ImageOps.invert),
    "Rotate": (_rotate_arg, _rotate),
    "Posterize": (_posterize_arg, _posterize),
    "PosterizeIncreasing": (_posterize_increasing_arg, _posterize),
    "Solarize": (_solarize_arg, ImageOps.solarize),
    "SolarizeIncreasing": (_solarize_increasing_arg, ImageOps.solarize),
    "SolarizeAdd": (_solarize_add_arg, _solarize_add),
    "Color": (_enhance_arg, _enhancer(ImageEnhance.Color)),
    "ColorIncreasing": (_enhance_increasing_arg, _enhancer(ImageEnhance.Color)),
    "Contrast": (_enhance_arg, _enhancer(ImageEnhance.Contrast)),
    "ContrastIncreasing": (_enhance_increasing_arg, _enhancer(ImageEnhance.Contrast)),
    "Brightness": (_enhance_arg, _enhancer(ImageEnhance.Brightness)),
    "BrightnessIncreasing": (_enhance_increasing_arg, _enhancer(ImageEnhance.Brightness)),
    "Sharpness": (_enhance_arg, _enhancer(ImageEnhance.Sharpness)),
    "SharpnessIncreasing": (_enhance_increasing_arg, _enhancer(ImageEnhance.Sharpness)),
    "ShearX": (_shear_arg, _shear_x),
    "ShearY": (_shear_arg, _shear_y),
    "TranslateXRel": (_translate_rel_arg, _translate_x_rel),
    "TranslateYRel": (_translate_rel_arg, _translate_y_rel),
}
STANDARD_OPS = ("AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "SolarizeAdd", "Color",
                "Contrast", "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel")
INCREASING_OPS = ("AutoContrast", "Equalize", "Invert", "Rotate", "PosterizeIncreasing", "SolarizeIncreasing",
                  "SolarizeAdd", "ColorIncreasing", "ContrastIncreasing", "BrightnessIncreasing",
                  "SharpnessIncreasing", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel")


def apply_op(images, name, magnitude, rng, resample=(Image.BICUBIC,)):
    """One op at one magnitude (clipped to [0, 10]) on every PIL frame; the sign is drawn once for the clip.

    `resample` lists the candidate filters of geometric ops; with more than one, each frame draws its own, as
    the official "random" interpolation did.
    """
    level_to_arg, op = OPS[name]
    args = level_to_arg(min(MAX_LEVEL, max(0.0, magnitude)), rng)
    if name not in GEOMETRIC_OPS:
        return [op(img, *args) for img in images]
    out = []
    for img in images:
        flt = resample[0] if len(resample) == 1 else resample[rng.integers(len(resample))]
        out.append(op(img, *args, resample=flt))
    return out


class VideoRandAugment:
    """RandAugment with the randomness drawn per clip: uint8 (T, H, W, 3) -> uint8 (T, H, W, 3)."""

    def __init__(self, config, interpolation="bicubic"):
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation {interpolation!r}: expected one of {sorted(INTERPOLATIONS)}")
        self.config = config
        self.op_names = INCREASING_OPS if config.increasing else STANDARD_OPS
        self.resample = INTERPOLATIONS[interpolation]

    def __call__(self, frames, rng):
        cfg = self.config
        chosen = rng.integers(len(self.op_names), size=cfg.num_ops)  # with replacement, as official
        images = None
        for index in chosen:
            if rng.random() > OP_PROBABILITY:
                continue
            magnitude = rng.normal(cfg.magnitude, cfg.magnitude_std) if cfg.magnitude_std > 0 else cfg.magnitude
            if images is None:
                images = [Image.fromarray(frame) for frame in frames]
            images = apply_op(images, self.op_names[index], magnitude, rng, self.resample)
        return frames if images is None else np.stack([np.asarray(img) for img in images])


# ---- crop and erasing ---------------------------------------------------------------------------------------

class CubeErasing:
    """Random erasing of one box per video at the same place in every frame, on a normalised (C, T, H, W) tensor.

    `count` boxes (1..count drawn uniformly when count > 1), each with the area fraction scaled by 1/count.
    Fill per `mode`: "pixel" fresh N(0, 1) noise for every pixel of every frame, "rand" one N(0, 1) colour per
    channel and frame, "const" zeros. As official, `count > 1` also leaves the first T // count frames untouched
    (the count was passed on as timm's clean-split count); `erase_all_frames=True` erases every frame instead.
    """

    def __init__(self, probability, mode="pixel", count=1, erase_all_frames=False):
        if mode not in ("pixel", "rand", "const"):
            raise ValueError(f"random erasing mode {mode!r}: expected 'pixel', 'rand' or 'const'")
        if count < 1:
            raise ValueError(f"random erasing count {count}: expected at least 1")
        self.probability, self.mode, self.count, self.erase_all_frames = probability, mode, count, erase_all_frames

    def __call__(self, video, rng):
        if self.probability <= 0 or rng.random() > self.probability:
            return video
        channels, frames, height, width = video.shape
        first = 0 if self.erase_all_frames or self.count == 1 else frames // self.count
        count = self.count if self.count == 1 else int(rng.integers(1, self.count + 1))
        log_aspect = (math.log(ERASE_ASPECT[0]), math.log(ERASE_ASPECT[1]))
        for _ in range(count):
            for _ in range(ERASE_TRIES):
                target_area = rng.uniform(*ERASE_AREA) * height * width / count
                aspect = math.exp(rng.uniform(*log_aspect))
                h = int(round(math.sqrt(target_area * aspect)))
                w = int(round(math.sqrt(target_area / aspect)))
                if w < width and h < height:
                    top, left = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
                    video[:, first:, top:top + h, left:left + w] = self._fill((channels, frames - first, h, w), rng)
                    break
        return video

    def _fill(self, shape, rng):
        if self.mode == "pixel":
            return torch.from_numpy(rng.standard_normal(shape, dtype=np.float32))
        if self.mode == "rand":
            return torch.from_numpy(rng.standard_normal(shape[:2] + (1, 1), dtype=np.float32))
        return 0.0


# ---- the whole pipeline -------------------------------------------------------------------------------------

class TrainAugment:
    """uint8 frames (T, H, W, 3) at native resolution -> float32 (3, T, input_size, input_size).

    `auto_augment=None` skips RandAugment (the official code raised instead). `ratio` defaults to the official
    (0.75, 1.3333), not exactly 4/3. `honour_inc0` and `erase_all_frames` are the fixes documented on
    `parse_rand_augment` and `CubeErasing`; both are off by default, as the official code behaves.
    """

    def __init__(self, input_size=224, auto_augment="rand-m7-n4-mstd0.5-inc1", interpolation="bicubic",
                 scale=(0.08, 1.0), ratio=(0.75, 1.3333), flip=False, reprob=0.25, remode="pixel", recount=1,
                 honour_inc0=False, erase_all_frames=False):
        self.input_size = int(input_size)
        self.rand_augment = None if not auto_augment else VideoRandAugment(
            parse_rand_augment(auto_augment, honour_inc0), interpolation)
        self.scale, self.ratio, self.flip = tuple(scale), tuple(ratio), flip
        self.erasing = CubeErasing(reprob, remode, recount, erase_all_frames)

    def __call__(self, frames, rng):
        frames = np.asarray(frames)
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
            raise ValueError(f"TrainAugment: expected uint8 frames of shape (T>0, H, W, 3), got {frames.dtype} "
                             f"{frames.shape}")
        frames = np.ascontiguousarray(frames)
        if self.rand_augment is not None:
            frames = self.rand_augment(frames, rng)
        top, left, h, w = random_resized_crop_box(frames.shape[1], frames.shape[2], self.scale, self.ratio, rng)
        # Normalising only the crop is the official normalise-then-crop: both are per-pixel.
        crop = torch.from_numpy(np.ascontiguousarray(frames[:, top:top + h, left:left + w]))
        crop = normalize(crop, channel_dim=-1)
        video = F.interpolate(crop.permute(3, 0, 1, 2), size=(self.input_size, self.input_size), mode="bilinear",
                              align_corners=False)
        if self.flip and rng.random() < 0.5:
            video = video.flip(-1)
        return self.erasing(video.contiguous(), rng)
