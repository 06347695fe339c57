"""Downstream video-classification datasets (SSV2, Kinetics-400, UCF-101, HMDB-51): lists, frame sampling, the
evaluation transforms, and batching.

SSV2 follows the official `ssv2.py` (one frame per equal segment, two test views: segment starts and segment
midpoints); the others follow VideoMAE's `kinetics.py` (one clip of `num_frames` at a fixed stride, test clips
evenly spaced). Evaluation frames are resized on the short side with cv2 bilinear on uint8 (as the official), then
centre-cropped (validation) or cut into `test_num_crop` squares along the long side (test). `recipe="cpd"` follows
CPD's `UcfHmdb` instead: clips on a 30 fps timeline (`data_loader.sampling.clip_frame_indices`), validation clips
augmented like training but without the flip, test views at i / n of the video and pySlowFast's uniform crops
(`cpd_clip_transform`). Training frames go to the `train_transform` given by the caller. Unreadable videos are
never swapped for another video in evaluation: the item becomes `{"failed": record}` and `collate_clips` reports it
(see `data_loader/base.py`).
"""
import logging
import os
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from data_loader.base import FailSafeDataset
from data_loader.readers import ReaderByFile, VideoReadError
from data_loader.sampling import clip_frame_indices
from data_loader.transforms import IMAGENET_MEAN, IMAGENET_STD, JitterCropTransform, normalize

log = logging.getLogger(__name__)
MODES = {"train": "train", "validation": "val", "test": "test"}  # dataset mode -> FailSafeDataset split
VAL_SAMPLINGS = ("random", "center")
SHORT_VIDEO_RULES = ("first_frame", "spread")
RECIPES = ("videomae", "cpd")


@dataclass(frozen=True)
class DatasetSpec:
    nb_classes: int
    sampling: str  # "segment": one frame per equal segment (TSN); "dense": one clip at `sampling_rate`
    flip: bool  # training may flip horizontally (not SSV2: its labels say "left"/"right")
    lists: dict  # mode -> default list file under data_path
    video_dir: str = ""  # folder under data_path that list paths are relative to ("" = data_path)
    reader: str = "auto"  # PyAV for .avi (decord mis-seeks in MPEG-4 AVI), decord otherwise


_CSV_LISTS = {"train": "train.csv", "validation": "val.csv", "test": "test.csv"}
DATASETS = {
    "SSV2": DatasetSpec(174, "segment", False, {"train": "sthv2_train_list_videos.txt",
                                                "validation": "sthv2_val_list_videos.txt",
                                                "test": "sthv2_val_list_videos.txt"}, video_dir="videos"),
    "Kinetics-400": DatasetSpec(400, "dense", True, _CSV_LISTS),
    "UCF101": DatasetSpec(101, "dense", True, _CSV_LISTS),
    "HMDB51": DatasetSpec(51, "dense", True, _CSV_LISTS),
}


def dataset_spec(name):
    """The registry entry for `name` (case-insensitive)."""
    for key, spec in DATASETS.items():
        if key.lower() == str(name).lower():
            return key, spec
    raise ValueError(f"unknown downstream dataset {name!r}; known: {', '.join(DATASETS)}")


def read_video_list(path, nb_classes):
    """`<relative path> <integer label>` per line (mmaction/VideoMAE lists, no header) -> [(path, label)].

    Blank lines are ignored; a malformed line, a label outside [0, nb_classes) or an empty list is an error that
    names the file (and line).
    """
    if not os.path.isfile(path):
        raise ValueError(f"video list not found: {path}")
    videos = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            parts = line.rsplit(None, 1)
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                raise ValueError(f"{path}, line {number}: expected '<video path> <integer label>', got {line!r}")
            label = int(parts[1])
            if not 0 <= label < nb_classes:
                raise ValueError(f"{path}, line {number}: label {label} outside [0, {nb_classes}) (the dataset has "
                                 f"{nb_classes} classes; wrong list or wrong --nb_classes?)")
            videos.append((parts[0], label))
    if not videos:
        raise ValueError(f"video list {path} lists no videos")
    return videos


# ---- frame sampling: functions of the frame count (and a generator), so they can be checked by hand ----

