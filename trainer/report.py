"""Summaries of a finished run: how the validation metrics moved from the first validation to the last.

    python -m trainer.report results/demo/demo-cpu/<run>
"""
import json
import os
import sys

SHOWN = (("sort_acc", "sort accuracy per transcript (%)", 25.0), ("sort_order_acc", "whole order correct (%)",
                                                                  100 / 24),
         ("t2v_R1", "text-to-video R@1 (%)", None), ("v2t_R1", "video-to-text R@1 (%)", None),
         ("t2v_MedR", "text-to-video median rank", None))


def read_metrics(run_dir):
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no metrics.jsonl in {run_dir}: did the run validate?")
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def compare(run_dir):
    """A Markdown table: every dataset's metrics at the first and the last validation, with chance levels."""
    lines = read_metrics(run_dir)
    first, last = lines[0], lines[-1]
    datasets = sorted({k.split("/")[0] for k in last if "/" in k and not k.startswith("train_skipped")})
    rows = [f"| metric | epoch {first['epoch']} | epoch {last['epoch']} | chance |", "|---|---|---|---|"]
    for name in datasets:
        clips = last.get(f"{name}/val_clips")
        for key, label, chance in SHOWN:
            full = f"{name}/{key}"
            if full in last:
                if chance is None and key.endswith("R1") and clips:
                    chance = 100.0 / clips
                rows.append(f"| {name} {label} | {first.get(full, float('nan')):.1f} | {last[full]:.1f} | "
                            f"{'-' if chance is None else f'{chance:.1f}'} |")
    return "\n".join(rows)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(compare(sys.argv[1]))
