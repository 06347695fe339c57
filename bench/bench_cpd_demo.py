"""CPD on the synthetic corpus, for docs/benchmarks.md: validation text-video retrieval of `configs/cpd-demo-cpu.json`
and of variants of it, over seeds, with the training-time NCE accuracy and the spread of the embeddings (how far
they are from collapsing to one point).

    python bench/bench_cpd_demo.py --out results/bench_cpd --seeds 0 1 2
    python bench/bench_cpd_demo.py --out results/bench_cpd --seeds 0 --variant sgd --variant k256

Each (variant, seed) is one `train.py` run under `<out>/<variant>/seed<S>`, skipped when it has finished; the table
reads their metrics.jsonl and last checkpoints. Variants are named override lists (VARIANTS); "shipped" is the
config as it is. The corpus is `data/synthetic` (made by `bash scripts/demo.sh` or `python -m data_loader.synthetic`).
"""
import argparse
import glob
import json
import os
import subprocess
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from utils.hardware import describe_cpu  # noqa: E402

CONFIG = os.path.join(ROOT, "configs", "cpd-demo-cpu.json")
VARIANTS = {
    "shipped": [],
    # the official optimiser (SGD 0.1, momentum 0.9, wd 1e-4; text group 0.01)
    "sgd": ['optimizer.type="SGD"', 'optimizer.args={"lr": 0.1, "momentum": 0.9, "weight_decay": 0.0001}',
            "optimizer.param_groups.0.lr=0.01"],
    "k16": ["loss.args.num_negatives=16"],
    "k256": ["loss.args.num_negatives=256"],
    "clip": ['data_loader.0.args.video_params.frame_sampling="clip"'],
}
FIGURES = ("t2v_R1", "t2v_R10", "t2v_MedR", "v2t_R1", "v2t_R10")


def run_dir(out, variant, seed):
    runs = sorted(glob.glob(os.path.join(out, variant, f"seed{seed}", "*", "*", "metrics.jsonl")))
    return os.path.dirname(runs[-1]) if runs else None


def finished(out, variant, seed, epochs):
    run = run_dir(out, variant, seed)
    return run is not None and os.path.isfile(os.path.join(run, f"checkpoint-epoch{epochs}.pth"))


def embedding_spread(run, epochs):
    """Mean over dimensions of the std across instances of the saved memory banks (unit rows; 1/sqrt(dim) when
    spread evenly, near 0 when collapsed)."""
    ckpt = torch.load(os.path.join(run, f"checkpoint-epoch{epochs}.pth"), map_location="cpu", weights_only=False)
    memory = ckpt["task"]["memory"]
    return {k: float(memory[k].std(0).mean()) for k in ("vis_memory", "text_memory")}


def table(out, variants, seeds, epochs):
    lines = ["| variant | " + " | ".join(FIGURES) + " | bank spread video / text | seeds |",
             "|---|" + "---|" * (len(FIGURES) + 2)]
    for variant in variants:
        done = [s for s in seeds if finished(out, variant, s, epochs)]
        if not done:
            continue
        finals, spreads = [], []
        for s in done:
            run = run_dir(out, variant, s)
            with open(os.path.join(run, "metrics.jsonl")) as f:
                finals.append(json.loads(f.readlines()[-1]))
            spreads.append(embedding_spread(run, epochs))
        cells = []
        for key in FIGURES:
            values = [m[f"YTTemporal/{key}"] for m in finals]
            spread = f" ± {np.std(values, ddof=1):.1f}" if len(values) > 1 else ""
            cells.append(f"{np.mean(values):.1f}{spread} ({'/'.join(f'{v:.0f}' for v in values)})")
        bank = "{:.3f} / {:.3f}".format(np.mean([s["vis_memory"] for s in spreads]),
                                        np.mean([s["text_memory"] for s in spreads]))
        lines.append(f"| {variant} | " + " | ".join(cells) + f" | {bank} | {'/'.join(map(str, done))} |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--variant", action="append", choices=sorted(VARIANTS), help="default: shipped")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("overrides", nargs="*", help="train.py overrides applied to every run")
    args = p.parse_args()
    variants = args.variant or ["shipped"]
    with open(CONFIG) as f:
        epochs = json.load(f)["trainer"]["epochs"]
    for o in args.overrides:
        if o.startswith("trainer.epochs="):
            epochs = int(o.split("=", 1)[1])
    for variant in variants:
        for seed in args.seeds:
            if finished(args.out, variant, seed, epochs):
                continue
            save = os.path.join(args.out, variant, f"seed{seed}")
            cmd = [sys.executable, os.path.join(ROOT, "train.py"), "-c", CONFIG, f"seed={seed}",
                   f'trainer.save_dir="{save}"', f"trainer.save_period={epochs}", f"trainer.num_threads={args.threads}",
                   "trainer.tensorboard=false", *VARIANTS[variant], *args.overrides]
            print(f"== {variant}, seed {seed}", flush=True)
            os.makedirs(save, exist_ok=True)
            with open(os.path.join(args.out, f"{variant}-seed{seed}.log"), "w") as log:
                subprocess.run(cmd, check=True, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    print(f"CPU: {describe_cpu()}; {epochs} epochs; validation: the corpus's held-out clips")
    print(table(args.out, variants, args.seeds, epochs))


if __name__ == "__main__":
    main()
