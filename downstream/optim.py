"""Downstream optimiser: layer-wise lr decay groups and the optimiser choice (the schedule: `utils.schedule`).

Follows VideoMAE's fine-tuning recipe as TVTS runs it: 14 lr buckets for a 12-block encoder (embeddings at the
bottom, each block one step up, everything else at the top), no weight decay on 1-D tensors, biases, `pos_embed`
and `cls_token`, and lr / wd written into every group once per iteration.
"""
import torch

OPTIMIZERS = ("adamw", "sgd")
OPTIMIZER_RULES = ("official", "as_given")


def layer_id(name, num_layers):
    """lr bucket of a parameter; `num_layers` is depth + 1.

    0: `cls_token`, `pos_embed`, `patch_embed.*`; i + 1: `blocks.i.*`; `num_layers`: everything else, which (as in
    the official mapping) includes `temporal_embed` along with `norm.*` and `head.*`.
    """
    if name in ("cls_token", "pos_embed") or name.startswith("patch_embed"):
        return 0
    if name.startswith("blocks."):
        return int(name.split(".")[1]) + 1
    return num_layers


def param_groups(model, weight_decay, layer_decay, skip=("pos_embed", "cls_token"), num_layers=None, layer_of=None):
    """Optimiser groups keyed by (bucket, decay or not), in first-seen order; frozen parameters left out.

    Each group holds `params`, `param_names`, `weight_decay` (0 for 1-D tensors, `*.bias` and names in `skip`;
    `temporal_embed` is decayed, as official) and `lr_scale = layer_decay ** (num_layers - bucket)`. The bucket is
    `layer_id(name)` over `model.blocks`, or `layer_of(name)` with `num_layers` for another layout (SimVTP's towers).
    """
    num_layers = num_layers or len(model.blocks) + 1
    layer_of = layer_of or (lambda name: layer_id(name, num_layers))
    groups = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        decay = not (param.ndim == 1 or name.endswith(".bias") or name in skip)
        layer = layer_of(name)
        key = (layer, decay)
        if key not in groups:
            groups[key] = {"params": [], "param_names": [], "weight_decay": weight_decay if decay else 0.0,
                           "lr_scale": layer_decay ** (num_layers - layer)}
        groups[key]["params"].append(param)
        groups[key]["param_names"].append(name)
    if not groups:
        raise ValueError(f"{type(model).__name__} has no trainable parameters to optimise")
    return list(groups.values())


def build_optimizer(groups, *, opt="adamw", lr, betas=(0.9, 0.999), eps=1e-8, momentum=0.9):
    """torch AdamW, or SGD with Nesterov momentum (VideoMAE's `sgd`). Weight decay comes from the groups."""
    if opt == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), eps=eps, weight_decay=0.0)
    if opt == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=True, weight_decay=0.0)
    raise ValueError(f"optimizer {opt!r} is unknown; known: {OPTIMIZERS}")


def set_lr_wd(optimizer, lr, wd):
    """Write one iteration's scheduled values: lr x each group's `lr_scale`; wd only into groups whose weight decay
    is > 0 (so no-decay groups stay at 0)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group["lr_scale"]
        if group["weight_decay"] > 0:
            group["weight_decay"] = wd


def effective_optimizer(opt, rule="official"):
    """The optimiser a run actually builds. The official launches go through DeepSpeed, which builds AdamW from
    its own config and never reads `--opt` (so the linear probe's `--opt sgd` ran AdamW): "official" returns
    "adamw" whatever `opt` says; "as_given" honours `opt`."""
    if opt not in OPTIMIZERS:
        raise ValueError(f"optimizer {opt!r} is unknown; known: {OPTIMIZERS}")
    if rule not in OPTIMIZER_RULES:
        raise ValueError(f"optimizer rule must be one of {OPTIMIZER_RULES}, got {rule!r}")
    return "adamw" if rule == "official" else opt
