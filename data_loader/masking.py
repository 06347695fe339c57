"""Maskers: which patch tokens of a clip the video encoder keeps (`keep_ind`), drawn from the sample's generator.

A loader entry chooses one with `masking` (default "per_slot") and `mask_ratio`; `input_res` and `patch_size` give
the patches per frame, `tubelet_size` the frames per temporal slot. The dataset calls the masker after building
the rest of the sample, with the same generator, so a sample stays reproducible from its seed.

- "per_slot" (TVTS v1): an independent draw for each tubelet slot, (max(frames // tubelet, 1), n_keep).
- "tube" (TVTSv2, VideoMAE's tube masking): one draw shared by every frame, (n_keep,).
- "videomae_tube" (SimVTP, VideoMAE's generator): one draw shared by every frame that masks int(mask_ratio * P)
  of the P patches and keeps the rest (90%: 176 masked, 20 kept of 196; "tube" keeps int(P * (1 - ratio)) = 19),
  kept indices sorted, as the official's boolean mask picks them.
Otherwise kept indices are left unsorted, as the official code leaves them.
"""
import numpy as np

from utils.registry import Registry

from .sampling import sample_keep_indices

MASKERS = Registry("masker (data_loader masking)")


class Masker:
    def __init__(self, mask_ratio, input_res=224, patch_size=16, tubelet_size=2):
        if not 0 <= mask_ratio < 1:
            raise ValueError(f"mask_ratio must lie in [0, 1), got {mask_ratio}")
        if input_res % patch_size:
            raise ValueError(f"input_res={input_res} is not a multiple of patch_size={patch_size}")
        self.mask_ratio, self.tubelet_size = mask_ratio, tubelet_size
        self.patches_per_frame = (input_res // patch_size) ** 2
        if int(self.patches_per_frame * (1 - mask_ratio)) < 1:
            raise ValueError(f"mask_ratio={mask_ratio} keeps no patch of {self.patches_per_frame}")

    def check_frames(self, num_frames):
        """Raise ValueError when clips of `num_frames` frames cannot be masked this way."""

    def __repr__(self):
        return f"{type(self).__name__}(mask_ratio={self.mask_ratio}, patches_per_frame={self.patches_per_frame})"


@MASKERS.register("per_slot")
class PerSlotMasker(Masker):
    def check_frames(self, num_frames):
        if num_frames > 1 and num_frames % self.tubelet_size:
            raise ValueError(f"{num_frames} frames do not fill tubelets of {self.tubelet_size}")

    def __call__(self, num_frames, rng):
        slots = max(num_frames // self.tubelet_size, 1)
        return sample_keep_indices(slots, self.patches_per_frame, self.mask_ratio, rng)


@MASKERS.register("tube")
class TubeMasker(Masker):
    def __call__(self, num_frames, rng):
        return sample_keep_indices(1, self.patches_per_frame, self.mask_ratio, rng)[0]


@MASKERS.register("videomae_tube")
class VideoMAETubeMasker(Masker):
    def __call__(self, num_frames, rng):
        masked = int(self.mask_ratio * self.patches_per_frame)
        return np.sort(rng.permutation(self.patches_per_frame)[masked:]).astype(np.int64)


MASKING_KEYS = ("masking", "mask_ratio", "patch_size", "tubelet_size")


def build_masker(masking="per_slot", mask_ratio=0.0, input_res=224, patch_size=16, tubelet_size=2):
    """The masker of a loader entry; `masking: "none"` gives None (the batch then carries no `keep_ind`)."""
    if masking == "none":
        return None
    return MASKERS.build(masking, mask_ratio, input_res=input_res, patch_size=patch_size, tubelet_size=tubelet_size)
