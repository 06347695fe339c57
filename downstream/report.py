"""Side-by-side table of downstream runs: `python -m downstream.report [--mean] NAME=OUTPUT_DIR ...` (used by the
demo and by `scripts/cpd_transfer.sh`).

Reads each run's `results.json`: zero-shot runs give R@1/5/10, fine-tuning and linear-probe runs their final
multi-view top-1/top-5. `--mean` adds a row averaging each column over the runs (the 3-split mean the UCF-101 and
HMDB-51 papers report).
"""
import json
import os
import sys

COLUMNS = (("R@1", "R@1"), ("R@5", "R@5"), ("R@10", "R@10"), ("Final top-1", "top-1"), ("Final Top-5", "top-5"))


def read_results(run_dir):
    path = os.path.join(run_dir, "results.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no results.json in {run_dir}: did the run finish?")
    with open(path) as f:
        return json.load(f)


def _cell(value):
    return f"{value:.1f}" if isinstance(value, (int, float)) else "-"


def table(runs, mean=False):
    """Markdown table, one row per (name, results) pair; columns that no run has are left out. `mean` adds a row
    of column means (a column some run lacks has none)."""
    columns = [(key, title) for key, title in COLUMNS if any(key in r for _, r in runs)]
    lines = ["| run | videos | " + " | ".join(title for _, title in columns) + " |",
             "|---|---|" + "---|" * len(columns)]
    for name, results in runs:
        cells = [_cell(results.get(key)) for key, _ in columns]
        lines.append(f"| {name} | {results.get('videos', '-')} | " + " | ".join(cells) + " |")
    if mean:
        cells = []
        for key, _ in columns:
            values = [r.get(key) for _, r in runs]
            ok = all(isinstance(v, (int, float)) for v in values)
            cells.append(_cell(sum(values) / len(values) if ok else None))
        lines.append(f"| mean of {len(runs)} | - | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    mean = "--mean" in argv
    argv = [a for a in argv if a != "--mean"]
    if not argv or any("=" not in a for a in argv):
        raise SystemExit("usage: python -m downstream.report [--mean] NAME=OUTPUT_DIR [NAME=OUTPUT_DIR ...]")
    runs = [(name, read_results(path)) for name, path in (a.split("=", 1) for a in argv)]
    print(table(runs, mean=mean))


if __name__ == "__main__":
    main()
