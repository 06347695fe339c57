"""Features of your own videos from a TVTS or TVTSv2 checkpoint: one vector per video, written to a `.npz` file.

    python -m downstream.extract_features --finetune TVTS_yt_pt.pth --input my_videos/ --output feats.npz
    python -m downstream.extract_features --model configs/tvtsv2-b16.json --finetune TVTSv2_B_16.pth \
        --input my_videos/ --output feats.npz

`--model` names the method: a TVTS preset or pretraining config gives the feature zero-shot retrieval uses, the
final-norm CLS token of the unmasked encoder (768-d for ViT-B), from 16 frames at the centres of equal segments,
the short side resized to `--short_side_size` and the centre square; a TVTSv2 config gives the official TVTSv2
feature, the projected video CLS embedding (512-d for B, 1024-d for H/14), from 12 frames at
linspace(0, n - 1, 12) squashed to `--input_size` squares. `--num_frames`, `--sampling` and `--resize` override the
method's rule. The output holds `features` (N, D) and `paths` (N,) in input order; videos that cannot be read are
listed in `failed` (with the reason) and left out.
"""
import argparse
import json
import logging
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torchvision.transforms.v2.functional as TF
from torch.utils.data import DataLoader

from data_loader.base import FailSafeDataset
from data_loader.readers import VideoReadError, get_reader
from model import ARCHITECTURES, build_model, load_checkpoint
from utils.amp import autocast_dtype

from .datasets import center_crop, collate_clips, resize_short_side, segment_indices, to_normalized_tensor
from .encoder import VideoClassifier, encoder_args, load_pretrained_encoder
from .engine import report_failures, run_views

log = logging.getLogger("downstream")
SAMPLINGS = ("centers", "linspace")
RESIZES = ("short_side_crop", "squash")
# each method's official feature rule: frames, frame sampling, spatial resize
METHOD_DEFAULTS = {"TVTS": {"num_frames": 16, "sampling": "centers", "resize": "short_side_crop"},
                   "TVTSv2": {"num_frames": 12, "sampling": "linspace", "resize": "squash"}}
VIDEO_EXTENSIONS = (".mp4", ".webm", ".avi", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg", ".flv")


def find_videos(inputs):
    """Video files named directly or found (recursively, sorted) under the given folders."""
    paths = []
    for item in inputs:
        if os.path.isdir(item):
            found = sorted(os.path.join(root, name) for root, _, names in os.walk(item) for name in names
                           if name.lower().endswith(VIDEO_EXTENSIONS))
            if not found:
                log.warning("no video files (%s) under %s", ", ".join(VIDEO_EXTENSIONS), item)
            paths.extend(found)
        elif os.path.isfile(item):
            paths.append(item)
        else:
            raise FileNotFoundError(f"input not found: {item}")
    if not paths:
        raise ValueError(f"no videos to process in {inputs}")
    return paths


def frame_indices(n, num_frames, sampling):
    """`centers`: the centre of each of `num_frames` equal segments (short videos spread); `linspace`:
    linspace(0, n - 1, num_frames) truncated to integers, the official TVTSv2 rule."""
    if sampling == "linspace":
        return np.linspace(0, n - 1, num_frames).astype(int)
    return segment_indices(n, num_frames, short_videos="spread")


class VideoFiles(FailSafeDataset):
    """One deterministic clip per file; unreadable files become failure records (never another video)."""

    def __init__(self, paths, num_frames=16, input_size=224, short_side_size=224, reader="auto",
                 sampling="centers", resize="short_side_crop"):
        super().__init__("val")
        if sampling not in SAMPLINGS or resize not in RESIZES:
            raise ValueError(f"sampling must be one of {SAMPLINGS} and resize one of {RESIZES}")
        self._names = list(paths)
        self.num_frames, self.input_size, self.short_side_size = num_frames, input_size, short_side_size
        self.sampling, self.resize = sampling, resize
        self._readers = {"avi": get_reader("pyav" if reader == "auto" else reader),
                         "other": get_reader("decord" if reader == "auto" else reader)}

    def _load(self, index, rng):
        path = self._names[index]
        reader = self._readers["avi" if path.lower().endswith(".avi") else "other"]
        with reader.open(path) as video:
            if video.num_frames < 1:
                raise VideoReadError(f"video has no frames: {path}")
            frames = video.read(frame_indices(video.num_frames, self.num_frames, self.sampling))
        if self.resize == "squash":  # torchvision Resize((s, s)) on each frame: bilinear, antialiased
            x = TF.resize(torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2),
                          [self.input_size, self.input_size], antialias=True)
            frames = x.permute(0, 2, 3, 1).numpy()
        else:
            frames = center_crop(resize_short_side(frames, self.short_side_size), self.input_size)
        return {"video": to_normalized_tensor(frames), "label": -1, "id": path, "chunk": 0, "split": 0}


