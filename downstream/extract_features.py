"""Features of your own videos from a TVTS, TVTSv2, CPD or SimVTP checkpoint: one vector per video.

    python -m downstream.extract_features --finetune TVTS_yt_pt.pth --input my_videos/ --output feats.npz
    python -m downstream.extract_features --model configs/tvtsv2-b16.json --finetune TVTSv2_B_16.pth \
        --input my_videos/ list.txt clip.mp4 --output feats/          # one .npy per video, resumable

`--model` names the method: a TVTS preset or pretraining config gives the feature zero-shot retrieval uses, the
final-norm CLS token of the unmasked encoder (768-d for ViT-B), from 16 frames at the centres of equal segments,
the short side resized to `--short_side_size` and the centre square; a TVTSv2 config gives the official TVTSv2
feature, the projected video CLS embedding, unnormalised (512-d for B, 1024-d for H/14), from 12 frames at
linspace(0, n - 1, 12) squashed to `--input_size` squares; a CPD config (or `slowonly_r3d50`) gives the 3D
ResNet's pooled 2048-d feature from 8 frames at segment centres, short side resize and centre square (CPD has no
official feature rule; 8 is its pretraining clip length); a SimVTP config gives the unit-norm mean of its encoder's
tokens over the whole unmasked clip (768-d for ViT-B; the retrieval embedding of its pretraining validation) from as
many frames as its position table holds (16) at segment centres, short side resize and centre square. A config sets every input parameter it holds (frame
count and size); `--num_frames`, `--sampling` and `--resize` override the method's rule, and `--sampler eval` takes
the zero-shot evaluation input instead (12 frames at bin middles, short side 268 nearest, centre crop for TVTSv2).

Inputs are video files, folders (searched recursively) and `.txt` lists (one path per line). An `.npz` output holds
`features` (N, D), `paths` (N,) in input order and `failed` (path: reason); a folder output gets one `.npy` per
video (its path relative to the inputs' common folder) and skips videos already done, so a large job resumes where
it stopped. Under torchrun the videos are sharded over the processes. Unreadable videos are listed, never replaced.
From Python: `extract(paths, checkpoint, model=...) -> (N, D) array` (or an `Extractor`, to reuse the loaded network).
"""
import argparse
import json
import logging
import os
import sys
import time

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from torch.utils.data import DataLoader

from tqdm import tqdm

from data_loader.base import FailSafeDataset
from data_loader.readers import ReaderByFile, VideoReadError
from model import ARCHITECTURES, build_model, load_checkpoint
from model.checkpoint import CheckpointError
from utils.amp import autocast, autocast_dtype
from utils.distributed import cleanup, gather_objects, init_distributed

from .datasets import center_crop, resize_short_side, segment_indices, to_normalized_tensor
from .encoder import (R3D_PRESETS, VideoClassifier, build_classifier, default_input_size, encoder_args,
                      load_pretrained_encoder)
from .engine import ShardSampler, report_failures
from .text_video import resize_interpolation
from .zero_data import EvalVideos, collate_eval

log = logging.getLogger("downstream")
SAMPLINGS = ("centers", "linspace")
RESIZES = ("short_side_crop", "squash")
# each method's official feature rule: frames, frame sampling, spatial resize
# (CPD has none: ours takes its pretraining clip length at segment centres over the whole video)
METHOD_DEFAULTS = {"TVTS": {"num_frames": 16, "sampling": "centers", "resize": "short_side_crop"},
                   "TVTSv2": {"num_frames": 12, "sampling": "linspace", "resize": "squash"},
                   "CPD": {"num_frames": 8, "sampling": "centers", "resize": "short_side_crop"},
                   "SimVTP": {"num_frames": None, "sampling": "centers", "resize": "short_side_crop"}}
