"""The training config: its keys, defaults and checks, all run before any work starts."""
import inspect
import os

from data_loader.loader import DATASETS, dataset_kwargs
from model.loss import TVTSLoss
from model.tvts import TVTS, check_arch_args
from utils.config import ConfigError, fill_defaults

from utils.distributed import GATHER_MODES
from .optim import OPTIMIZERS

PRECISIONS = ("fp32", "bf16", "fp16")

DEFAULTS = {
    "name": "tvts",
    "seed": 0,
    "arch": {"type": "TVTS", "args": None},
    "tokenizer": {"name": "", "max_length": 50},  # "" = the text model's name
    "data_loader": [],
    "optimizer": {"type": "AdamW", "args": None},
    "lr_scheduler": {"decay": "step", "milestones": [12, 16], "gamma": 0.1, "warmup_steps": 0, "min_lr": 0.0},
    "loss": {"type": "TVTSLoss", "args": None},
    "metrics": ["t2v_metrics", "v2t_metrics"],
    "trainer": {
        "epochs": 20,
        "save_dir": "./results/TVTS",
        "save_period": 1,  # epochs between numbered checkpoints
        "save_every_steps": 0,  # >0: also refresh checkpoint-latest.pth every this many iterations
        "init_val": True,  # validate the untrained model first (official)
        "val_every": 1,  # epochs
        "monitor": "max sort_order_acc",  # model_best.pth; the official monitor was inverted
        "gather": "official",  # contrastive gradient across ranks: "official" (1/world_size) or "exact"
        "precision": "fp32",
        "grad_clip": 0.0,  # 0 = off (official)
        "accum_steps": 1,
        "compile": False,
        "max_steps_per_epoch": 0,  # 0 = a full pass of the longest loader
        "log_every": 10,
        "tensorboard": True,
        "device": "",  # "" = cuda:<local rank> when available, else cpu
        "num_threads": 0,  # CPU threads for torch; 0 = torch's default
    },
}


def _require(condition, message):
    if not condition:
        raise ConfigError(message)


def validate_config(config, source):
    """The config completed with defaults; every unknown key, wrong type, bad choice or missing file is a
    ConfigError naming the key and `source`."""
    cfg = fill_defaults(config, DEFAULTS, source)
    t = cfg["trainer"]
    _require(cfg["arch"]["type"] == "TVTS", f"{source}: arch.type must be 'TVTS'")
    arch = cfg["arch"]["args"]
    _require(isinstance(arch, dict), f"{source}: arch.args must be an object")
    try:
        check_arch_args(**arch)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{source}: {e}") from None
    _check_args(arch, TVTS, f"{source}: arch.args")
    if arch.get("load_checkpoint"):
        _require(os.path.isfile(arch["load_checkpoint"]),
                 f"{source}: arch.args.load_checkpoint file not found: {arch['load_checkpoint']}")
    elif arch.get("video_params", {}).get("mae_checkpoint"):
        mae = arch["video_params"]["mae_checkpoint"]
        _require(os.path.isfile(mae), f"{source}: arch.args.video_params.mae_checkpoint file not found: {mae} "
                                      "(download mae_pretrain_vit_base.pth from the ImageMAE release)")
    _require(cfg["optimizer"]["type"] in OPTIMIZERS,
             f"{source}: optimizer.type {cfg['optimizer']['type']!r} is unknown; known: {sorted(OPTIMIZERS)}")
    _check_args(cfg["optimizer"]["args"], OPTIMIZERS[cfg["optimizer"]["type"]], f"{source}: optimizer.args")
    _require(cfg["loss"]["type"] == "TVTSLoss", f"{source}: loss.type must be 'TVTSLoss'")
    _check_args(cfg["loss"]["args"], TVTSLoss, f"{source}: loss.args")
    _require(cfg["lr_scheduler"]["decay"] in ("step", "cosine"), f"{source}: lr_scheduler.decay must be 'step' or "
                                                                  "'cosine'")
    _require(t["gather"] in GATHER_MODES, f"{source}: trainer.gather must be one of {GATHER_MODES}")
    _require(t["precision"] in PRECISIONS, f"{source}: trainer.precision must be one of {PRECISIONS}")
    _require(t["accum_steps"] >= 1, f"{source}: trainer.accum_steps must be at least 1")
    mode, _, metric = t["monitor"].partition(" ")
    _require(mode in ("min", "max") and metric, f"{source}: trainer.monitor must look like 'max sort_order_acc'")
    _require(isinstance(cfg["data_loader"], list) and cfg["data_loader"],
             f"{source}: data_loader must be a non-empty list of loaders")
    for i, entry in enumerate(cfg["data_loader"]):
        _check_loader(entry, f"{source}: data_loader[{i}]")
    return cfg


def _check_args(args, fn, where):
    _require(args is None or isinstance(args, dict), f"{where} must be an object")
    accepted = set(inspect.signature(fn).parameters) - {"self", "params"}
    unknown = sorted(set(args or {}) - accepted)
    _require(not unknown, f"{where}: unknown key(s) {unknown}; accepted: {sorted(accepted)}")


def _check_loader(entry, where):
    _require(isinstance(entry, dict) and isinstance(entry.get("args"), dict), f"{where} must be {{type, args}}")
    args = entry["args"]
    name = args.get("dataset_name")
    _require(name in DATASETS, f"{where}.args.dataset_name {name!r} is unknown; known: {sorted(DATASETS)}")
    for key in ("batch_size", "data_dir"):
        _require(key in args, f"{where}.args.{key} is required")
    _require(isinstance(args["batch_size"], int) and args["batch_size"] > 0,
             f"{where}.args.batch_size must be a positive integer")
    try:
        dataset_kwargs(args)
    except ValueError as e:
        raise ConfigError(f"{where}: {e}") from None
    _require(os.path.isdir(args["data_dir"]), f"{where}.args.data_dir not found: {args['data_dir']}")