class VideoEmbedding(nn.Module):
    """A pretraining network's video embedding as a feature extractor on channels-first clips (B, C, T, H, W)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward_features(self, video):
        return self.net.compute_video(video.transpose(1, 2), None)[1]


def arch_of(model_arg):
    """The `arch` entry a `--model` value names: a pretraining config's, or TVTS's for a preset name."""
    if not model_arg.endswith(".json"):
        return {"type": "TVTS"}
    if not os.path.isfile(model_arg):
        raise FileNotFoundError(f"--model config not found: {model_arg}")
    with open(model_arg) as f:
        return {"type": "TVTS", **json.load(f).get("arch", {})}


def build_extractor(args, arch):
    """The feature network of the method with the `--finetune` checkpoint loaded; `args.input_size` None becomes
    the network's frame size."""
    if arch["type"] == "TVTS":
        args.input_size = args.input_size or 224
        model = VideoClassifier(0, **encoder_args(args.model, args.num_frames, args.input_size, args.tubelet_size))
        load_pretrained_encoder(model, args.finetune)
        return model
    net = build_model({"type": arch["type"], "args": ARCHITECTURES.get(arch["type"]).architecture_only(arch["args"])})
    load_checkpoint(net, args.finetune)
    args.input_size = args.input_size or net.video_model.image_size
    return VideoEmbedding(net)


def get_args(argv=None):
    p = argparse.ArgumentParser("extract TVTS video features", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--input", nargs="+", required=True, help="video files and/or folders (searched recursively)")
    p.add_argument("--output", required=True, help="the .npz file to write")
    p.add_argument("--finetune", required=True, help="pretraining checkpoint (ours or official)")
    p.add_argument("--model", default="vit_base_patch16_224",
                   help="TVTS encoder preset, or a pretraining config .json (TVTS or TVTSv2)")
    p.add_argument("--num_frames", type=int, default=None, help="default: the method's (TVTS 16, TVTSv2 12)")
    p.add_argument("--sampling", choices=SAMPLINGS, default=None,
                   help="frame rule; default: the method's (TVTS centers, TVTSv2 linspace)")
    p.add_argument("--resize", choices=RESIZES, default=None,
                   help="spatial rule; default: the method's (TVTS short_side_crop, TVTSv2 squash)")
    p.add_argument("--tubelet_size", type=int, default=2)
    p.add_argument("--input_size", type=int, default=None, help="default: the network's frame size (224)")
    p.add_argument("--short_side_size", type=int, default=224)
    p.add_argument("--reader", default="auto", help="auto (PyAV for .avi, decord otherwise), decord, pyav or cv2")
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--num_workers", type=int, default=2)
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "bf16"])
    return p.parse_args(argv)


def main(argv=None):
    args = get_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s", force=True)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    paths = find_videos(args.input)
    arch = arch_of(args.model)
    if arch["type"] not in METHOD_DEFAULTS:
        raise ValueError(f"feature extraction knows {sorted(METHOD_DEFAULTS)}, not {arch['type']!r}")
    for key, value in METHOD_DEFAULTS[arch["type"]].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    model = build_extractor(args, arch)
    log.info("%d videos; %s features on %s (%d frames, %s sampling, %s to %d px)", len(paths), arch["type"], device,
             args.num_frames, args.sampling, args.resize, args.input_size)
    data = VideoFiles(paths, args.num_frames, args.input_size, args.short_side_size, args.reader, args.sampling,
                      args.resize)
    loader = DataLoader(data, batch_size=args.batch_size, num_workers=args.num_workers, collate_fn=collate_clips)
    views = run_views(model.to(device), loader, device=device, dtype=autocast_dtype(args.precision, device),
                      features=True, desc="videos")
    report_failures(views["failed"], "videos")
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    failed = np.asarray([f"{r['name']}: {r['error']}" for r in views["failed"]], dtype=str)
    np.savez(args.output, features=views["outputs"], paths=np.asarray(views["ids"], dtype=str), failed=failed)
    log.info("wrote %d features of size %d to %s (%d failed)", len(views["ids"]), views["outputs"].shape[-1]
             if len(views["ids"]) else 0, args.output, len(failed))
    return 0 if len(views["ids"]) else 1


if __name__ == "__main__":
    sys.exit(main())
