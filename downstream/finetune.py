"""Fine-tuning and linear probing (the linear probe is fine-tuning with everything but the head frozen).

Two recipes (`--recipe`), each as its official runs. videomae (TVTS's ViT): layer-decayed AdamW with per-iteration
warmup and cosine (lr scaled by total batch / 256), RandAugment + random-resized crop + random erasing +
mixup/cutmix with label smoothing. cpd (CPD's 3D ResNet): SGD at the given lr, ReduceLROnPlateau on the validation
top-1, short-side scale jitter + crop + flip on clips of a 30 fps timeline, dropout before the head. Both: one-view
validation after every epoch, and after the last epoch a multi-view test (segments x crops) merged per video.
Writes `log.txt` (one JSON line per epoch), `results.json`, checkpoints (`checkpoint-<epoch>.pth`,
`checkpoint-last.pth`, `checkpoint-best.pth`) and resumes from them.
"""
import glob
import json
import logging
import os
import re

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.lr_scheduler import ReduceLROnPlateau

from model.checkpoint import read_checkpoint
from utils.amp import OptimizerStep, autocast_dtype
from utils.distributed import cleanup
from utils.io import save_torch, write_json
from utils.rng import rng_state, set_rng_state
from utils.schedule import cosine_scheduler

from .common import build_model, dataset, eval_loader, setup, train_loader
from .datasets import cpd_clip_transform, dataset_spec
from .encoder import r3d_args
from .engine import report_failures, run_views, train_one_epoch, validate
from .metrics import merge_views
from .mixup import Mixup, soft_target_cross_entropy
from .optim import build_optimizer, effective_optimizer, param_groups
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


def save(path, model, amp, epoch, best, args, scheduler=None):
    save_torch({"model": model.state_dict(), "optimizer": amp.optimizer.state_dict(), "scaler": amp.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None, "epoch": epoch,
                "best_acc1": best, "rng": rng_state(), "args": json.loads(json.dumps(vars(args)))}, path)


def check_recipe(args):
    """The cpd recipe trains CPD's 3D ResNet, the videomae recipe (layer decay over ViT blocks) the ViT."""
    cpd_tower = r3d_args(args.model) is not None
    if args.recipe == "cpd" and not cpd_tower:
        raise ValueError(f"--recipe cpd trains CPD's 3D ResNet, but --model {args.model} is a ViT (its positions are "
                         "fixed to the training size, and the recipe tests at 256): use --recipe videomae")
    if args.recipe == "videomae" and cpd_tower:
        raise ValueError(f"--model {args.model} is CPD's 3D ResNet: the videomae recipe decays the lr over ViT blocks "
                         "it does not have; use --recipe cpd (the default for it)")


def wrap_for_processes(model, args, env):
    """DDP over the trainable parameters. With the cpd recipe and `--head_sync official`, the head is left out of
    DDP as in the official (each rank trains its own head); with nothing left to synchronise (that head in a
    linear probe) there is no DDP at all."""
    if not env.distributed:
        return model
    ignored = []
    if args.recipe == "cpd" and args.head_sync == "official":
        ignored = ["head." + name for name, _ in model.head.named_parameters()]
        DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(model, ignored)
    if not any(p.requires_grad for name, p in model.named_parameters() if name not in ignored):
        return model
    return DistributedDataParallel(model, device_ids=[env.device.index] if env.device.type == "cuda" else None)


def share_rank0_weights(model):
    """Every rank takes rank 0's weights (the official tested the saved checkpoint, i.e. rank 0's head)."""
    for tensor in model.state_dict().values():
        dist.broadcast(tensor, src=0)


