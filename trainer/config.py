"""The training config: its keys, defaults and checks, all run before any work starts."""
import inspect
import os

from data_loader.loader import DATASETS, dataset_kwargs
from data_loader.tokenizers import TOKENIZERS
from model import ARCHITECTURES, OBJECTIVES
from model.loss import SORT_MODELLINGS
from utils.amp import PRECISIONS
from utils.config import ConfigError, apply_overrides, fill_defaults, load_config
from utils.distributed import GATHER_MODES

from .optim import LR_DECAYS, OPTIMIZERS
from .task import TASKS

DEFAULTS = {
    "name": "tvts",
    "seed": 0,
    "arch": {"type": "TVTS", "args": None},
    # type "" = the architecture's own; name "" = its default (TVTS: the text model's); max_length 0 = the type's
    # default (huggingface 50, clip 77)
    # padding / truncation "" = the type's default (huggingface: "longest" / "keep_last"; CPD: "max_length" / "slice")
    "tokenizer": {"type": "", "name": "", "max_length": 0, "padding": "", "truncation": ""},
    "data_loader": [],
    # param_groups: [{"name", "match" (regex), "lr"}], first match wins; [] = one group (see trainer.optim)
    "optimizer": {"type": "AdamW", "args": None, "param_groups": [], "no_weight_decay": ""},
    # decay "warmup_cosine" takes warmup_epochs; batch_reference N > 0 scales every lr and min_lr by global batch / N
    "lr_scheduler": {"decay": "step", "milestones": [12, 16], "gamma": 0.1, "warmup_steps": 0, "min_lr": 0.0,
                     "warmup_epochs": 0, "batch_reference": 0},
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
        "grad_scaler": True,  # with fp16: scale the loss (off: the official TVTSv2 H/14 recipe)
        "fp32_loss": True,  # compute the loss in fp32 whatever the autocast (off: in the network's output dtype)
        "grad_clip": 0.0,  # 0 = off (official)
        "accum_steps": 1,
        "compile": False,
        "max_steps_per_epoch": 0,  # 0 = a full epoch
        "epoch_loader": -1,  # an epoch is a pass over this loader; -1 = the longest (TVTS), 0 = the first (TVTSv2)
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
    _require(cfg["arch"]["type"] in ARCHITECTURES, f"{source}: arch.type {cfg['arch']['type']!r} is unknown; "
                                                   f"known: {ARCHITECTURES.names()}")
    arch_cls = ARCHITECTURES.get(cfg["arch"]["type"])
    arch = cfg["arch"]["args"]
    _require(isinstance(arch, dict), f"{source}: arch.args must be an object")
    _check_args(arch, arch_cls, f"{source}: arch.args")
    try:
        arch_cls.check_args(**arch)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{source}: {e}") from None
    for key, path, hint in arch_cls.weight_files(arch):
        _require(os.path.isfile(path), f"{source}: {key} file not found: {path}" + (f" ({hint})" if hint else ""))
    tok = cfg["tokenizer"]
    _require(not tok["type"] or tok["type"] in TOKENIZERS,
             f"{source}: tokenizer.type {tok['type']!r} is unknown; known: {TOKENIZERS.names()}")
    _require(not tok["type"] or tok["type"] == arch_cls.tokenizer,
             f"{source}: tokenizer.type {tok['type']!r} does not fit {cfg['arch']['type']}, whose text tower reads "
             f"{arch_cls.tokenizer!r} token ids")
    opt = cfg["optimizer"]
    _require(opt["type"] in OPTIMIZERS, f"{source}: optimizer.type {opt['type']!r} is unknown; known: "
                                        f"{sorted(OPTIMIZERS)}")
    _check_args(opt["args"], OPTIMIZERS[opt["type"]], f"{source}: optimizer.args")
    for i, rule in enumerate(opt["param_groups"]):
        where = f"{source}: optimizer.param_groups[{i}]"
        _require(isinstance(rule, dict) and isinstance(rule.get("match"), str), f"{where} needs a 'match' regex")
        _require(set(rule) <= {"name", "match", "lr", "from_epoch"},
                 f"{where}: keys are name, match, lr, from_epoch; got {sorted(rule)}")
        _require(isinstance(rule.get("from_epoch", 1), int) and rule.get("from_epoch", 1) >= 1,
                 f"{where}.from_epoch must be an epoch number (1-based)")
    _require(cfg["loss"]["type"] in TASKS and cfg["loss"]["type"] in OBJECTIVES,
             f"{source}: loss.type {cfg['loss']['type']!r} is unknown; known: {OBJECTIVES.names()}")
    _check_args(cfg["loss"]["args"], OBJECTIVES.get(cfg["loss"]["type"]), f"{source}: loss.args")
    modelling = (cfg["loss"]["args"] or {}).get("sort_modelling", "kway")
    if cfg["loss"]["type"] == "TVTSLoss" and modelling in SORT_MODELLINGS:
        head = (cfg["arch"]["args"].get("sort_params") or {}).get("head", "sort_transformer")
        heads = SORT_MODELLINGS[modelling][2]
        needed = repr(heads[0]) if len(heads) == 1 else f"one of {list(heads)}"
        _require(head in heads, f"{source}: loss.args.sort_modelling {modelling!r} needs arch.args.sort_params.head "
                                f"{needed}, got {head!r}")
    _require(cfg["lr_scheduler"]["decay"] in LR_DECAYS, f"{source}: lr_scheduler.decay must be one of {LR_DECAYS}")
    _require(not cfg["lr_scheduler"]["warmup_epochs"] or cfg["lr_scheduler"]["decay"] == "warmup_cosine",
             f"{source}: lr_scheduler.warmup_epochs is a setting of decay 'warmup_cosine' (else: warmup_steps)")
    _require(t["gather"] in GATHER_MODES, f"{source}: trainer.gather must be one of {GATHER_MODES}")
    _require(t["precision"] in PRECISIONS, f"{source}: trainer.precision must be one of {PRECISIONS}")
    _require(t["accum_steps"] >= 1, f"{source}: trainer.accum_steps must be at least 1")
    mode, _, metric = t["monitor"].partition(" ")
    _require(mode in ("min", "max") and metric, f"{source}: trainer.monitor must look like 'max sort_order_acc'")
    _require(isinstance(cfg["data_loader"], list) and cfg["data_loader"],
             f"{source}: data_loader must be a non-empty list of loaders")
    for i, entry in enumerate(cfg["data_loader"]):
        _check_loader(entry, f"{source}: data_loader[{i}]", arch_cls, arch)
    _require(t["epoch_loader"] < len(cfg["data_loader"]), f"{source}: trainer.epoch_loader {t['epoch_loader']} "
                                                           f"names no loader (-1 = the longest)")
    return cfg


def _check_args(args, fn, where):
    _require(args is None or isinstance(args, dict), f"{where} must be an object")
    accepted = set(inspect.signature(fn).parameters) - {"self", "params"}
    unknown = sorted(set(args or {}) - accepted)
    _require(not unknown, f"{where}: unknown key(s) {unknown}; accepted: {sorted(accepted)}")


def _check_loader(entry, where, arch_cls, arch_args):
    _require(isinstance(entry, dict) and isinstance(entry.get("args"), dict), f"{where} must be {{type, args}}")
    args = entry["args"]
    name = args.get("dataset_name")
    _require(name in DATASETS, f"{where}.args.dataset_name {name!r} is unknown; known: {DATASETS.names()}")
    _require("batch_size" in args, f"{where}.args.batch_size is required")
    _require("data_dir" in args or "shards" in args, f"{where}.args.data_dir (or shards, a shard manifest) is "
             "required")
    _require(isinstance(args["batch_size"], int) and args["batch_size"] > 0,
             f"{where}.args.batch_size must be a positive integer")
    try:
        masker = dataset_kwargs(args)[1]["masker"]
    except ValueError as e:
        raise ConfigError(f"{where}: {e}") from None
    _require(masker is None or masker.patches_per_frame == arch_cls.patches_per_frame(arch_args),
             f"{where}: its masker draws from {masker and masker.patches_per_frame} patches per frame (input_res / "
             f"patch_size) but the video tower has {arch_cls.patches_per_frame(arch_args)}: set patch_size")
    masking = {**args, **args.get("video_params", {})}.get("masking", "per_slot")
    _require(masking in ("none", arch_cls.masking), f"{where}: masking {masking!r} does not fit "
                                                     f"{arch_cls.__name__}, whose video tower takes "
                                                     f"{arch_cls.masking!r} keep_ind (or 'none')")
    if "shards" in args:
        _require(os.path.isfile(args["shards"]), f"{where}.args.shards: manifest not found: {args['shards']}")
    else:
        _require(os.path.isdir(args["data_dir"]), f"{where}.args.data_dir not found: {args['data_dir']}")


def evaluation_config(config_path, checkpoint, overrides=()):
    """(config, source) to evaluate `checkpoint`: the given config file, or the one our checkpoints store,
    completed with the defaults, overridden, and reduced to the architecture (the checkpoint provides every
    weight: no pretrained-weight file is read)."""
    if config_path:
        config, source = load_config(config_path), config_path
    else:
        from .checkpointing import load_training_checkpoint
        config, source = load_training_checkpoint(checkpoint).get("config"), checkpoint
        if not isinstance(config, dict):
            raise ConfigError(f"{checkpoint} holds no JSON config (an official file?): pass the config")
    config = fill_defaults(config, DEFAULTS, source)
    apply_overrides(config, list(overrides))
    config["arch"]["args"] = ARCHITECTURES.get(config["arch"]["type"]).architecture_only(config["arch"]["args"])
    return config, source
