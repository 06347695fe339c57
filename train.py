"""Pretrain TVTS: `python train.py -c configs/dist-yt-pt.json [key.sub=value ...]`, under torchrun for several
processes, or `python train.py -r <run>/checkpoint-latest.pth` to resume."""
import argparse
import json
import logging
import os
import sys
import time

import torch

from trainer.config import DEFAULTS, validate_config
from utils.distributed import cleanup, init_distributed
from trainer.trainer import Trainer
from utils.config import ConfigError, apply_overrides, fill_defaults, load_config


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("-c", "--config", help="JSON config (required unless resuming)")
    p.add_argument("-r", "--resume", help="checkpoint to resume; its config is used unless -c is given")
    p.add_argument("--base", help="apply the -c config onto this one instead of the base it names (e.g. an "
                   "ablation row of configs/ablations/ onto configs/demo-cpu.json)")
    p.add_argument("-lr", "--learning_rate", type=float, help="sets optimizer.args.lr")
    p.add_argument("-bs", "--batch_size", type=int, help="sets every data_loader's batch_size (per process)")
    p.add_argument("-sc", "--schedule", type=int, nargs="+", help="sets lr_scheduler.milestones (epochs)")
    p.add_argument("--device", help="sets trainer.device (e.g. cpu, cuda:0)")
    p.add_argument("overrides", nargs="*", help="dotted overrides such as trainer.epochs=2")
    return p.parse_args(argv)


def resolve_config(args):
    if args.config:
        config, source = load_config(args.config, args.base), args.config
    elif args.resume:
        from trainer.checkpointing import load_training_checkpoint
        config, source = load_training_checkpoint(args.resume)["config"], args.resume
    else:
        raise ConfigError("give a config with -c, or a checkpoint to resume with -r")
    overrides = list(args.overrides)
    if args.learning_rate is not None:
        overrides.append(f"optimizer.args.lr={args.learning_rate}")
    if args.schedule:
        overrides.append(f"lr_scheduler.milestones={json.dumps(args.schedule)}")
    if args.device:
        overrides.append(f"trainer.device={args.device}")
    config = fill_defaults(config, DEFAULTS, source)  # so every known key can be overridden
    apply_overrides(config, overrides)
    if args.batch_size:
        for entry in config.get("data_loader", []):
            entry["args"]["batch_size"] = args.batch_size
    return validate_config(config, source)


def main(argv=None):
    args = parse_args(argv)
    try:
        cfg = resolve_config(args)
    except (ConfigError, KeyError, FileNotFoundError, ValueError) as e:
        sys.exit(f"config error: {e}")
    env = init_distributed(cfg["trainer"]["device"] or None)
    if cfg["trainer"]["num_threads"]:
        torch.set_num_threads(cfg["trainer"]["num_threads"])
    if args.resume:
        run_dir = os.path.dirname(os.path.abspath(args.resume))
    else:
        run_dir = os.path.join(cfg["trainer"]["save_dir"], cfg["name"], time.strftime("%Y%m%d_%H%M%S"))
    handlers = [logging.StreamHandler()]
    if env.is_main:
        os.makedirs(run_dir, exist_ok=True)
        with open(os.path.join(run_dir, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        handlers.append(logging.FileHandler(os.path.join(run_dir, "train.log")))
    logging.basicConfig(level=logging.INFO if env.is_main else logging.WARNING, handlers=handlers,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger(__name__).info("run directory %s, %d process(es) on %s", run_dir, env.world_size, env.device)
    try:
        Trainer(cfg, env, run_dir, resume=args.resume).fit()
    finally:
        cleanup()
    if env.is_main:
        print(f"run directory: {run_dir}")


if __name__ == "__main__":
    main()
