"""Seed-averaged validation figures of the CPU demo model trained from the synthetic corpus's files and from a
WebDataset copy of it, for docs/benchmarks.md (the shards must train the model as well as the files do).

    python bench/bench_shard_training.py --seeds 0 1 2 --out results/shard_training [train.py overrides ...]

Packs `data/synthetic` once (`data_loader.prepare shards`, 100 samples a shard), then for every seed not done yet
runs `train.py -c configs/demo-cpu.json seed=S` from the files and from the shards side by side, one torch thread
each, and prints each validation figure of the last epoch as mean ± standard deviation per layout, with every
seed's value. The seed changes the initialisation and the sampling; the shards also change the order of the
samples (shards shuffled, then a shuffle buffer), so the two layouts agree only within seed noise.
"""
import argparse
import glob
import json
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from trainer.report import read_metrics  # noqa: E402
from utils.hardware import describe_cpu  # noqa: E402

FIGURES = (("YTTemporal/sort_acc", "sort accuracy"), ("YTTemporal/sort_order_acc", "whole order"),
           ("YTTemporal/t2v_R1", "t2v R@1"), ("YTTemporal/t2v_R10", "t2v R@10"))
LAYOUTS = ("files", "shards")


def last_validation(save_dir, epochs):
    """The validation of epoch `epochs` of the newest demo run under `save_dir`, or None if it has not got there."""
    runs = sorted(glob.glob(os.path.join(save_dir, "demo-cpu", "*", "metrics.jsonl")))
    rows = read_metrics(os.path.dirname(runs[-1])) if runs else []
    done = [r for r in rows if "YTTemporal/sort_acc" in r and r.get("epoch") == epochs]
    return done[-1] if done else None


def pack(data, out):
    manifest = os.path.join(out, "manifest.json")
    if not os.path.isfile(manifest):
        subprocess.run([sys.executable, "-m", "data_loader.prepare", "shards", "--source", "yttemporal",
                        "--data-dir", os.path.join(data, "YTTemporal"), "--meta-dir", os.path.join(data, "meta_data"),
                        "--out-dir", out, "--samples-per-shard", "100"], cwd=ROOT, check=True)
    return manifest


def layout_config(layout, out, data, manifest):
    """configs/demo-cpu.json reading `data` (files) or its shards, written under `out`."""
    with open(os.path.join(ROOT, "configs", "demo-cpu.json")) as f:
        config = json.load(f)
    config["tokenizer"]["name"] = os.path.join(data, "tokenizer")
    args = config["data_loader"][0]["args"]
    if layout == "shards":
        del args["data_dir"], args["meta_dir"]
        args["shards"] = manifest
    else:
        args["data_dir"], args["meta_dir"] = os.path.join(data, "YTTemporal"), os.path.join(data, "meta_data")
    path = os.path.join(out, f"demo-cpu-{layout}.json")
    with open(path, "w") as f:
        json.dump(config, f, indent=1)
    return path


def train_both(seed, out, data, manifest, epochs, overrides):
    """The files and the shards run of one seed, side by side (a log each under the seed's folder)."""
    running = []
    for layout in LAYOUTS:
        save_dir = os.path.join(out, f"seed{seed}", layout)
        if last_validation(save_dir, epochs) is not None:
            continue
        os.makedirs(save_dir, exist_ok=True)
        log = open(os.path.join(save_dir, "train.log"), "w")
        cmd = [sys.executable, "train.py", "-c", layout_config(layout, out, data, manifest),
               f"trainer.save_dir={save_dir}", f"seed={seed}", "trainer.num_threads=1", *overrides]
        print(f"== seed {seed}, {layout}: {' '.join(cmd[1:])}", flush=True)
        running.append((layout, subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT), log))
    for layout, process, log in running:
        if process.wait():
            raise SystemExit(f"seed {seed}, {layout}: train.py failed; see {log.name}")
        log.close()


def summary(per_seed):
    seeds = sorted(per_seed)
    lines = ["| layout | " + " | ".join(label for _, label in FIGURES) + " |", "|---|" + "---|" * len(FIGURES)]
    for layout in LAYOUTS:
        cells = []
        for key, _ in FIGURES:
            values = [per_seed[s][layout][key] for s in seeds]
            spread = np.std(values, ddof=1) if len(values) > 1 else 0.0
            cells.append(f"{np.mean(values):.1f} ± {spread:.1f} ({'/'.join(f'{v:.1f}' for v in values)})")
        lines.append(f"| {layout} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--data", default=os.path.join(ROOT, "data", "synthetic"),
                   help="a corpus made by data_loader.synthetic and checked by data_loader.prepare yttemporal")
    p.add_argument("--out", default=os.path.join(ROOT, "results", "shard_training"))
    args, overrides = p.parse_known_args(argv)
    if not os.path.isdir(os.path.join(args.data, "YTTemporal")):
        raise SystemExit(f"no corpus in {args.data}: run `bash scripts/demo.sh` once or data_loader.synthetic")
    manifest = pack(args.data, os.path.join(args.out, "shards"))
    with open(os.path.join(ROOT, "configs", "demo-cpu.json")) as f:
        epochs = json.load(f)["trainer"]["epochs"]
    epochs = next((int(o.split("=", 1)[1]) for o in overrides if o.startswith("trainer.epochs=")), epochs)
    per_seed = {}
    for seed in args.seeds:
        train_both(seed, args.out, args.data, manifest, epochs, overrides)
        per_seed[seed] = {layout: last_validation(os.path.join(args.out, f"seed{seed}", layout), epochs)
                          for layout in LAYOUTS}
    print(f"\n{describe_cpu()}; configs/demo-cpu.json; seeds {args.seeds}; last validation, mean ± sd "
          "(each seed's value):\n")
    print(summary(per_seed))


if __name__ == "__main__":
    main()
