"""Features of your own videos from a TVTS checkpoint: one vector per video, written to a `.npz` file.

    python -m downstream.extract_features --finetune TVTS_yt_pt.pth --input my_videos/ --output feats.npz

The feature is the one zero-shot retrieval uses: the final-norm CLS token of the unmasked video encoder (768-d for
ViT-B), from `--num_frames` frames taken at the centres of equal segments of the whole video, the short side
resized to `--short_side_size` and the centre `--input_size` square. The output holds `features` (N, D) and
`paths` (N,) in input order; videos that cannot be read are listed in `failed` (with the reason) and left out.
"""
import argparse
import logging
import os
import sys

import numpy as np
import torch
from torch.utils.data import DataLoader

from data_loader.base import FailSafeDataset
from data_loader.readers import VideoReadError, get_reader
from utils.amp import autocast_dtype

from .datasets import center_crop, collate_clips, resize_short_side, segment_indices, to_normalized_tensor
from .encoder import VideoClassifier, encoder_args, load_pretrained_encoder
from .engine import report_failures, run_views

log = logging.getLogger("downstream")
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


class VideoFiles(FailSafeDataset):
    """One deterministic clip per file; unreadable files become failure records (never another video)."""

    def __init__(self, paths, num_frames=16, input_size=224, short_side_size=224, reader="auto"):
        super().__init__("val")
        self._names = list(paths)
        self.num_frames, self.input_size, self.short_side_size = num_frames, input_size, short_side_size
        self._readers = {"avi": get_reader("pyav" if reader == "auto" else reader),
                         "other": get_reader("decord" if reader == "auto" else reader)}

    def _load(self, index, rng):
        path = self._names[index]
        reader = self._readers["avi" if path.lower().endswith(".avi") else "other"]
        with reader.open(path) as video:
            if video.num_frames < 1:
                raise VideoReadError(f"video has no frames: {path}")
            frames = video.read(segment_indices(video.num_frames, self.num_frames, short_videos="spread"))
        clip = to_normalized_tensor(center_crop(resize_short_side(frames, self.short_side_size), self.input_size))
        return {"video": clip, "label": -1, "id": path, "chunk": 0, "split": 0}


def get_args(argv=None):
    p = argparse.ArgumentParser("extract TVTS video features", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--input", nargs="+", required=True, help="video files and/or folders (searched recursively)")
    p.add_argument("--output", required=True, help="the .npz file to write")
    p.add_argument("--finetune", required=True, help="pretraining checkpoint (ours or official)")
    p.add_argument("--model", default="vit_base_patch16_224", help="encoder preset or pretraining config .json")
    p.add_argument("--num_frames", type=int, default=16)
    p.add_argument("--tubelet_size", type=int, default=2)
    p.add_argument("--input_size", type=int, default=224)
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
    log.info("%d videos; features on %s", len(paths), device)
    model = VideoClassifier(0, **encoder_args(args.model, args.num_frames, args.input_size, args.tubelet_size))
    load_pretrained_encoder(model, args.finetune)
    data = VideoFiles(paths, args.num_frames, args.input_size, args.short_side_size, args.reader)
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
