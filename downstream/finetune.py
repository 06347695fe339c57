"""Fine-tuning and linear probing (the linear probe is fine-tuning with everything but the head frozen).

Flow, as the official runs: encoder from the pretraining checkpoint, layer-decayed AdamW with per-iteration warmup
and cosine (lr scaled by total batch / 256), RandAugment + random-resized crop + random erasing + mixup/cutmix with
label smoothing, one-view validation after every epoch, and after the last epoch a multi-view test (segments x
crops) merged per video. Writes `log.txt` (one JSON line per epoch), `results.json`, checkpoints
(`checkpoint-<epoch>.pth`, `checkpoint-last.pth`, `checkpoint-best.pth`) and resumes from them.
"""
import glob
import json
import logging
import os
import re

import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

from model.checkpoint import read_checkpoint
from utils.amp import OptimizerStep, autocast_dtype
from utils.distributed import cleanup
from utils.io import save_torch, write_json
from utils.rng import rng_state, set_rng_state

from .common import build_model, dataset, eval_loader, setup, train_loader
from .datasets import dataset_spec
from .encoder import r3d_args
from .engine import report_failures, run_views, train_one_epoch, validate
from .metrics import merge_views
from .mixup import Mixup, soft_target_cross_entropy
from .optim import build_optimizer, effective_optimizer, cosine_scheduler, param_groups
from .video_augment import TrainAugment

log = logging.getLogger("downstream")


def freeze_all_but_head(model):
    """Linear probe: only `head.*` trains; returns the number of trainable parameters."""
    for name, p in model.named_parameters():
        p.requires_grad = name.startswith("head.")
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def optimizer_name(args):
    """Fine-tuning honours --opt; the linear probe follows --linear_optimizer (official: AdamW whatever --opt)."""
    return effective_optimizer(args.opt, args.linear_optimizer) if args.protocol == "linear" else args.opt


def save(path, model, amp, epoch, best, args):
    save_torch({"model": model.state_dict(), "optimizer": amp.optimizer.state_dict(), "scaler": amp.state_dict(),
                "epoch": epoch, "best_acc1": best, "rng": rng_state(), "args": json.loads(json.dumps(vars(args)))},
               path)


def latest_checkpoint(output_dir):
    last = os.path.join(output_dir, "checkpoint-last.pth")
    if os.path.isfile(last):
        return last
    numbered = [(int(m.group(1)), p) for p in glob.glob(os.path.join(output_dir, "checkpoint-*.pth"))
                if (m := re.search(r"checkpoint-(\d+)\.pth$", p))]
    return max(numbered)[1] if numbered else None


def test(args, model, env, dtype):
    """Multi-view test over the test list, views merged per video; returns the results dict."""
    data = dataset(args, "test")
    views = run_views(model, eval_loader(args, data, env, args.batch_size), device=env.device, dtype=dtype,
                      main=env.is_main, desc="test views")
    report_failures(views["failed"], "test views")
    result = merge_views(views["ids"], views["chunks"], views["splits"], views["outputs"], views["labels"],
                         merge=args.merge)
    return {"Final top-1": result["top1"], "Final Top-5": result["top5"], "videos": result["videos"],
            "views": result["views"], "failed_views": len(views["failed"]), "merge": args.merge}


def main(args):
    if r3d_args(args.model) is not None:
        raise ValueError(f"--model {args.model}: fine-tuning and the linear probe of CPD's 3D ResNet (its official "
                         "UCF-101 / HMDB-51 recipe) are not built yet; zero-shot retrieval and feature extraction "
                         "take it")
    env = setup(args)
    try:
        run(args, env)
    finally:
        cleanup()


def evaluate_checkpoint(args, env, dtype):
    """`--eval`: the multi-view test of a fine-tuned checkpoint (default: checkpoint-best.pth in --output_dir)."""
    path = args.resume or os.path.join(args.output_dir, "checkpoint-best.pth")
    model, _ = build_model(args, dataset(args, "validation").nb_classes)
    model.load_state_dict(read_checkpoint(path)["model"])
    log.info("evaluating %s", path)
    results = test(args, model.to(env.device), env, dtype)
    if env.is_main:
        write_json(os.path.join(args.output_dir, "results.json"), results)
        log.info("final test of %s: top-1 %.2f, top-5 %.2f", path, results["Final top-1"], results["Final Top-5"])
    return results


