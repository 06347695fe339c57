"""Split files this project draws (the synthetic corpus, `data_loader.prepare`), recorded so that a later
preparation may draw them again while a user's own split files, or any file edited since, are never replaced.
(No torch import: the synthetic generator's workers load this.)"""
import hashlib
import json
import os

DERIVED_SPLITS_RECORD = "derived_splits.json"


def _sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def write_derived_split(meta_dir, dataset, splits):
    """Write `<meta_dir>/<dataset>_<split>.csv` (one column `Name`) for `splits` {split: names} and record their
    hashes in `<meta_dir>/derived_splits.json`: split files this project drew, which `data_loader.prepare` may draw
    again, unlike a user's own (or any file edited since)."""
    os.makedirs(meta_dir, exist_ok=True)
    record_path = os.path.join(meta_dir, DERIVED_SPLITS_RECORD)
    record = {}
    if os.path.isfile(record_path):
        with open(record_path) as f:
            record = json.load(f)
    for split, names in splits.items():
        name = f"{dataset}_{split}.csv"
        with open(os.path.join(meta_dir, name), "w") as f:
            f.write("Name\n" + "".join(n + "\n" for n in names))
        record[name] = _sha256(os.path.join(meta_dir, name))
    with open(record_path, "w") as f:
        json.dump(record, f, indent=1)


def is_derived_split(meta_dir, file_name):
    """Whether `<meta_dir>/<file_name>` is exactly a split file `write_derived_split` wrote."""
    record_path = os.path.join(meta_dir, DERIVED_SPLITS_RECORD)
    if not os.path.isfile(record_path):
        return False
    with open(record_path) as f:
        recorded = json.load(f).get(file_name)
    return recorded is not None and recorded == _sha256(os.path.join(meta_dir, file_name))