VIDEO_EXTENSIONS = (".mp4", ".webm", ".avi", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg", ".flv")


SAMPLERS = ("official", "eval")


def find_videos(inputs):
    """Video files named directly, listed in `.txt` files (one per line) or found (recursively, sorted) under
    folders, in that order; a missing input is an error naming it."""
    paths = []
    for item in inputs:
        if os.path.isdir(item):
            found = sorted(os.path.join(root, name) for root, _, names in os.walk(item) for name in names
                           if name.lower().endswith(VIDEO_EXTENSIONS))
            if not found:
                log.warning("no video files (%s) under %s", ", ".join(VIDEO_EXTENSIONS), item)
            paths.extend(found)
        elif os.path.isfile(item) and item.lower().endswith(".txt"):
            with open(item) as f:
                listed = [line.strip() for line in f if line.strip()]
            base = os.path.dirname(os.path.abspath(item))
            paths.extend(p if os.path.isabs(p) else os.path.join(base, p) for p in listed)
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
    """One deterministic clip per file, `{"video": (T, 3, S, S), "index"}`; unreadable files become failure
    records (never another video)."""

    def __init__(self, paths, num_frames=16, input_size=224, short_side_size=224, reader="auto",
                 sampling="centers", resize="short_side_crop"):
        super().__init__("val")
        if sampling not in SAMPLINGS or resize not in RESIZES:
            raise ValueError(f"sampling must be one of {SAMPLINGS} and resize one of {RESIZES}")
        self._names = list(paths)
        self.num_frames, self.input_size, self.short_side_size = num_frames, input_size, short_side_size
        self.sampling, self.resize = sampling, resize
        self._reader = ReaderByFile(reader)

    def _load(self, index, rng):
        path = self._names[index]
        with self._reader.open(path) as video:
            if video.num_frames < 1:
                raise VideoReadError(f"video has no frames: {path}")
            frames = video.read(frame_indices(video.num_frames, self.num_frames, self.sampling))
        if self.resize == "squash":  # torchvision Resize((s, s)) on each frame: bilinear, antialiased
            x = TF.resize(torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2),
                          [self.input_size, self.input_size], antialias=True)
            frames = x.permute(0, 2, 3, 1).numpy()
        else:
            frames = center_crop(resize_short_side(frames, self.short_side_size), self.input_size)
        return {"video": to_normalized_tensor(frames).transpose(0, 1), "index": index}


def arch_of(model_arg):
    """The `arch` entry a `--model` value names: a pretraining config's (with the whole config under "config"), or
    TVTS's for a preset name."""
    if not model_arg.endswith(".json"):
        return {"type": "CPD" if model_arg in R3D_PRESETS else "TVTS"}
    if not os.path.isfile(model_arg):
        raise FileNotFoundError(f"--model config not found: {model_arg}")
    with open(model_arg) as f:
        config = json.load(f)
    return {"type": "TVTS", **config.get("arch", {}), "config": config}