def run(args, env):
    dtype = autocast_dtype(args.precision, env.device)
    if args.eval:
        return evaluate_checkpoint(args, env, dtype)
    train_data = dataset(args, "train", TrainAugment(
        input_size=args.input_size, auto_augment=None if args.aa == "none" else args.aa,
        interpolation=args.train_interpolation, flip=dataset_spec(args.data_set)[1].flip, reprob=args.reprob,
        remode=args.remode, recount=args.recount))
    nb_classes = train_data.nb_classes
    model, _ = build_model(args, nb_classes)
    if args.protocol == "linear":
        log.info("linear probe: %d trainable parameters (the head)", freeze_all_but_head(model))
    model.to(env.device)
    ddp = DistributedDataParallel(model, device_ids=[env.device.index] if env.device.type == "cuda" else None) \
        if env.distributed else model

    total_batch = args.batch_size * args.update_freq * env.world_size
    lr, min_lr = args.lr * total_batch / 256, args.min_lr * total_batch / 256
    loader, sampler = train_loader(args, train_data, env)
    steps_per_epoch = len(loader) // args.update_freq
    if args.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, args.max_steps_per_epoch)
    if steps_per_epoch == 0:
        raise ValueError(f"{len(train_data)} training videos make no full batch of {total_batch}: lower --batch_size")
    lr_values = cosine_scheduler(lr, min_lr, args.epochs, steps_per_epoch, warmup_epochs=args.warmup_epochs,
                                 warmup_steps=args.warmup_steps)
    wd_values = cosine_scheduler(args.weight_decay, args.weight_decay, args.epochs, steps_per_epoch)
    groups = param_groups(model, args.weight_decay, args.layer_decay, skip=model.no_weight_decay())
    optimizer = build_optimizer(groups, opt=optimizer_name(args), lr=lr, betas=tuple(args.opt_betas),
                                eps=args.opt_eps, momentum=args.momentum)
    amp = OptimizerStep(optimizer, env.device, scale_loss=dtype == torch.float16, clip=args.clip_grad or 0.0)
    mixup = None
    if args.mixup > 0 or args.cutmix > 0 or args.cutmix_minmax is not None:
        if args.batch_size % 2:
            raise ValueError(f"mixup/cutmix pair each clip with its mirror in the batch: --batch_size must be even, "
                             f"got {args.batch_size}")
        mixup = Mixup(mixup_alpha=args.mixup, cutmix_alpha=args.cutmix, cutmix_minmax=args.cutmix_minmax,
                      prob=args.mixup_prob, switch_prob=args.mixup_switch_prob, mode=args.mixup_mode,
                      label_smoothing=args.smoothing, num_classes=nb_classes, video_cutmix=args.video_cutmix)
        criterion = soft_target_cross_entropy
    else:
        criterion = nn.CrossEntropyLoss(label_smoothing=args.smoothing)
    log.info("total batch %d, lr %.3g (min %.3g), %d steps per epoch x %d epochs, optimiser %s", total_batch, lr,
             min_lr, steps_per_epoch, args.epochs, optimizer_name(args))

    start_epoch, best = 0, None
    resume = args.resume or (latest_checkpoint(args.output_dir) if args.auto_resume else None)
    if resume:
        ckpt = read_checkpoint(resume)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        amp.load_state_dict(ckpt.get("scaler"))
        set_rng_state(ckpt["rng"])
        start_epoch, best = ckpt["epoch"] + 1, ckpt.get("best_acc1")
        log.info("resumed from %s at epoch %d", resume, start_epoch)

    writer = None
    if args.log_dir and env.is_main:
        from torch.utils.tensorboard import SummaryWriter
        writer = SummaryWriter(args.log_dir)
    val_loader = None
    if not args.disable_eval_during_finetuning:
        val_loader = eval_loader(args, dataset(args, "validation"), env, int(1.5 * args.batch_size))
    for epoch in range(start_epoch, args.epochs):
        sampler.set_epoch(epoch)
        train_data.set_epoch(epoch)
        stats = train_one_epoch(ddp, loader, amp, criterion, device=env.device, epoch=epoch,
                                start_step=epoch * steps_per_epoch, lr_values=lr_values, wd_values=wd_values,
                                mixup=mixup, update_freq=args.update_freq, dtype=dtype, max_steps=steps_per_epoch,
                                main=env.is_main)
        stats["epoch"] = epoch
        if val_loader is not None:
            stats.update(validate(model, val_loader, device=env.device, dtype=dtype, main=env.is_main))
        improved = "val_acc1" in stats and (best is None or stats["val_acc1"] > best)
        if improved:
            best = stats["val_acc1"]
        if env.is_main:
            log.info("epoch %d: %s", epoch, stats)
            with open(os.path.join(args.output_dir, "log.txt"), "a") as f:
                f.write(json.dumps(stats) + "\n")
            for key, value in stats.items():
                if writer is not None and isinstance(value, (int, float)) and key != "epoch":
                    writer.add_scalar(key, value, epoch)
            if args.save_ckpt:
                save(os.path.join(args.output_dir, "checkpoint-last.pth"), model, amp, epoch, best,
                     args)
                if (epoch + 1) % args.save_ckpt_freq == 0 or epoch + 1 == args.epochs:
                    save(os.path.join(args.output_dir, f"checkpoint-{epoch}.pth"), model, amp, epoch,
                         best, args)
                if improved:
                    save(os.path.join(args.output_dir, "checkpoint-best.pth"), model, amp, epoch,
                         best, args)
    if writer is not None:
        writer.close()
    # The official reports the multi-view test of the last epoch's weights (not the best ones).
    results = test(args, model, env, dtype)
    results["best_val_acc1"] = best
    if env.is_main:
        write_json(os.path.join(args.output_dir, "results.json"), results)
        log.info("final test (last epoch, %d videos): top-1 %.2f, top-5 %.2f", results["videos"],
                 results["Final top-1"], results["Final Top-5"])
    return results
