"""Seed-averaged figures of the CPU demo for docs/benchmarks.md: TVTS, the NCE-only baseline and an untrained
encoder on both downstream protocols, with the pretraining's sort accuracy beside them.

    python bench/bench_demo.py --seeds 0 1 2 --out results/bench_demo [train.py overrides ...]

Runs `SEED=S bash scripts/demo.sh --ablation trainer.save_dir=<out>/seed<S> ...` for every seed not done yet (the
corpus is made once, by the first run; the seed changes the initialisations, the sampling and the probe), then
prints each figure as mean ± standard deviation over the seeds, and every seed's value.
"""
import argparse
import glob
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from downstream.compare import collect  # noqa: E402
from utils.hardware import describe_cpu  # noqa: E402

ENCODERS = (("TVTS", "demo-cpu"), ("NCE only", "demo-cpu-nce-only"), ("untrained", None))
FIGURES = ("sort accuracy", "zero-shot R@1", "zero-shot R@5", "linear-probe top-1")


def latest_run(save_dir, name):
    runs = sorted(glob.glob(os.path.join(save_dir, name, "*", "metrics.jsonl")))
    return os.path.dirname(runs[-1]) if runs else None


def seed_results(save_dir):
    """{encoder: {figure: value}} of one finished seed, or None if it has not finished."""
    tvts = latest_run(save_dir, "demo-cpu")
    if tvts is None or not os.path.isfile(os.path.join(tvts, "downstream", "linear_untrained", "results.json")):
        return None
    found = {}
    for name, run_name in ENCODERS:
        run = latest_run(save_dir, run_name) if run_name else "-"
        found[name] = collect(name, run, os.path.join(tvts, "downstream"), "zero_{encoder}", "linear_{encoder}")
    return found


def summary(per_seed):
    """Markdown: one row per encoder, each figure as mean ± sd, then the values seed by seed."""
    seeds = sorted(per_seed)
    lines = ["| encoder | " + " | ".join(f"{f} (%)" for f in FIGURES) + " |", "|---|" + "---|" * len(FIGURES)]
    for name, _ in ENCODERS:
        cells = []
        for figure in FIGURES:
            values = [per_seed[s][name].get(figure) for s in seeds]
            if any(v is None for v in values):
                cells.append("-")
                continue
            each = "/".join(f"{v:.1f}" for v in values)
            cells.append(f"{np.mean(values):.1f} ± {np.std(values, ddof=1) if len(values) > 1 else 0:.1f} ({each})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", default="results/bench_demo")
    args, overrides = p.parse_known_args(argv)
    per_seed = {}
    for seed in args.seeds:
        save_dir = os.path.join(args.out, f"seed{seed}")
        if seed_results(save_dir) is None:
            print(f"== seed {seed}: bash scripts/demo.sh --ablation", flush=True)
            subprocess.run(["bash", os.path.join(ROOT, "scripts", "demo.sh"), "--ablation",
                            f"trainer.save_dir={save_dir}", *overrides],
                           env={**os.environ, "SEED": str(seed)}, check=True)
        per_seed[seed] = seed_results(save_dir)
    print(f"\n{describe_cpu()}; seeds {args.seeds}; mean ± sd (each seed's value):\n")
    print(summary(per_seed))


if __name__ == "__main__":
    main()