def cpd_optimizer(model, args):
    """The official CPD fine-tuning optimiser: one SGD group over the trainable parameters (weight decay on all of
    them), lr as given, and ReduceLROnPlateau on the validation top-1."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
    return optimizer, ReduceLROnPlateau(optimizer, "max", patience=args.lr_patience, factor=args.lr_factor,
                                        min_lr=args.min_lr)


def train_transform(args):
    if args.recipe == "cpd":
        return cpd_clip_transform(args.input_size, True, tuple(args.jitter_range),
                                  flip=dataset_spec(args.data_set)[1].flip)
    return TrainAugment(input_size=args.input_size, auto_augment=None if args.aa == "none" else args.aa,
                        interpolation=args.train_interpolation, flip=dataset_spec(args.data_set)[1].flip,
                        reprob=args.reprob, remode=args.remode, recount=args.recount)


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
    check_recipe(args)
    env = setup(args)
    try:
        run(args, env)
    finally:
        cleanup()


def evaluate_checkpoint(args, env, dtype):
    """`--eval`: the multi-view test of a fine-tuned checkpoint (default in --output_dir: checkpoint-best.pth, as
    the official VideoMAE-style `--eval`; with the cpd recipe checkpoint-last.pth, as CPD's test of its last
    epoch)."""
    default = "checkpoint-last.pth" if args.recipe == "cpd" else "checkpoint-best.pth"
    path = args.resume or os.path.join(args.output_dir, default)
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
    train_data = dataset(args, "train", train_transform(args))
    nb_classes = train_data.nb_classes
    model, _ = build_model(args, nb_classes)
    frozen_encoder = ()
    if args.protocol == "linear":
        log.info("linear probe: %d trainable parameters (the head)", freeze_all_but_head(model))
        if args.recipe == "cpd" and args.linear_bn == "frozen":
            frozen_encoder = (model.visual_encoder,)
    model.to(env.device)
    ddp = wrap_for_processes(model, args, env)

    total_batch = args.batch_size * args.update_freq * env.world_size
    loader, sampler = train_loader(args, train_data, env)
    steps_per_epoch = len(loader) // args.update_freq
    if args.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, args.max_steps_per_epoch)
    if steps_per_epoch == 0:
        raise ValueError(f"{len(train_data)} training videos make no full batch of {total_batch}: lower --batch_size")
    plateau = lr_values = wd_values = None
    if args.recipe == "cpd":
        optimizer, plateau = cpd_optimizer(model, args)
        lr, min_lr = args.lr, args.min_lr
    else:
        lr, min_lr = args.lr * total_batch / 256, args.min_lr * total_batch / 256
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
    log.info("recipe %s: total batch %d, lr %.3g (min %.3g, %s), %d steps per epoch x %d epochs, optimiser %s",
             args.recipe, total_batch, lr, min_lr, "on validation plateaus" if plateau else "cosine",
             steps_per_epoch, args.epochs, "sgd" if plateau else optimizer_name(args))
    if plateau is not None and args.disable_eval_during_finetuning:
        log.warning("no validation: the plateau schedule never lowers the lr (as the official with --no_val)")

    start_epoch, best = 0, None
    resume = args.resume or (latest_checkpoint(args.output_dir) if args.auto_resume else None)
    if resume:
        ckpt = read_checkpoint(resume)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        amp.load_state_dict(ckpt.get("scaler"))
        if plateau is not None:
            if ckpt.get("scheduler") is None:
                raise ValueError(f"{resume}: no plateau-scheduler state to resume the cpd recipe from")
            plateau.load_state_dict(ckpt["scheduler"])
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
        if val_loader is not None:  # random validation offsets (and CPD's jittered clips) are new every epoch
            val_loader.dataset.set_epoch(epoch)
        stats = train_one_epoch(ddp, loader, amp, criterion, device=env.device, epoch=epoch,
                                start_step=epoch * steps_per_epoch, lr_values=lr_values, wd_values=wd_values,
                                mixup=mixup, update_freq=args.update_freq, dtype=dtype, max_steps=steps_per_epoch,
                                main=env.is_main, eval_modules=frozen_encoder)
        stats["epoch"] = epoch
        if val_loader is not None:
            stats.update(validate(model, val_loader, device=env.device, dtype=dtype, main=env.is_main))
            if plateau is not None and "val_acc1" in stats:
                plateau.step(stats["val_acc1"])
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
                save(os.path.join(args.output_dir, "checkpoint-last.pth"), model, amp, epoch, best, args, plateau)
                if (epoch + 1) % args.save_ckpt_freq == 0 or epoch + 1 == args.epochs:
                    save(os.path.join(args.output_dir, f"checkpoint-{epoch}.pth"), model, amp, epoch, best, args,
                         plateau)
                if improved:
                    save(os.path.join(args.output_dir, "checkpoint-best.pth"), model, amp, epoch, best, args,
                         plateau)
    if writer is not None:
        writer.close()
    # The official reports the multi-view test of the last epoch's weights (not the best ones).
    if env.distributed and args.recipe == "cpd" and args.head_sync == "official":
        share_rank0_weights(model)
    results = test(args, model, env, dtype)
    results["best_val_acc1"] = best
    if env.is_main:
        write_json(os.path.join(args.output_dir, "results.json"), results)
        log.info("final test (last epoch, %d videos): top-1 %.2f, top-5 %.2f", results["videos"],
                 results["Final top-1"], results["Final Top-5"])
    return results