class Extractor:
    """The method's feature network with `checkpoint` loaded and its input rule: `extractor(paths)` -> (N, D)
    float32 features in input order (an unreadable video is an error naming it; `embed(dataset)` reports them
    instead). Options left None take the method's rule (see the module docstring)."""

    def __init__(self, checkpoint, model="vit_base_patch16_224", device=None, precision="fp32", sampler="official",
                 num_frames=None, sampling=None, resize=None, input_size=None, short_side_size=None,
                 tubelet_size=None, reader="auto"):
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
        arch = arch_of(model)
        if arch["type"] not in METHOD_DEFAULTS:
            raise ValueError(f"feature extraction knows {sorted(METHOD_DEFAULTS)}, not {arch['type']!r}")
        rule = {**METHOD_DEFAULTS[arch["type"]], **{k: v for k, v in (("num_frames", num_frames),
                ("sampling", sampling), ("resize", resize)) if v is not None}}
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.checkpoint, self.model = checkpoint, model
        self.dtype, self.reader, self.sampler, self.method = autocast_dtype(precision, self.device), reader, \
            sampler, arch["type"]
        if arch["type"] == "TVTS":
            args = encoder_args(model, rule["num_frames"], input_size, tubelet_size)
            self.net = VideoClassifier(0, **args)
            try:
                load_pretrained_encoder(self.net, checkpoint)
            except CheckpointError as e:
                if "not a PyTorch checkpoint" in str(e) or "not found" in str(e):
                    raise
                raise CheckpointError(f"{e}\n(not a TVTS encoder of --model {model}: for a TVTSv2 checkpoint pass its "
                                      "config, --model configs/tvtsv2-*.json)") from None
            self.input_size, self.interpolation = args["img_size"], "bilinear"
        elif arch["type"] == "CPD":
            self.net = build_classifier(model, 0)
            load_pretrained_encoder(self.net, checkpoint)
            self.input_size, self.interpolation = input_size or default_input_size(model), "bilinear"
        else:
            self.net = build_model({"type": arch["type"],
                                    "args": ARCHITECTURES.get(arch["type"]).architecture_only(arch["args"])})
            load_checkpoint(self.net, checkpoint)
            tower = self.net.video_model
            self.input_size = input_size or getattr(tower, "image_size", None) or tower.img_size
            self.interpolation = resize_interpolation(arch["config"])
            if rule["num_frames"] is None:  # SimVTP: its fixed position table sets the frame count
                rule["num_frames"] = tower.num_frames
        self.net.to(self.device).eval()
        self.num_frames, self.sampling, self.resize = rule["num_frames"], rule["sampling"], rule["resize"]
        self.short_side_size = short_side_size or self.input_size

    def settings(self):
        """What determines a feature: the weights (file, size, time), the method and its input rule, precision."""
        stat = os.stat(self.checkpoint)
        return json.loads(json.dumps({
            "checkpoint": [os.path.abspath(self.checkpoint), stat.st_size, stat.st_mtime_ns], "model": self.model,
            "sampler": self.sampler, "num_frames": self.num_frames, "sampling": self.sampling, "resize": self.resize,
            "input_size": self.input_size, "short_side_size": self.short_side_size,
            "interpolation": self.interpolation, "dtype": str(self.dtype), "reader": self.reader}))

    def describe(self):
        if self.sampler == "eval":
            return (f"{self.method} features, evaluation input: {self.num_frames} frames at bin middles, "
                    f"{self.interpolation} resize, centre crop {self.input_size}")
        return (f"{self.method} features: {self.num_frames} frames, {self.sampling} sampling, {self.resize} to "
                f"{self.input_size} px")

    def dataset(self, paths):
        if self.sampler == "eval":
            return EvalVideos(paths, self.num_frames, self.input_size, self.interpolation, self.reader)
        return VideoFiles(paths, self.num_frames, self.input_size, self.short_side_size, self.reader, self.sampling,
                          self.resize)

    @torch.no_grad()
    def features(self, video):
        """(B, T, 3, S, S) clips -> (B, D) float32."""
        video = video.to(self.device, non_blocking=True)
        with autocast(self.device, self.dtype):
            if self.method in ("TVTS", "CPD"):
                return self.net.forward_features(video.transpose(1, 2)).float()
            return self.net.compute_video(video, None)[1].float()

    def embed(self, dataset, indices=None, batch_size=8, num_workers=0, main=True, on_batch=None):
        """Features of `dataset[i]` for i in `indices` (default all): yields nothing, returns (index array,
        features array, failed records); `on_batch(index, features)` sees every batch as it is done."""
        loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate_eval,
                            sampler=list(range(len(dataset))) if indices is None else list(indices))
        done, parts, failed = [], [], []
        for batch in tqdm(loader, desc="videos", disable=not main, dynamic_ncols=True):
            failed.extend(batch["failed"])
            if batch["video"] is None:
                continue
            feats = self.features(batch["video"]).cpu().numpy()
            index = batch["index"].numpy()
            if on_batch is not None:
                on_batch(index, feats)
            done.append(index)
            parts.append(feats)
        if not parts:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float32), failed
        return np.concatenate(done), np.concatenate(parts), failed

    def __call__(self, paths, batch_size=8, num_workers=0):
        paths = list(paths)
        index, feats, failed = self.embed(self.dataset(paths), batch_size=batch_size, num_workers=num_workers,
                                          main=False)
        if failed:
            raise VideoReadError("cannot read " + "; ".join(f"{r['name']}: {r['error']}" for r in failed))
        return feats[np.argsort(index)]


SETTINGS_FILE = "extraction.json"


def check_settings(out_dir, settings, main):
    """A folder output resumes only under the settings it was started with (recorded in extraction.json):
    features of other weights or another input rule must not be mixed into it."""
    path = os.path.join(out_dir, SETTINGS_FILE)
    if os.path.isfile(path):
        with open(path) as f:
            before = json.load(f)
        if before != settings:
            changed = sorted(k for k in set(before) | set(settings) if before.get(k) != settings.get(k))
            raise ValueError(f"{out_dir} holds features made with other settings ({', '.join(changed)} differ; see "
                             f"{path}): use another --output folder")
    elif main:
        os.makedirs(out_dir, exist_ok=True)
        with open(path, "w") as f:
            json.dump(settings, f, indent=1)


def extract(videos, checkpoint, model="vit_base_patch16_224", batch_size=8, num_workers=0, **options):
    """(N, D) features of `videos` (paths) in order: `Extractor(checkpoint, model, **options)(videos)`."""
    return Extractor(checkpoint, model, **options)(videos, batch_size, num_workers)


def feature_file(out_dir, root, path):
    """Where a folder output keeps the feature of `path`: its path relative to `root` (a folder above every input),
    with `.npy` appended."""
    return os.path.join(out_dir, os.path.relpath(os.path.abspath(path), root) + ".npy")


