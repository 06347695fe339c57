"""Optimiser, parameter groups and learning-rate schedule.

The official code uses Hugging Face's `transformers.AdamW` (removed from recent transformers). Its update differs
from `torch.optim.AdamW`: eps is added to the *uncorrected* sqrt(v) and the bias correction goes into the step
size, and weight decay is applied after the Adam step. `HFAdamW` is that rule, written from its definition.
"""
import logging
import math
import re

import torch

from utils.schedule import cosine_scheduler

log = logging.getLogger(__name__)


class HFAdamW(torch.optim.Optimizer):
    """p <- p - lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps), then p <- p - lr * wd * p.

    Defaults are Hugging Face's (eps 1e-6, correct_bias True). State keys match torch's Adam (`step`,
    `exp_avg`, `exp_avg_sq`), as the official checkpoints have them.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0, correct_bias=True):
        if lr < 0 or eps < 0 or not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"invalid AdamW hyper-parameters lr={lr} betas={betas} eps={eps}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      correct_bias=correct_bias))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m.mul_(beta1).add_(p.grad, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                step_size = group["lr"]
                if group["correct_bias"]:
                    step_size *= math.sqrt(1 - beta2 ** state["step"]) / (1 - beta1 ** state["step"])
                p.addcdiv_(m, v.sqrt().add_(group["eps"]), value=-step_size)
                if group["weight_decay"] > 0:
                    p.add_(p, alpha=-group["lr"] * group["weight_decay"])
        return loss


OPTIMIZERS = {"AdamW": HFAdamW, "torch.AdamW": torch.optim.AdamW, "SGD": torch.optim.SGD}


def parameter_groups(model, rules=(), no_weight_decay="", weight_decay=0.0):
    """The trainable parameters of `model` split into groups by name (frozen ones are left out).

    Without `rules` and `no_weight_decay`: one group with every trainable parameter (TVTS v1); `no_weight_decay`
    alone splits that group in two. With `rules` (a list of
    `{"name", "match", "lr"}`): each parameter goes to the first rule whose regex `match` is found in its name
    (`re.search`; "" matches all), a parameter no rule matches is an error, and rules sharing a `name` share a
    group. Each group is split into parameters with weight decay and those matching `no_weight_decay` (regex) with
    0, in the order decay, no decay; groups come in the order their names first appear in `rules`. A rule's `lr`
    (absent: the optimiser's) is the group's base learning rate, which the schedule scales; its `from_epoch` E
    (absent: 1) holds the group's learning rate at 0 before epoch E (CPD's frozen text tower), after which the
    group starts at its `lr` and follows the schedule's later changes only.
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not rules and not no_weight_decay:
        return [{"params": [p for _, p in named]}]
    rules = rules or [{"name": "all", "match": ""}]
    skip = re.compile(no_weight_decay) if no_weight_decay else None
    groups = {}
    for name, param in named:
        rule = next((r for r in rules if re.search(r["match"], name)), None)
        if rule is None:
            raise ValueError(f"parameter {name} matches no optimizer.param_groups rule "
                             f"({[r['match'] for r in rules]}); add a catch-all rule with match ''")
        decay = not (skip and skip.search(name))
        key = (rule.get("name", rule["match"]), decay)
        group = groups.setdefault(key, {"params": [], "names": [], "weight_decay": weight_decay if decay else 0.0})
        if "lr" in rule:
            if group.setdefault("lr", rule["lr"]) != rule["lr"]:
                raise ValueError(f"optimizer.param_groups: rules named {key[0]!r} give different learning rates "
                                 f"({group['lr']} and {rule['lr']})")
        if "from_epoch" in rule:
            if group.setdefault("from_epoch", rule["from_epoch"]) != rule["from_epoch"]:
                raise ValueError(f"optimizer.param_groups: rules named {key[0]!r} give different from_epoch values")
        group["params"].append(param)
        group["names"].append(name)
    order = list(dict.fromkeys(r.get("name", r["match"]) for r in rules))
    return [groups[(n, d)] for n in order for d in (True, False) if (n, d) in groups]


