"""What every dataset shares: split-file reading, per-sample seeded generators, and failure handling.

A sample that cannot be built (unreadable video, malformed annotation, a video too short for the sampling rules)
is never replaced by black frames. In training it is replaced by another random sample and the replacement is
recorded in the sample's `skipped` list (name, reason, error), which collate gathers so the trainer can count
and log it. In validation and test it is not replaced: the dataset returns a failure record that collate drops
and reports. With `loading="strict"` the first failure raises.
"""
import os

import numpy as np
import pandas as pd
from torch.utils.data import Dataset

from utils.registry import Registry

from .readers import VideoReadError
from .sampling import FrameRateError, SamplingError
from .transcripts import AnnotationError

DATASETS = Registry("dataset (data_loader dataset_name)")
LOADING_MODES = ("lax", "strict")
SPLITS = ("train", "val", "test")


class SampleError(RuntimeError):
    """A sample could not be built; `reason` is a short category used for counting."""

    def __init__(self, reason, message):
        super().__init__(message)
        self.reason = reason


_REASONS = ((VideoReadError, "unreadable_video"), (AnnotationError, "bad_annotation"),
            (FrameRateError, "no_frame_rate"), (SamplingError, "too_short"), (OSError, "unreadable_file"))
SAMPLE_ERRORS = (SampleError,) + tuple(kind for kind, _ in _REASONS)


def failure_reason(error):
    """A short category for counting failures by kind."""
    if isinstance(error, SampleError):
        return error.reason
    return next(reason for kind, reason in _REASONS if isinstance(error, kind))


def read_split_file(path, sep="\t", columns=None):
    """A header-row table; missing files or columns are errors naming the file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"split file not found: {path}")
    table = pd.read_csv(path, sep=sep)
    for column in columns or ():
        if column not in table.columns:
            raise ValueError(f"split file {path} has no column {column!r} (columns: {list(table.columns)})")
    if not len(table):
        raise ValueError(f"split file {path} lists no samples")
    return table


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def member_field(path):
    """The shard member field of a file: its extension, lower case (`mp4`, `jpg`, ...)."""
    return os.path.splitext(str(path))[1].lstrip(".").lower() or "bin"


def subsample_table(table, fraction, seed):
    """Keep `fraction` of the rows with a seeded draw (the official draw was unseeded, so ranks disagreed)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"subsample must be in (0, 1], got {fraction}")
    return table.sample(frac=fraction, random_state=seed) if fraction < 1 else table


class FailSafeDataset(Dataset):
    """Base class: subclasses implement `_names` (list of sample names) and `_load(index, rng, member=None) ->
    dict` (`member`: the same sample read from a WebDataset shard instead of the files, see `data_loader.shards`).

    Randomness comes from a generator seeded with (seed, epoch, index, attempt), so a sample is reproducible and
    independent of worker count and order; call `set_epoch` each epoch (the sampler's epoch) for new draws. A
    `masker` (see `data_loader.masking`) adds `keep_ind` to each loaded sample, drawn last from the same
    generator.
    """

    max_attempts = 20
    shards = None  # a shard manifest to stream instead of the files (see `use_source`)
    member_fields = ()  # the member fields `_load` reads from a shard member

    def __init__(self, split, loading="lax", seed=0, masker=None):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if loading not in LOADING_MODES:
            raise ValueError(f"loading must be one of {LOADING_MODES}, got {loading!r}")
        self.split, self.loading, self.seed, self.epoch = split, loading, seed, 0
        self.train = split == "train"
        self.masker = masker

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return len(self._names)

    def rng(self, index, attempt=0):
        return np.random.default_rng([self.seed, self.epoch, index, attempt])

    def use_source(self, data_dir, shards):
        """Files under `data_dir` or the shards of a manifest: one of the two is needed."""
        if shards is None and data_dir is None:
            raise ValueError(f"{type(self).__name__} needs data_dir (the official layout) or shards (a shard "
                             "manifest)")
        self.shards = shards

    def member_files(self, index):
        """The shard member fields of sample `index` (their bytes), for `python -m data_loader.prepare shards`."""
        raise NotImplementedError(f"{type(self).__name__} cannot be packed into shards")

    def load_member(self, member, rng):
        """One attempt at the sample of a shard member (a dict from `data_loader.shards`: `name`, `index`, the
        file contents), masker included; a failure raises as `_load` does."""
        return self._attempt(member["index"], rng, member)

    def _attempt(self, index, rng, member=None):
        sample = self._load(index, rng) if member is None else self._load(index, rng, member)
        if self.masker is not None:
            sample["keep_ind"] = self.masker(len(sample["video"]), rng)
        return sample

    def __getitem__(self, index):
        skipped = []
        for attempt in range(self.max_attempts):
            rng = self.rng(index, attempt)
            try:
                sample = self._attempt(index, rng)
            except SAMPLE_ERRORS as e:
                record = {"name": self._names[index], "reason": failure_reason(e), "error": str(e)}
                if self.loading == "strict":
                    raise SampleError(record["reason"], f"sample {index} ({record['name']}): {e}") from e
                if not self.train:
                    return {"failed": record}
                skipped.append(record)
                index = int(rng.integers(len(self)))
                continue
            sample["skipped"] = skipped
            return sample
        reasons = "; ".join(f"{r['name']}: {r['error']}" for r in skipped[-3:])
        raise RuntimeError(f"{self.max_attempts} samples in a row failed to load; last ones: {reasons}")