def segment_indices(n, num_frames, rng=None, short_videos="first_frame"):
    """One frame per equal segment of `n // num_frames` frames (the tail is never used): a random offset per
    segment with `rng`, the segment centre without.

    Videos shorter than `num_frames`: the official gives `num_frames` copies of frame 0 (its branch for this
    case is unreachable); `short_videos="spread"` takes floor(i * n / num_frames) instead.
    """
    avg = n // num_frames
    if avg == 0:
        if short_videos == "spread":
            return np.arange(num_frames) * n // num_frames
        return np.zeros(num_frames, dtype=np.int64)
    offsets = rng.integers(avg, size=num_frames) if rng is not None else avg // 2
    return np.arange(num_frames) * avg + offsets


def segment_test_indices(n, num_frames, chunk, num_segments):
    """Test view `chunk` of `num_segments`: floor(tick * (x + chunk / num_segments)), tick = n / num_frames.

    For 2 views this is the official result (view 0 = segment starts, view 1 = segment midpoints); the official
    interleaving broke for any other count.
    """
    tick = n / num_frames
    return np.floor(tick * np.arange(num_frames) + tick * chunk / num_segments).astype(np.int64)


def dense_indices(n, num_frames, sampling_rate, rng=None):
    """VideoMAE's training clip: `num_frames` frames spread over a window of num_frames * sampling_rate frames
    ending at a random frame (`rng`) or at the middle of the possible ends (without); shorter videos are
    spread over what there is and padded with the last frame."""
    span = num_frames * sampling_rate
    if n <= span:
        spread = np.linspace(0, n, num=n // sampling_rate)
        index = np.concatenate([spread, np.full(num_frames - len(spread), float(n))])
        return np.clip(index, 0, n - 1).astype(np.int64)
    end = int(rng.integers(span, n)) if rng is not None else (span + n - 1) // 2
    start = end - span
    return np.clip(np.linspace(start, end, num=num_frames), start, end - 1).astype(np.int64)


def dense_test_indices(n, num_frames, sampling_rate, chunk, num_segments):
    """VideoMAE's test view `chunk`: every `sampling_rate`-th frame (padded with the last to `num_frames`), cut
    into `num_segments` evenly spaced windows of `num_frames`. One view takes the middle window (VideoMAE
    divided by zero)."""
    strided = np.arange(0, n, sampling_rate)
    strided = np.concatenate([strided, np.full(max(num_frames - len(strided), 0), strided[-1])])
    if num_segments > 1:
        step = max((len(strided) - num_frames) / (num_segments - 1), 0.0)
        start = int(chunk * step)
    else:
        start = int((len(strided) - num_frames) / 2)
    return strided[start:start + num_frames]


# ---- evaluation transforms on uint8 (T, H, W, 3) frames ----

def resize_short_side(frames, size):
    """Short side -> `size`, long side int(size * long / short), cv2 bilinear on uint8, as VideoMAE's `Resize`
    (frames whose short side already matches are returned as they are)."""
    _, h, w, _ = frames.shape
    if min(h, w) == size:
        return frames
    out_h, out_w = (int(size * h / w), size) if w < h else (size, int(size * w / h))
    return np.stack([cv2.resize(f, (out_w, out_h), interpolation=cv2.INTER_LINEAR) for f in frames])


def center_crop(frames, size):
    _, h, w, _ = frames.shape
    if size > min(h, w):
        raise ValueError(f"centre crop {size} is larger than the {h}x{w} frames")
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return frames[:, top:top + size, left:left + size]


def long_side_crop(frames, size, crop, num_crops):
    """Square crop `crop` of `num_crops` along the long side (rows if H >= W) at int(crop * (L - size) /
    (num_crops - 1)); the short side must already be `size`. One crop is the centre (the official divided by
    zero)."""
    _, h, w, _ = frames.shape
    if min(h, w) != size:
        raise ValueError(f"test crops need the short side resized to {size}, got {h}x{w} frames")
    long_side = max(h, w)
    if num_crops > 1:
        start = int(crop * (1.0 * (long_side - size) / (num_crops - 1)))
    else:
        start = int((long_side - size) / 2)
    return frames[:, start:start + size] if h >= w else frames[:, :, start:start + size]


def to_normalized_tensor(frames):
    """uint8 (T, H, W, 3) -> float32 (3, T, H, W), /255 and ImageNet mean/std (the official ClipToTensor +
    Normalize)."""
    return normalize(torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2), channel_dim=0)