def build_optimizer(model, type="AdamW", args=None, param_groups=(), no_weight_decay=""):
    """`AdamW` is the official Hugging Face rule, `torch.AdamW` PyTorch's; `param_groups` / `no_weight_decay` as in
    `parameter_groups` (weight decay from `args`). Each group remembers its base learning rate as `initial_lr`."""
    if type not in OPTIMIZERS:
        raise ValueError(f"optimizer.type {type!r} is unknown; known: {sorted(OPTIMIZERS)}")
    args = dict(args or {})
    groups = parameter_groups(model, param_groups, no_weight_decay, args.get("weight_decay", 0.0))
    optimizer = OPTIMIZERS[type]([{k: v for k, v in g.items() if k != "names"} for g in groups], **args)
    for group, spec in zip(optimizer.param_groups, groups):
        group.setdefault("initial_lr", group["lr"])
        names = spec.get("names", [])
        log.info("optimizer group: %d tensors (%d values), lr %.3g, weight decay %.3g%s", len(group["params"]),
                 sum(p.numel() for p in group["params"]), group["lr"], group["weight_decay"],
                 f", e.g. {', '.join(names[:3])}" if names else "")
    return optimizer


LR_DECAYS = ("step", "cosine", "warmup_cosine")


class LRSchedule:
    """The learning rate for each optimiser step: `base_lr * warmup * decay`; with several parameter groups each
    group's base (`initial_lr`) is scaled by the same factor, lr(step) / base_lr.

    decay "step" (official): x `gamma` for every milestone epoch already completed (the official applied it at
    the end of each epoch, so epochs 13-16 run at 0.1x with milestones [12, 16]); "cosine": half-cosine from
    base_lr to `min_lr` over the whole run. warmup: linear from 0 over `warmup_steps` steps (official: none).
    "warmup_cosine" (MAE/VideoMAE, SimVTP): `warmup_epochs` epochs (or `warmup_steps` steps) rising linearly from
    0 to base_lr (both ends included), then half-cosine from base_lr towards `min_lr` over the remaining steps
    (`utils.schedule.cosine_scheduler`).
    """

    def __init__(self, base_lr, steps_per_epoch, epochs, decay="step", milestones=(12, 16), gamma=0.1,
                 warmup_steps=0, min_lr=0.0, warmup_epochs=0):
        if decay not in LR_DECAYS:
            raise ValueError(f"lr decay must be one of {LR_DECAYS}, got {decay!r}")
        if warmup_epochs and decay != "warmup_cosine":
            raise ValueError("lr_scheduler.warmup_epochs is a setting of decay 'warmup_cosine' (else: warmup_steps)")
        self.base_lr, self.steps_per_epoch, self.epochs = base_lr, steps_per_epoch, epochs
        self.decay, self.milestones, self.gamma = decay, tuple(milestones), gamma
        self.warmup_steps, self.min_lr = warmup_steps, min_lr
        self._values = None
        if decay == "warmup_cosine":
            self._values = cosine_scheduler(base_lr, min_lr, epochs, max(steps_per_epoch, 1), warmup_epochs,
                                            warmup_steps=warmup_steps or -1)

    def lr(self, step):
        """`step` counts optimiser steps from 0 over the whole run."""
        if self._values is not None:
            return float(self._values[min(step, len(self._values) - 1)])
        epoch = step // max(self.steps_per_epoch, 1)  # completed epochs
        if self.decay == "step":
            lr = self.base_lr * self.gamma ** sum(epoch >= m for m in self.milestones)
        else:
            total = max(self.steps_per_epoch * self.epochs, 1)
            lr = self.min_lr + 0.5 * (self.base_lr - self.min_lr) * (1 + math.cos(math.pi * min(step / total, 1.0)))
        if self.warmup_steps and step < self.warmup_steps:
            lr *= (step + 1) / self.warmup_steps
        return lr

    def factor(self, step):
        return self.lr(step) / self.base_lr if self.base_lr else 0.0

    def apply(self, optimizer, step):
        """Set every group's lr for `step` (a group with `from_epoch` E: 0 before epoch E, then its base lr times
        the schedule's factor relative to the factor at the start of epoch E); returns the base lr's value."""
        lr = self.lr(step)
        factor = self.factor(step)
        epoch = step // max(self.steps_per_epoch, 1) + 1
        for group in optimizer.param_groups:
            base = group.get("initial_lr")
            if base is None:
                group["lr"] = lr
            elif group.get("from_epoch", 1) > epoch:
                group["lr"] = 0.0
            elif group.get("from_epoch", 1) > 1:
                start = self.factor((group["from_epoch"] - 1) * self.steps_per_epoch)
                group["lr"] = base * factor / start if start else 0.0
            else:
                group["lr"] = base * factor
        return lr
