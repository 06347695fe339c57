"""The pretraining loop, for every method: DDP, mixed precision, schedule, accumulation, validation, checkpoints
and resume. What is method-specific (the forward and its losses, the cross-rank gather, the validation metrics,
extra checkpointed state) is the task's (`trainer.task`).

One iteration takes one batch from every training loader in config order and makes one optimiser step per
batch (TVTS stage 2 alternates CC3M and WebVid like this, TVTSv2 YT-Temporal and WebVid, as the official
trainers).
"""
import contextlib
import copy
import json
import logging
import os
import time
from collections import Counter

import torch
from torch.nn.parallel import DistributedDataParallel

from data_loader.loader import AlternatingLoader, build_dataloader
from data_loader.tokenizers import model_tokenizer
from model import build_model
from utils.amp import OptimizerStep
from utils.rng import set_rng_state

from .checkpointing import load_training_checkpoint, save_checkpoint
from .evaluation import evaluate, format_results
from .optim import LRSchedule, build_optimizer
from .task import build_task

log = logging.getLogger(__name__)


def build_loaders(cfg, tokenizer, env, split=None):
    return [build_dataloader(entry["args"], tokenizer, rank=env.rank, world_size=env.world_size, split=split,
                             seed=cfg["seed"]) for entry in cfg["data_loader"]]


def make_tokenizer(cfg, model):
    """The config's tokenizer (by default the architecture's own), checked against the model's vocabulary and
    context length."""
    return model_tokenizer(cfg["tokenizer"], cfg["arch"]["args"], model)


def batch_scaled_rates(cfg, world_size):
    """(optimizer, lr_scheduler) config entries, every learning rate and `min_lr` multiplied by global batch /
    `lr_scheduler.batch_reference` when that is > 0 (the MAE/VideoMAE rule SimVTP uses: lr 1.5e-4 per 256 clips);
    the global batch is the first loader's batch x ranks x trainer.accum_steps."""
    opt, schedule = copy.deepcopy(cfg["optimizer"]), dict(cfg["lr_scheduler"])
    reference = schedule.pop("batch_reference")
    if not reference:
        return opt, schedule
    args = opt["args"] = dict(opt["args"] or {})
    if "lr" not in args:
        raise ValueError("lr_scheduler.batch_reference scales optimizer.args.lr: give it")
    batch = cfg["data_loader"][0]["args"]["batch_size"] * world_size * cfg["trainer"]["accum_steps"]
    scale = batch / reference
    args["lr"] *= scale
    schedule["min_lr"] *= scale
    for rule in opt["param_groups"]:
        if "lr" in rule:
            rule["lr"] *= scale
    log.info("learning rates x %g: a global batch of %d clips against the reference %d (lr %.3g, min_lr %.3g)",
             scale, batch, reference, args["lr"], schedule["min_lr"])
    return opt, schedule