def get_args(argv=None):
    p = argparse.ArgumentParser("extract TVTS video features", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--input", nargs="+", required=True,
                   help="video files, folders (searched recursively) and .txt lists of paths")
    p.add_argument("--output", required=True, help="an .npz file, or a folder for one .npy per video (resumable)")
    p.add_argument("--finetune", "--checkpoint", dest="finetune", required=True,
                   help="pretraining checkpoint (ours or official)")
    p.add_argument("--model", default="vit_base_patch16_224",
                   help="TVTS encoder preset, or a pretraining config .json (TVTS or TVTSv2)")
    p.add_argument("--sampler", choices=SAMPLERS, default="official",
                   help="official: the method's feature rule; eval: the zero-shot evaluation input")
    p.add_argument("--num_frames", type=int, default=None, help="default: the method's (TVTS 16, TVTSv2 12)")
    p.add_argument("--sampling", choices=SAMPLINGS, default=None,
                   help="frame rule; default: the method's (TVTS centers, TVTSv2 linspace)")
    p.add_argument("--resize", choices=RESIZES, default=None,
                   help="spatial rule; default: the method's (TVTS short_side_crop, TVTSv2 squash)")
    p.add_argument("--tubelet_size", type=int, default=None, help="TVTS (default: the config's, else 2)")
    p.add_argument("--input_size", type=int, default=None, help="default: the network's frame size")
    p.add_argument("--short_side_size", type=int, default=None, help="default: --input_size")
    p.add_argument("--reader", default="auto", help="auto (PyAV for .avi, decord otherwise), decord, pyav or cv2")
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--num_workers", type=int, default=2)
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "bf16"])
    return p.parse_args(argv)


def main(argv=None):
    args = get_args(argv)
    env = init_distributed(args.device)
    logging.basicConfig(level=logging.INFO if env.is_main else logging.WARNING, force=True,
                        format="%(asctime)s %(levelname)s: %(message)s")
    try:
        return run(args, env)
    finally:
        cleanup()


def run(args, env):
    paths = find_videos(args.input)
    extractor = Extractor(args.finetune, args.model, env.device, args.precision, args.sampler, args.num_frames,
                          args.sampling, args.resize, args.input_size, args.short_side_size, args.tubelet_size,
                          args.reader)
    to_folder = not args.output.lower().endswith(".npz")
    # shard every listed video first, then drop the done ones: ranks must not see different "done" sets
    shard = list(ShardSampler(len(paths), env.rank, env.world_size))
    if to_folder:
        check_settings(args.output, extractor.settings(), env.is_main)
        root = os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p in paths])
        targets = [feature_file(args.output, root, p) for p in paths]
        done_before = [i for i in shard if os.path.isfile(targets[i])]
        shard = [i for i in shard if not os.path.isfile(targets[i])]
        skipped = sum(gather_objects(len(done_before)))
        if env.is_main and skipped:
            log.info("%d of %d videos already have features in %s: skipped", skipped, len(paths), args.output)
    log.info("%d videos over %d process(es); %s on %s", len(paths), env.world_size, extractor.describe(),
             env.device)

    def save(index, feats):
        for i, f in zip(index, feats):
            os.makedirs(os.path.dirname(targets[i]), exist_ok=True)
            tmp = targets[i] + ".tmp.npy"
            np.save(tmp, f)
            os.replace(tmp, targets[i])

    started = time.perf_counter()
    index, feats, failed = extractor.embed(extractor.dataset(paths), shard, args.batch_size, args.num_workers,
                                           env.is_main, save if to_folder else None)
    parts = gather_objects({"index": index, "feats": None if to_folder else feats, "failed": failed})
    failed = [r for part in parts for r in part["failed"]]
    done = sum(len(part["index"]) for part in parts)
    if not env.is_main:
        return 0
    report_failures(failed, "videos")
    failed_lines = np.asarray([f"{r['name']}: {r['error']}" for r in failed], dtype=str)
    if to_folder:
        os.makedirs(args.output, exist_ok=True)
        with open(os.path.join(args.output, "failed.txt"), "w") as f:
            f.write("".join(line + "\n" for line in failed_lines))
        log.info("wrote %d features to %s in %.0f s (%d failed, listed in failed.txt)", done, args.output,
                 time.perf_counter() - started, len(failed))
        return 0 if done or skipped else 1
    index = np.concatenate([part["index"] for part in parts])
    arrays = [part["feats"] for part in parts if len(part["index"])]
    feats = np.concatenate(arrays)[np.argsort(index)] if arrays else np.zeros((0, 0), np.float32)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    np.savez(args.output, features=feats, paths=np.asarray([paths[i] for i in np.sort(index)], dtype=str),
             failed=failed_lines)
    log.info("wrote %d features of size %d to %s in %.0f s (%d failed)", len(index),
             feats.shape[-1] if len(index) else 0, args.output, time.perf_counter() - started, len(failed))
    return 0 if len(index) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (CheckpointError, FileNotFoundError, ValueError) as e:
        sys.exit(f"error: {e}")
