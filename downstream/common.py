"""Set-up shared by the downstream entry points: process group, logging, model, data loaders."""
import json
import logging
import os
import random

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler

from utils.distributed import init_distributed

from .datasets import build_dataset, collate_clips
from .encoder import build_classifier, default_input_size, load_pretrained_encoder
from .engine import ShardSampler

log = logging.getLogger("downstream")


def setup_logging(output_dir, main):
    """Create `output_dir`; log to the console, and on the main process to `<output_dir>/run.log` too (other ranks
    only warnings)."""
    os.makedirs(output_dir, exist_ok=True)
    handlers = [logging.StreamHandler()]
    if main:
        handlers.append(logging.FileHandler(os.path.join(output_dir, "run.log")))
    logging.basicConfig(level=logging.INFO if main else logging.WARNING, handlers=handlers, force=True,
                        format="%(asctime)s %(name)s %(levelname)s: %(message)s")


def setup(args):
    """Join the process group, seed (seed + rank, as the official), create the output folder and the log file."""
    env = init_distributed(args.device)
    if args.input_size is None:  # a config sets every input parameter it holds
        args.input_size = default_input_size(args.model)
    if args.short_side_size is None:
        args.short_side_size = args.input_size
    seed = args.seed + env.rank
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    setup_logging(args.output_dir, env.is_main)
    if env.is_main:
        with open(os.path.join(args.output_dir, "args.json"), "w") as f:
            json.dump(vars(args), f, indent=2)
    log.info("%s on %s, %d process(es); output in %s", args.protocol, env.device, env.world_size, args.output_dir)
    return env


def build_model(args, nb_classes):
    """The classifier (or, with `nb_classes=0`, the feature extractor), with the pretraining encoder loaded."""
    model = build_classifier(args.model, nb_classes, args.num_frames, args.input_size, args.tubelet_size,
                             args.drop_path, args.attention, init_scale=getattr(args, "init_scale", 1.0),
                             dropout=getattr(args, "dropout", 0.0))
    report = None
    if args.finetune:
        report = load_pretrained_encoder(model, args.finetune)
    elif not getattr(args, "eval", False):
        log.warning("no --finetune checkpoint: the encoder is randomly initialised (--from_scratch)")
    return model, report


def dataset(args, mode, train_transform=None):
    lists = {"train": args.train_list, "validation": args.val_list, "test": args.test_list}
    return build_dataset(
        args.data_set, mode, data_path=args.data_path, list_file=lists[mode], video_root=args.video_root,
        num_frames=args.num_frames, input_size=args.input_size, short_side_size=args.short_side_size,
        sampling_rate=args.sampling_rate, test_num_segment=args.test_num_segment, test_num_crop=args.test_num_crop,
        reader=args.reader, train_transform=train_transform, val_sampling=args.val_sampling,
        nb_classes=args.nb_classes, loading=args.loading, seed=args.seed, short_videos=args.short_videos,
        recipe=getattr(args, "recipe", "videomae"), target_fps=getattr(args, "target_fps", 30),
        jitter_range=tuple(getattr(args, "jitter_range", (256, 340))))


def eval_loader(args, data, env, batch_size):
    return DataLoader(data, batch_size=batch_size, sampler=ShardSampler(len(data), env.rank, env.world_size),
                      num_workers=args.num_workers, pin_memory=args.pin_mem and env.device.type == "cuda",
                      collate_fn=collate_clips, persistent_workers=False)


def train_loader(args, data, env):
    sampler = DistributedSampler(data, num_replicas=env.world_size, rank=env.rank, shuffle=True, seed=args.seed)
    loader = DataLoader(data, batch_size=args.batch_size, sampler=sampler, num_workers=args.num_workers,
                        pin_memory=args.pin_mem and env.device.type == "cuda", drop_last=True,
                        collate_fn=collate_clips)
    return loader, sampler

