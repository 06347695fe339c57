"""Run one of the paper's ablation tables (configs/ablations/tables.json) on any recipe and print it in the paper's
layout, ours beside the paper's numbers.

    python -m trainer.ablations --table table2 --base configs/demo-cpu.json --seeds 0 1 2 \
        --out results/ablations -- data_loader.0.args.data_dir=data/synthetic/YTTemporal ... \
        --evaluate "python -m downstream.run_class_zero --model {config} --finetune {checkpoint} --output_dir {out} ..."

Every row is pretrained with `train.py -c <row> --base <base>` once per seed (`seed` and `name` set per run, the
overrides after `--` applied to all), then, with `--evaluate`, a downstream command is run on each checkpoint
(`{config}`, `{checkpoint}` and `{out}` are filled in) and `--metric` read from the `results.json` it writes. The
table gives, per row, the mean and spread over seeds of the downstream metric and of the last validation's
`--pretrain-metric` (sort accuracy by default; runs one at a time, in this process), and the paper's numbers (fine-tuning top-1 on SSV2 / K400: not the
same protocol unless `--evaluate` runs it). Runs already done in `--out` are reused, so an interrupted table resumes.
"""
import argparse
import json
import os
import shlex
import subprocess
import sys

import numpy as np

from utils.hardware import describe_cpu

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TABLES = os.path.join(ROOT, "configs", "ablations")


def read_tables(path=os.path.join(TABLES, "tables.json")):
    with open(path) as f:
        return json.load(f)


def last_validation(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return json.loads(f.read().strip().splitlines()[-1])


def pretrain(row, base, seed, out, overrides):
    """The run folder of `row` at `seed` under `out`, training it first unless a finished run is there."""
    name = f"{os.path.splitext(row['config'])[0]}-seed{seed}"
    out = os.path.abspath(out)
    runs = os.path.join(out, "runs", name)
    done = [os.path.join(runs, d) for d in sorted(os.listdir(runs))] if os.path.isdir(runs) else []
    done = [d for d in done if os.path.isfile(os.path.join(d, "metrics.jsonl")) and any(
        f.startswith("checkpoint-epoch") for f in os.listdir(d))]
    if done:
        return done[-1]
    argv = ["-c", os.path.join(TABLES, row["config"]), "--base", base, f"seed={seed}", f"name={name}",
            f"trainer.save_dir={os.path.join(out, 'runs')}", *overrides]
    print("$ python train.py", shlex.join(argv), flush=True)
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    import train  # the entry point at the repository root, run in this process
    train.main(argv)
    return [os.path.join(runs, d) for d in sorted(os.listdir(runs))][-1]


def last_checkpoint(run_dir):
    epochs = [f for f in os.listdir(run_dir) if f.startswith("checkpoint-epoch") and f.endswith(".pth")]
    return os.path.join(run_dir, max(epochs, key=lambda f: int(f[len("checkpoint-epoch"):-4])))


def evaluate(template, run_dir, metric):
    out = os.path.join(run_dir, "ablation_eval")
    if not os.path.isfile(os.path.join(out, "results.json")):
        command = template.format(config=shlex.quote(os.path.join(run_dir, "config.json")),
                                  checkpoint=shlex.quote(last_checkpoint(run_dir)), out=shlex.quote(out))
        print("$", command, flush=True)
        subprocess.run(command, shell=True, check=True)
    with open(os.path.join(out, "results.json")) as f:
        return json.load(f)[metric]


def summary(values):
    if not values:
        return "-"
    values = np.asarray(values, dtype=float)
    return f"{values.mean():.1f} ± {values.std():.1f}" if len(values) > 1 else f"{values[0]:.1f}"


def format_table(table, measured, metric_name, pretrain_name, seeds):
    """Markdown: the row name, ours (downstream metric, pretraining metric: mean ± std over seeds), the paper's."""
    paper = " / ".join(table["columns"])
    lines = [f"### {table['title']}", "", f"Measured on {describe_cpu()}.", "",
             f"| row | config | ours: {metric_name} ({len(seeds)} seeds) | ours: {pretrain_name} | paper: {paper} |",
             "|---|---|---|---|---|"]
    for row in table["rows"]:
        down, pre = measured[row["config"]]
        numbers = " / ".join(str(v) for v in row["paper"])
        lines.append(f"| {row['name']} | `{row['config']}` | {summary(down)} | {summary(pre)} | {numbers} |")
    if table.get("paper_note"):
        lines += ["", f"Paper: {table['paper_note']}."]
    return "\n".join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    overrides = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--table", required=True, choices=sorted(read_tables()))
    p.add_argument("--base", required=True, help="the recipe the rows are applied onto, e.g. configs/dist-yt-pt.json")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--out", default="results/ablations")
    p.add_argument("--evaluate", default="", help="downstream command with {config} {checkpoint} {out}")
    p.add_argument("--metric", default="R@1", help="the key of the downstream results.json to report")
    p.add_argument("--pretrain-metric", default="YTTemporal/sort_acc", help="key of the last validation")
    args = p.parse_args(argv)
    table = read_tables()[args.table]
    measured = {}
    for row in table["rows"]:
        if row["config"] in measured:
            continue
        down, pre = [], []
        for seed in args.seeds:
            run = pretrain(row, args.base, seed, args.out, overrides)
            pre.append(last_validation(run)[args.pretrain_metric])
            if args.evaluate:
                down.append(evaluate(args.evaluate, run, args.metric))
        measured[row["config"]] = (down, pre)
    text = format_table(table, measured, args.metric if args.evaluate else "-", args.pretrain_metric, args.seeds)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, f"{args.table}.md"), "w") as f:
        f.write(text + "\n")
    print(text)
    return measured


if __name__ == "__main__":
    main()
