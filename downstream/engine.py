"""Training and evaluation loops of the downstream protocols, for one process or many.

Evaluation shards the dataset over the processes without padding and gathers the results in memory, so every
video counts exactly once and no shared filesystem is needed (the official wrote per-rank text files and merged
them on rank 0, and its zero-shot retrieval only worked on one GPU). Items that could not be read are counted and
reported, never replaced.
"""
import logging
import math
import time
from collections import Counter

import numpy as np
import torch
from torch.utils.data import Sampler
from tqdm import tqdm

from utils.amp import autocast
from utils.distributed import gather_objects

from .metrics import accuracy
from .optim import set_lr_wd

log = logging.getLogger(__name__)


class ShardSampler(Sampler):
    """Indices rank, rank + world, ...: every item exactly once over all ranks (no padding duplicates)."""

    def __init__(self, length, rank=0, world_size=1):
        self.indices = list(range(rank, length, world_size))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self):
        return len(self.indices)


def _failure_counts(records):
    return dict(Counter(r["reason"] for r in records))


def _progress(loader, main, desc):
    return tqdm(loader, desc=desc, disable=not main, dynamic_ncols=True, leave=False)


def train_one_epoch(model, loader, amp, criterion, *, device, epoch, start_step, lr_values, wd_values,
                    mixup=None, update_freq=1, dtype=None, max_steps=None, main=True, eval_modules=()):
    """One pass over `loader`, updating through `amp` (a `utils.amp.OptimizerStep`); the lr/wd schedules are
    indexed by optimiser step (None: the optimiser's own lr and weight decay are left alone, for an epoch-level
    scheduler). `eval_modules` stay in eval mode (a frozen encoder's BatchNorm). Returns averaged statistics."""
    optimizer = amp.optimizer
    model.train()
    for module in eval_modules:
        module.eval()
    optimizer.zero_grad(set_to_none=True)
    losses, skipped, steps, samples = [], [], 0, 0
    start = time.perf_counter()
    bar = _progress(loader, main, f"epoch {epoch}")
    for i, batch in enumerate(bar):
        if max_steps is not None and i >= max_steps * update_freq:
            break
        if i % update_freq == 0 and lr_values is not None:
            step = start_step + i // update_freq
            set_lr_wd(optimizer, float(lr_values[min(step, len(lr_values) - 1)]),
                      float(wd_values[min(step, len(wd_values) - 1)]))
        skipped.extend(batch["skipped"])
        video = batch["video"].to(device, non_blocking=True)
        target = batch["label"].to(device, non_blocking=True)
        if mixup is not None:
            video, target = mixup(video, target)
        with autocast(device, dtype):
            loss = criterion(model(video), target)
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"loss is {loss.item()} at epoch {epoch}, iteration {i}: stopping")
        amp.backward(loss / update_freq)
        if (i + 1) % update_freq == 0:
            amp.step(model.parameters())
            steps += 1
        losses.append(loss.item())
        samples += video.shape[0]
        if main:
            bar.set_postfix(loss=f"{loss.item():.4f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}",
                            clips_s=f"{samples / (time.perf_counter() - start):.1f}")
    max_lr = max(g["lr"] for g in optimizer.param_groups)
    return {"train_loss": float(np.mean(losses)) if losses else float("nan"), "train_lr": max_lr, "steps": steps,
            "skipped": _failure_counts(skipped)}


@torch.no_grad()
def run_views(model, loader, *, device, dtype=None, features=False, main=True, desc="eval"):
    """Outputs (logits, or final-norm CLS features) for every readable item of `loader`, gathered from all ranks.

    Returns a dict of numpy arrays / lists: `outputs` (N, C), `labels`, `ids`, `chunks`, `splits`, and the
    `failed` records of items that could not be read.
    """
    model.eval()
    out = {"outputs": [], "labels": [], "ids": [], "chunks": [], "splits": [], "failed": []}
    for batch in _progress(loader, main, desc):
        out["failed"].extend(batch["failed"])
        if batch["video"] is None:
            continue
        video = batch["video"].to(device, non_blocking=True)
        with autocast(device, dtype):
            y = model.forward_features(video) if features else model(video)
        out["outputs"].append(y.float().cpu().numpy())
        out["labels"].extend(batch["label"].tolist())
        out["ids"].extend(batch["id"])
        out["chunks"].extend(batch["chunk"].tolist())
        out["splits"].extend(batch["split"].tolist())
    parts = gather_objects(out)
    merged = {k: [x for p in parts for x in p[k]] for k in ("labels", "ids", "chunks", "splits", "failed")}
    arrays = [a for p in parts for a in p["outputs"]]
    merged["outputs"] = np.concatenate(arrays) if arrays else np.zeros((0, 0), np.float32)
    merged["labels"] = np.asarray(merged["labels"], dtype=np.int64)
    return merged


def validate(model, loader, *, device, dtype=None, main=True):
    """Single-view top-1/top-5 over the validation list (one clip per video), with the unreadable videos counted."""
    views = run_views(model, loader, device=device, dtype=dtype, main=main, desc="validation")
    result = {"val_videos": len(views["ids"]), "val_failed": _failure_counts(views["failed"])}
    if len(views["ids"]):
        top1, top5 = accuracy(torch.from_numpy(views["outputs"]), torch.from_numpy(views["labels"]), topk=(1, 5))
        result.update(val_acc1=float(top1), val_acc5=float(top5))
    return result


def report_failures(failed, what):
    """Log the items that could not be read (they are excluded from the metric, not replaced)."""
    if failed:
        shown = "; ".join(f"{r['name']}: {r['error']}" for r in failed[:5])
        log.warning("%d %s could not be read and were left out: %s%s", len(failed), what, shown,
                    " ..." if len(failed) > 5 else "")
