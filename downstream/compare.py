"""The demo's closing table: encoders side by side on both downstream protocols, with the pretraining's sort
accuracy beside them, and sentences that say what moved against a baseline and by how much.

    python -m downstream.compare --baseline untrained \\
        "TVTS=RUN_DIR" "NCE only=RUN_DIR2" "untrained=-" --zero zero_{encoder} --linear linear_{encoder}

Each `NAME=RUN_DIR` is an encoder: RUN_DIR is its pretraining run (its last validation gives the sort accuracy)
or `-` for none; its downstream results are read from `<downstream dir>/<--zero>` and `<--linear>` with
`{encoder}` replaced by the name's slug (lower case, non-alphanumerics as `_`).
"""
import argparse
import os
import re

from trainer.report import read_metrics

from .report import read_results

METRICS = (("zero-shot R@1", "zero", "R@1"), ("zero-shot R@5", "zero", "R@5"),
           ("linear-probe top-1", "linear", "Final top-1"))


def slug(name):
    """An encoder name as a folder-name part: lower case, runs of non-alphanumerics as one `_`."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def collect(name, run_dir, downstream_dir, zero, linear):
    """{metric label: value} for one encoder (sort accuracy only for a pretrained one)."""
    found = {}
    if run_dir != "-":
        last = read_metrics(run_dir)[-1]
        found["sort accuracy"] = last.get("YTTemporal/sort_acc")
    results = {kind: read_results(os.path.join(downstream_dir, pattern.format(encoder=slug(name))))
               for kind, pattern in (("zero", zero), ("linear", linear))}
    for label, kind, key in METRICS:
        found[label] = results[kind].get(key)
    return found


def table(rows):
    """Markdown: one row per (name, {metric: value})."""
    labels = ["sort accuracy", *(label for label, _, _ in METRICS)]
    lines = ["| encoder | " + " | ".join(f"{label} (%)" for label in labels) + " |", "|---|" + "---|" * len(labels)]
    for name, found in rows:
        cells = [f"{found[label]:.1f}" if isinstance(found.get(label), (int, float)) else "-" for label in labels]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def sentences(rows, baseline):
    """One sentence per other encoder: how each downstream metric moved from `baseline`."""
    base = dict(rows)[baseline]
    out = []
    for name, found in rows:
        if name == baseline:
            continue
        moves = [f"{label} {found[label] - base[label]:+.1f} points ({base[label]:.1f} -> {found[label]:.1f})"
                 for label, _, _ in METRICS if found.get(label) is not None and base.get(label) is not None]
        out.append(f"{name} vs {baseline}: " + "; ".join(moves) + ".")
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("encoders", nargs="+", help="NAME=RUN_DIR (RUN_DIR '-' for an encoder without pretraining)")
    p.add_argument("--downstream-dir", required=True, help="folder holding every encoder's downstream outputs")
    p.add_argument("--zero", default="zero_{encoder}", help="zero-shot output folder, relative (default: %(default)s)")
    p.add_argument("--linear", default="linear_{encoder}", help="linear-probe output folder (default: %(default)s)")
    p.add_argument("--baseline", help="encoder name the others are compared with (default: the last)")
    args = p.parse_args(argv)
    if any("=" not in e for e in args.encoders):
        p.error("every encoder is NAME=RUN_DIR")
    pairs = [e.split("=", 1) for e in args.encoders]
    rows = [(name, collect(name, run, args.downstream_dir, args.zero, args.linear)) for name, run in pairs]
    baseline = args.baseline or rows[-1][0]
    if baseline not in dict(rows):
        p.error(f"--baseline {baseline!r} is none of the encoders {[n for n, _ in rows]}")
    print(table(rows))
    print()
    for line in sentences(rows, baseline):
        print(line)
    return rows


if __name__ == "__main__":
    main()
