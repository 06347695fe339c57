"""Evaluate a checkpoint of any method (ours or an official release file) on the validation split of a config:
the task's metrics (for TVTS and TVTSv2, text-video retrieval and transcript-sort accuracy), printed as a table and
written as JSON.

    python test.py -r results/TVTS/yttemporal/<run>/checkpoint-epoch20.pth
    python test.py -r TVTS_yt_pt.pth -c configs/dist-yt-pt.json --out yt_val.json
    python test.py -r TVTSv2_B_16.pth -c configs/tvtsv2-b16.json
"""
import argparse
import json
import logging
import os
import sys

import torch

from model import build_model, load_checkpoint
from model.checkpoint import CheckpointError
from trainer.config import evaluation_config, validate_config
from utils.distributed import cleanup, init_distributed
from trainer.evaluation import evaluate, format_results
from trainer.task import build_task
from trainer.trainer import build_loaders, make_tokenizer
from utils.config import ConfigError


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-r", "--resume", "--checkpoint", dest="checkpoint", required=True, help="checkpoint to evaluate")
    p.add_argument("-c", "--config", help="config (default: the one stored in our checkpoints)")
    p.add_argument("--out", help="JSON file for the metrics (default: <checkpoint>.val.json)")
    p.add_argument("--device")
    p.add_argument("overrides", nargs="*", help="dotted overrides such as data_loader.0.args.batch_size=8")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    try:
        config, source = evaluation_config(args.config, args.checkpoint, args.overrides)
        cfg = validate_config(config, source)
    except CheckpointError as e:
        sys.exit(f"error: {e}")
    except (ConfigError, KeyError, FileNotFoundError, ValueError) as e:
        sys.exit(f"config error: {e}")

    env = init_distributed(args.device or cfg["trainer"]["device"] or None)
    try:
        model = build_model(cfg["arch"])
        try:
            report = load_checkpoint(model, args.checkpoint)
        except CheckpointError as e:
            sys.exit(f"error: {e}")
        model.to(env.device)
        task = build_task(cfg, env.device)
        loaders = build_loaders(cfg, make_tokenizer(cfg, model), env, split="val")
        names = [e["args"]["dataset_name"] for e in cfg["data_loader"]]
        with torch.inference_mode():
            results = evaluate(task, model, loaders, names)
        if "pred_model" in report["absent"]:  # a released file without its sort head: the head is random
            for metrics in results.values():
                for key in ("sort_acc", "sort_order_acc"):
                    metrics.pop(key, None)
            logging.getLogger(__name__).warning("%s carries no sort head: sort accuracy is not reported",
                                                args.checkpoint)
    finally:
        cleanup()
    if env.is_main:
        for line in format_results(task, "-", results):
            print(line)
        keys = task.summary_keys or sorted({k for m in results.values() for k in m})
        print("\n| dataset | " + " | ".join(keys) + " |\n|---|" + "---|" * len(keys))
        for name, m in results.items():
            print(f"| {name} | " + " | ".join(f"{m[k]:.1f}" if k in m else "-" for k in keys) + " |")
        out = args.out or os.path.splitext(args.checkpoint)[0] + ".val.json"
        with open(out, "w") as f:
            json.dump({"checkpoint": args.checkpoint, "load_report": report, "results": results}, f, indent=2)
        print(f"metrics written to {out}")


if __name__ == "__main__":
    main()
