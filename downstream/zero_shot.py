"""Zero-shot video-to-video retrieval: every validation video queries all the others by the cosine of their
encoder features (TVTS: the final-norm CLS; CPD: the 3D ResNet's pooled map); R@K is the share of queries with a
same-class video among the K nearest.

As the official: one view per video (16 segment frames, random offsets unless `--val_sampling center`, centre
crop), fp32 by default, leave-one-out over the validation list. Unlike the official it shards the videos over all
processes (the official gave wrong numbers on more than one GPU) and never substitutes a random other video for
an unreadable one: those are left out and counted in `results.json`.
"""
import logging
import os

import numpy as np
import torch

from utils.amp import autocast_dtype
from utils.distributed import cleanup
from utils.io import write_json

from .common import build_model, dataset, eval_loader, setup
from .engine import report_failures, run_views
from .metrics import video_retrieval_recall

log = logging.getLogger("downstream")


def main(args):
    env = setup(args)
    try:
        return run(args, env)
    finally:
        cleanup()


def run(args, env):
    data = dataset(args, "validation")
    model, _ = build_model(args, 0)
    model.to(env.device)
    precision = "fp32" if args.precision == "auto" else args.precision
    views = run_views(model, eval_loader(args, data, env, int(1.5 * args.batch_size)), device=env.device,
                      dtype=autocast_dtype(precision, env.device), features=True, main=env.is_main,
                      desc="features")
    report_failures(views["failed"], "videos")
    if not env.is_main:
        return None
    feats = torch.from_numpy(views["outputs"]).to(env.device)
    recall = video_retrieval_recall(feats, torch.from_numpy(views["labels"]).to(env.device), ks=(1, 5, 10))
    recall = {f"R@{k[1:]}": float(v) for k, v in recall.items() if k != "queries"}
    results = {**recall, "videos": len(views["ids"]),
               "failed": len(views["failed"]), "failed_videos": [r["name"] for r in views["failed"]],
               "val_sampling": args.val_sampling, "checkpoint": args.finetune or None}
    write_json(os.path.join(args.output_dir, "results.json"), results)
    if args.save_features:
        np.savez(os.path.join(args.output_dir, "features.npz"), features=views["outputs"], labels=views["labels"],
                 ids=np.asarray(views["ids"]))
    log.info("zero-shot video-to-video retrieval over %d videos: %s", results["videos"],
             ", ".join(f"{k} {v:.2f}" for k, v in recall.items()))
    return results
