"""Train-step benchmark: clips/s of the data pipeline and the model together, as `train.py` runs them.

Builds the real `Trainer` from a config (plus dotted overrides, as on the train.py command line) and times
`--steps` optimiser steps after `--warmup` untimed ones, for each `--workers` count: how long the loop waited for
the next batch (data) and how long the forward, backward and optimiser step took (model). Validation, checkpoints
and tensorboard are off. Prints a Markdown table and writes it to --out.

    python bench/bench_train.py                                  # the demo model on data/synthetic
    python bench/bench_train.py --preset full --steps 3 --warmup 1 --workers 0 2
    python bench/bench_train.py -c configs/dist-yt-pt.json --device cuda --workers 8 12  # real data, one GPU

`--preset full` is the paper-size model (ViT-B/16 at 224 px, 16 frames, mask 0.75; DistilBERT-sized text model
with random weights, so nothing is downloaded) on the synthetic corpus, batch 2 by default.
"""
import argparse
import json
import os
import sys
import tempfile
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import train  # noqa: E402
from utils.distributed import init_distributed  # noqa: E402
from trainer.trainer import Trainer  # noqa: E402
from utils.hardware import describe_cpu  # noqa: E402

FULL = ["arch.args.video_params.img_size=224", "arch.args.video_params.patch_size=16",
        "arch.args.video_params.embed_dim=768", "arch.args.video_params.depth=12",
        "arch.args.video_params.num_heads=12", "arch.args.video_params.temporal_embed_std=0",
        'arch.args.text_params.config={"vocab_size": 30522, "max_position_embeddings": 512}',
        "arch.args.projection_dim=256", "arch.args.sort_params.num_heads=12",
        "data_loader.0.args.video_params.input_res=224", "data_loader.0.args.patch_size=16",
        "data_loader.0.args.batch_size=2", "data_loader.0.args.video_params.decoded_cache_mb=0"]


def measure(args, workers):
    run_dir = tempfile.mkdtemp(prefix="bench_train_")
    overrides = (FULL if args.preset == "full" else []) + [
        f"data_loader.0.args.num_workers={workers}", "trainer.tensorboard=false", "trainer.init_val=false",
        f"trainer.save_dir={run_dir}", f"trainer.num_threads={args.threads}", *args.overrides]
    cli = ["-c", args.config, *overrides] + (["--device", args.device] if args.device else [])
    cfg = train.resolve_config(train.parse_args(cli))
    torch.set_num_threads(args.threads)
    env = init_distributed(cfg["trainer"]["device"] or None)
    trainer = Trainer(cfg, env, run_dir)
    if args.warmup + args.steps > len(trainer.train_loader):
        raise SystemExit(f"--warmup + --steps = {args.warmup + args.steps} exceeds the {len(trainer.train_loader)} "
                         "iterations of one epoch of this corpus")
    trainer.train_loader.set_epoch(1)
    trainer.model.train()
    sync = torch.cuda.synchronize if env.device.type == "cuda" else (lambda: None)
    data_s = model_s = 0.0
    clips = 0
    last = time.perf_counter()
    for i, (_, batch) in enumerate(trainer.train_loader.iterate(0, args.warmup + args.steps)):
        got = time.perf_counter()
        trainer.step_micro(batch)
        sync()
        done = time.perf_counter()
        if i >= args.warmup:
            data_s, model_s, clips = data_s + got - last, model_s + done - got, clips + batch["video"].shape[0]
        last = done
    total = data_s + model_s
    return {"workers": workers, "clips_per_s": clips / total, "s_per_step": total / args.steps,
            "data_share": data_s / total, "model_s_per_step": model_s / args.steps,
            "batch": cfg["data_loader"][0]["args"]["batch_size"],
            "px": cfg["data_loader"][0]["args"]["video_params"]["input_res"]}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-c", "--config", default=os.path.join(ROOT, "configs", "demo-cpu.json"))
    p.add_argument("--preset", choices=["config", "full"], default="config",
                   help="full: paper-size model on the data of a demo-style config (see the module docstring)")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1], help="DataLoader worker counts to compare")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, default=2, help="torch threads of the training process")
    p.add_argument("--device", default=None)
    p.add_argument("--out", default=None, help="Markdown file for the table (default bench/results/train_<preset>.md)")
    p.add_argument("overrides", nargs="*", help="dotted config overrides, as for train.py")
    args = p.parse_args()
    rows = [measure(args, w) for w in args.workers]
    head = (f"{time.strftime('%Y-%m-%d')}, {describe_cpu()}, torch {torch.__version__}, "
            f"{args.config} ({args.preset}), {args.steps} timed steps after {args.warmup}, overrides: "
            f"{' '.join(args.overrides) or 'none'}")
    lines = [head, "", "| workers | batch | px | clips/s | s/step | model s/step | waiting for data |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['workers']} | {r['batch']} | {r['px']} | {r['clips_per_s']:.1f} | {r['s_per_step']:.3f} | "
              f"{r['model_s_per_step']:.3f} | {100 * r['data_share']:.0f}% |" for r in rows]
    table = "\n".join(lines)
    print(table)
    out = args.out or os.path.join(ROOT, "bench", "results", f"train_{args.preset}.md")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        f.write(table + "\n")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
