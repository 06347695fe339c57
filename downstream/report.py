"""Side-by-side table of downstream runs: `python -m downstream.report NAME=OUTPUT_DIR ...` (used by the demo).

Reads each run's `results.json`: zero-shot runs give R@1/5/10, fine-tuning and linear-probe runs their final
multi-view top-1/top-5.
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


def table(runs):
    """Markdown table, one row per (name, results) pair; columns that no run has are left out."""
    columns = [(key, title) for key, title in COLUMNS if any(key in r for _, r in runs)]
    lines = ["| run | videos | " + " | ".join(title for _, title in columns) + " |",
             "|---|---|" + "---|" * len(columns)]
    for name, results in runs:
        cells = [f"{results[key]:.1f}" if isinstance(results.get(key), (int, float)) else "-" for key, _ in columns]
        lines.append(f"| {name} | {results.get('videos', '-')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or any("=" not in a for a in argv):
        raise SystemExit("usage: python -m downstream.report NAME=OUTPUT_DIR [NAME=OUTPUT_DIR ...]")
    runs = [(name, read_results(path)) for name, path in (a.split("=", 1) for a in argv)]
    print(table(runs))


if __name__ == "__main__":
    main()