def cpd_clip_transform(crop_size, train, scale_range=(256, 340), flip=True):
    """CPD's spatial sampling (`data_loader.transforms.JitterCropTransform`) as a downstream transform: uint8
    (T, H, W, 3) frames -> float32 (3, T, crop, crop), ImageNet-normalised like every downstream input (the 3D
    ResNet converts it to CPD's normalisation, see `downstream.encoder`). Call it `(frames, rng)` or, in
    evaluation, `(frames, rng, view=(i, n))` for the i-th of n crops along the long side."""
    jitter = JitterCropTransform(crop_size, train, scale_range, flip=flip, mean=IMAGENET_MEAN, std=IMAGENET_STD)

    def transform(frames, rng, view=None):
        return jitter(frames, rng, view=view).transpose(0, 1).contiguous()
    return transform


class VideoClsDataset(FailSafeDataset):
    """Items `{"video": (3, T, S, S) float32, "label", "id", "chunk", "split"}` (chunk/split = temporal/spatial
    test view, 0 outside test). Test mode has videos x test_num_segment x test_num_crop items, ordered
    segment-major, then crop, then video (as the official).

    `id` is the list path without its extension (the official kept only the file stem, which merges the views of
    two videos sharing a file name in different folders); for SSV2 both are the numeric id. `reader` None takes
    the registry's ("auto"); `short_videos` is the rule for SSV2 videos shorter than `num_frames` (see
    `segment_indices`). `recipe` "cpd" (not for SSV2) samples and transforms evaluation clips as CPD's `UcfHmdb`:
    `sampling_rate` is then the stride on a `target_fps` timeline, `jitter_range` the validation clips' short-side
    range, and test views are `short_side_size` squares.
    """

    def __init__(self, name, mode, data_path, list_file=None, video_root=None, num_frames=16, input_size=224,
                 short_side_size=224, sampling_rate=4, test_num_segment=2, test_num_crop=3, reader=None,
                 train_transform=None, val_sampling="random", nb_classes=None, loading="lax", seed=0,
                 short_videos="first_frame", recipe="videomae", target_fps=30, jitter_range=(256, 340)):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
        super().__init__(MODES[mode], loading=loading, seed=seed)
        self.name, spec = dataset_spec(name)
        if nb_classes is not None and nb_classes != spec.nb_classes:  # a class subset, or the synthetic clips
            log.warning("%s: using nb_classes=%d instead of the dataset's %d", name, nb_classes, spec.nb_classes)
        if mode == "train" and not callable(train_transform):
            raise ValueError("train mode needs train_transform: a callable (frames uint8 (T,H,W,3), rng) -> "
                             "float tensor (3,T,S,S)")
        if val_sampling not in VAL_SAMPLINGS:
            raise ValueError(f"val_sampling must be one of {VAL_SAMPLINGS}, got {val_sampling!r}")
        if short_videos not in SHORT_VIDEO_RULES:
            raise ValueError(f"short_videos must be one of {SHORT_VIDEO_RULES}, got {short_videos!r}")
        for key, value in (("num_frames", num_frames), ("sampling_rate", sampling_rate),
                           ("test_num_segment", test_num_segment), ("test_num_crop", test_num_crop)):
            if int(value) < 1:
                raise ValueError(f"{key} must be at least 1, got {value}")
        if recipe not in RECIPES:
            raise ValueError(f"recipe must be one of {RECIPES}, got {recipe!r}")
        if recipe == "cpd" and spec.sampling != "dense":
            raise ValueError(f"{self.name}: the CPD recipe samples clips at a frame stride; {self.name} is sampled "
                             "by segments (use the videomae recipe)")
        if mode == "validation" and recipe == "videomae" and input_size > short_side_size:
            raise ValueError(f"input_size {input_size} cannot be centre-cropped from frames resized to a short "
                             f"side of {short_side_size}")
        self.mode, self.spec, self.nb_classes = mode, spec, nb_classes or spec.nb_classes
        self.num_frames, self.input_size, self.short_side_size = num_frames, input_size, short_side_size
        self.sampling_rate, self.test_num_segment, self.test_num_crop = sampling_rate, test_num_segment, test_num_crop
        self.train_transform, self.val_sampling, self.short_videos = train_transform, val_sampling, short_videos
        self._random_offsets = mode == "train" or val_sampling == "random"
        self.recipe, self.target_fps = recipe, target_fps
        if recipe == "cpd" and mode == "validation":
            self._eval_transform = cpd_clip_transform(input_size, self._random_offsets, jitter_range, flip=False)
        elif recipe == "cpd" and mode == "test":
            self._eval_transform = cpd_clip_transform(short_side_size, False, (short_side_size, short_side_size))

        if data_path is None and not (list_file and video_root):
            raise ValueError("data_path is needed unless both list_file and video_root are given")
        self.list_file = list_file or os.path.join(data_path, spec.lists[mode])
        self.video_root = video_root or os.path.join(data_path, spec.video_dir)
        self.videos = read_video_list(self.list_file, self.nb_classes)
        if not os.path.isdir(self.video_root) and any(not os.path.isabs(p) for p, _ in self.videos):
            raise ValueError(f"video folder not found: {self.video_root} (the paths in {self.list_file} are "
                             "relative to it; set video_root / --video_root)")
        self.paths = [os.path.join(self.video_root, p) for p, _ in self.videos]
        self.ids = [os.path.splitext(p)[0] for p, _ in self.videos]
        self.views = test_num_segment * test_num_crop if mode == "test" else 1
        self._names = [p for p, _ in self.videos] * self.views
        reader = reader or spec.reader
        self._reader = ReaderByFile(reader)

    def view(self, index):
        """Item index -> (video index, temporal view, spatial crop)."""
        videos = len(self.videos)
        return index % videos, index // (videos * self.test_num_crop), (index // videos) % self.test_num_crop

    def frame_indices(self, n, chunk, rng, fps=None, pts_timeline=None):
        """The frames of one item of a video with `n` frames (at `fps`, with the header's `pts_timeline`, which
        the CPD recipe needs)."""
        if self.recipe == "cpd":
            if self.mode == "test":
                mode = "uniform"
            else:
                mode = "rand" if self._random_offsets else "center"
            return clip_frame_indices(n, fps, self.num_frames, self.sampling_rate, rng, self.target_fps, mode=mode,
                                      view=(chunk, self.test_num_segment), pts_timeline=pts_timeline)
        if self.spec.sampling == "segment":
            if self.mode == "test":
                return segment_test_indices(n, self.num_frames, chunk, self.test_num_segment)
            return segment_indices(n, self.num_frames, rng if self._random_offsets else None, self.short_videos)
        if self.mode == "test":
            return dense_test_indices(n, self.num_frames, self.sampling_rate, chunk, self.test_num_segment)
        return dense_indices(n, self.num_frames, self.sampling_rate, rng if self._random_offsets else None)

    def _load(self, index, rng):
        video_index, chunk, split = self.view(index) if self.mode == "test" else (index, 0, 0)
        path = self.paths[video_index]
        with self._reader.open(path) as video:
            if video.num_frames < 1:
                raise VideoReadError(f"video has no frames: {path}")
            frames = video.read(self.frame_indices(video.num_frames, chunk, rng, video.fps, video.pts_timeline))
        if self.mode == "train":
            clip = self.train_transform(frames, rng)
        elif self.recipe == "cpd":
            clip = self._eval_transform(frames, rng, view=(split, self.test_num_crop) if self.mode == "test" else None)
        elif self.mode == "validation":
            clip = to_normalized_tensor(center_crop(resize_short_side(frames, self.short_side_size),
                                                    self.input_size))
        else:
            clip = to_normalized_tensor(long_side_crop(resize_short_side(frames, self.short_side_size),
                                                  self.short_side_size, split, self.test_num_crop))
        return {"video": clip, "label": self.videos[video_index][1], "id": self.ids[video_index], "chunk": chunk,
                "split": split}


def build_dataset(name, mode, **kwargs):
    """`VideoClsDataset(name, mode, **kwargs)`; its `nb_classes` gives the classifier's output size."""
    return VideoClsDataset(name, mode, **kwargs)


def collate_clips(items):
    """Batch the readable items; `failed` gathers the records of unreadable ones (evaluation) and `skipped` those
    replaced in training. A batch with no readable item has `video` None and empty tensors."""
    ok = [item for item in items if "failed" not in item]
    return {
        "video": torch.stack([item["video"] for item in ok]) if ok else None,
        "label": torch.tensor([item["label"] for item in ok], dtype=torch.long),
        "id": [item["id"] for item in ok],
        "chunk": torch.tensor([item["chunk"] for item in ok], dtype=torch.long),
        "split": torch.tensor([item["split"] for item in ok], dtype=torch.long),
        "failed": [item["failed"] for item in items if "failed" in item],
        "skipped": [record for item in ok for record in item.get("skipped", ())],
    }