class Trainer:
    """Build everything from a validated config (see trainer.config) and run `fit()`.

    `run_dir` receives config.json, checkpoints, metrics.jsonl, train.log and tensorboard events (rank 0 only).
    `resume` is a checkpoint written by this trainer: training continues from its epoch and iteration.
    """

    def __init__(self, cfg, env, run_dir, resume=None):
        self.cfg, self.env, self.run_dir = cfg, env, run_dir
        t = self.t = cfg["trainer"]
        torch.manual_seed(cfg["seed"])  # identical initial weights on every rank
        self.model = build_model(cfg["arch"]).to(env.device)
        self.task = build_task(cfg, env.device)
        self.tokenizer = make_tokenizer(cfg, self.model)
        self.train_loader = AlternatingLoader(build_loaders(cfg, self.tokenizer, env), t["epoch_loader"])
        self.val_loaders = build_loaders(cfg, self.tokenizer, env, split="val")
        self.task.attach(self.model, [loader.dataset for loader in self.train_loader.loaders], self.tokenizer)
        self.dataset_names = [e["args"]["dataset_name"] for e in cfg["data_loader"]]
        opt, schedule = batch_scaled_rates(cfg, env.world_size)
        self.optimizer = build_optimizer(self.model, opt["type"], opt["args"], opt["param_groups"],
                                         opt["no_weight_decay"])
        self.amp = OptimizerStep(self.optimizer, env.device, scale_loss=t["precision"] == "fp16" and t["grad_scaler"],
                                 clip=t["grad_clip"])
        steps_per_epoch = self._steps_per_epoch() * len(self.dataset_names) // t["accum_steps"]
        self.schedule = LRSchedule(self.optimizer.defaults["lr"], steps_per_epoch, t["epochs"], **schedule)

        self.epoch, self.epoch_step, self.step = 1, 0, 0  # next epoch (1-based), its next iteration, optimiser steps
        self.best = None
        if resume:
            self._resume(resume)
        self.net = self.model
        if env.distributed:
            unused = self.task.find_unused_parameters([loader.dataset for loader in self.train_loader.loaders])
            self.net = DistributedDataParallel(self.model, device_ids=[env.device.index] if env.device.type == "cuda"
                                               else None, find_unused_parameters=unused)
        if t["compile"]:
            self.net = torch.compile(self.net)
        self.skipped = Counter()
        self._micro, self._lr = 0, self.schedule.lr(self.step)  # batches since the run (re)started; current lr
        self.writer = None
        if env.is_main and t["tensorboard"]:
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(os.path.join(run_dir, "tensorboard"))

    def _steps_per_epoch(self):
        n = len(self.train_loader)
        return min(n, self.t["max_steps_per_epoch"]) if self.t["max_steps_per_epoch"] else n

    def _resume(self, path):
        ckpt = load_training_checkpoint(path)
        self.model.load_state_dict(ckpt["state_dict"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.amp.load_state_dict(ckpt.get("scaler"))
        self.task.load_state_dict(ckpt.get("task") or {})
        self.epoch, self.epoch_step, self.step = ckpt["epoch"], ckpt["epoch_step"], ckpt["step"]
        if self.epoch_step == 0:  # saved at the end of an epoch: continue with the next one
            self.epoch += 1
        self.best = ckpt.get("monitor_best")
        set_rng_state(ckpt["rng"])
        log.info("resumed from %s: epoch %d, iteration %d, optimiser step %d", path, self.epoch, self.epoch_step,
                 self.step)

    # ---------------------------------------------------------------------------------------------- training
    def fit(self):
        t = self.t
        if t["init_val"] and self.step == 0 and self.epoch_step == 0:
            self.validate(0)
        while self.epoch <= t["epochs"]:
            self.train_epoch(self.epoch)
            finished = self.epoch
            self.epoch, self.epoch_step = self.epoch + 1, 0
            metrics = self.validate(finished) if finished % t["val_every"] == 0 or finished == t["epochs"] else None
            if self.env.is_main:
                self._save_epoch(finished, metrics)
        if self.writer:
            self.writer.close()

    def train_epoch(self, epoch):
        t, env = self.t, self.env
        self.train_loader.set_epoch(epoch)
        self.task.set_epoch(epoch)
        self.model.train()
        n_steps, start = self._steps_per_epoch(), self.epoch_step
        progress = None
        if env.is_main:
            from tqdm import tqdm
            progress = tqdm(total=n_steps, initial=start, desc=f"epoch {epoch}/{t['epochs']}", unit="it",
                            dynamic_ncols=True)
        sums, n_logged, wait, tic = Counter(), 0, 0.0, time.perf_counter()
        last = tic
        for it, (i, batch) in enumerate(self.train_loader.iterate(start, n_steps), start=0):
            iteration = start + it // len(self.dataset_names)
            now = time.perf_counter()
            wait += now - last
            self.skipped.update(r["reason"] for r in batch["skipped"])
            if "video" not in batch:
                raise RuntimeError(f"a training batch of {self.dataset_names[i]} came back empty")
            micro = self.step_micro(batch)
            for k, v in micro.items():
                sums[f"{self.dataset_names[i]}/{k}"] += v
            n_logged += 1
            last = time.perf_counter()
            if i == len(self.dataset_names) - 1:  # one iteration done: every loader had its step
                self.epoch_step = iteration + 1
                if progress is not None:
                    progress.update(1)
                if self.epoch_step % t["log_every"] == 0 or self.epoch_step == n_steps:
                    self._log_train(sums, n_logged, wait, last - tic, progress, batch["video"].shape[0])
                    sums, n_logged, wait, tic = Counter(), 0, 0.0, time.perf_counter()
                    last = tic
                if t["save_every_steps"] and self.epoch_step % t["save_every_steps"] == 0 and env.is_main:
                    self._save("checkpoint-latest.pth", epoch)
        if progress is not None:
            progress.close()

    def step_micro(self, batch):
        """Forward and backward of one batch; an optimiser step every `accum_steps` batches."""
        t = self.t
        accum = t["accum_steps"]
        self._micro += 1
        boundary = self._micro % accum == 0
        sync = boundary or not self.env.distributed
        with (self.net.no_sync() if not sync else contextlib.nullcontext()):
            losses = self.task.training_losses(self.net, batch)
            self.amp.backward(losses["total"] / accum)
        if boundary:
            lr = self.schedule.apply(self.optimizer, self.step)
            self.amp.step(self.model.parameters())
            self.step += 1
            self._lr = lr
        return {k: v.item() for k, v in losses.items()}

    def _log_train(self, sums, n, wait, elapsed, progress, batch_size):
        per_dataset = len(self.dataset_names)
        means = {k: v / max(n // per_dataset, 1) for k, v in sums.items()}
        clips = batch_size * n * self.env.world_size
        stats = {"clips_per_s": clips / max(elapsed, 1e-9), "data_wait": wait / max(elapsed, 1e-9),
                 "lr": self._lr}
        if progress is not None:
            shown = {k.split("/")[-1] if per_dataset == 1 else k: f"{v:.3f}" for k, v in means.items()}
            progress.set_postfix(**shown, **{"clips/s": f"{stats['clips_per_s']:.1f}",
                                            "wait": f"{100 * stats['data_wait']:.0f}%"})
        if self.writer:
            for k, v in {**{f"train/{k}": v for k, v in means.items()}, **{f"speed/{k}": v for k, v in stats.items()},
                         **{f"data/skipped_{k}": v for k, v in self.skipped.items()}}.items():
                self.writer.add_scalar(k, v, self.step)

    # -------------------------------------------------------------------------------------------- validation
    def validate(self, epoch):
        results = evaluate(self.task, self.model, self.val_loaders, self.dataset_names)
        if self.env.is_main:
            self._report_validation(epoch, results)
        return results

    def _report_validation(self, epoch, results):
        for line in format_results(self.task, epoch, results):
            log.info(line)
        if self.writer:
            for name, m in results.items():
                for k, v in m.items():
                    self.writer.add_scalar(f"val_{name}/{k}", v, self.step)
        with open(os.path.join(self.run_dir, "metrics.jsonl"), "a") as f:
            f.write(json.dumps({"epoch": epoch, "step": self.step, "time": time.time(), **{
                f"{name}/{k}": v for name, m in results.items() for k, v in m.items()},
                **{f"train_skipped/{k}": v for k, v in self.skipped.items()}}) + "\n")

    # ------------------------------------------------------------------------------------------- checkpoints
    def _save(self, filename, epoch):
        path = os.path.join(self.run_dir, filename)
        save_checkpoint(path, self.model, self.optimizer, self.amp.state_dict(), epoch, self.step, self.epoch_step,
                        self.cfg, self.best, self.task.state_dict())
        return path

    def _save_epoch(self, epoch, metrics):
        # fit() has reset epoch_step to 0: the file records "epoch finished" as (epoch, 0)
        if epoch % self.t["save_period"] == 0 or epoch == self.t["epochs"]:
            log.info("saved %s", self._save(f"checkpoint-epoch{epoch}.pth", epoch))
        mode, _, key = self.t["monitor"].partition(" ")
        value = None
        if metrics:
            value = next((m[key] for m in metrics.values() if key in m), None)
        if value is not None and (self.best is None or (value > self.best if mode == "max" else value < self.best)):
            self.best = value
            log.info("new best %s = %.4f: saved %s", key, value, self._save("model_best.pth", epoch))
