"""DataLoaders from the config's `data_loader` entries, and the per-step alternation of stage 2.

An entry is the official `{"type": "MultiDistTextVideoDataLoader", "args": {...}}`. Its `args` hold the dataset
name, `batch_size` and `num_workers` for the loader, the masker's keys (`masking`, `mask_ratio`, `patch_size`,
`tubelet_size`; see `data_loader.masking`), and everything else for the dataset (`video_params` is flattened into
it, so `num_frames`, `input_res`, `mask_ratio`, `loading` keep their names). `shards` (a manifest from
`python -m data_loader.prepare shards`) streams a WebDataset copy instead of the files, with a `shuffle_buffer`
of members per worker (default 1000; see `data_loader.shards`). Official keys that never did
anything (`shuffle`, `cut`, `text_params`, ...) are accepted and ignored; the official `patches_per_frame`, when
given, must agree with `input_res` / `patch_size`.
"""
import inspect

import torch
from torch.utils.data import DataLoader, DistributedSampler

from . import cc3m, instagram, webvid, yttemporal  # noqa: F401 (they register their datasets)
from .base import DATASETS
from .collate import TextVideoCollator
from .masking import MASKING_KEYS, build_masker
from .shards import ShardStream

IGNORED_OFFICIAL_KEYS = ("shuffle", "cut", "text_params", "metadata_dir", "tsfm_params", "sliding_window_stride")


def dataset_kwargs(args, split=None, seed=0):
    """(dataset class, constructor arguments) of one `data_loader[i].args` dict, the masker included; unknown keys
    and bad masker settings are a ValueError. `split` overrides the configured split (validation)."""
    args = {k: v for k, v in args.items()
            if k not in IGNORED_OFFICIAL_KEYS + ("batch_size", "num_workers", "drop_last_batch", "shuffle_buffer")}
    name = args.pop("dataset_name", None)
    if name not in DATASETS:
        raise ValueError(f"data_loader dataset_name {name!r} is unknown; known: {DATASETS.names()}")
    cls = DATASETS.get(name)
    video_params = args.pop("video_params", {})
    merged = {**args, **video_params}
    masking = {k: merged.pop(k) for k in MASKING_KEYS if k in merged}
    if masking.get("masking") == "none" and "mask_ratio" in masking:
        raise ValueError(f"data_loader args for {name}: mask_ratio {masking['mask_ratio']} has no effect with "
                         "masking 'none'")
    masking.setdefault("mask_ratio", cls.default_mask_ratio)
    patches = merged.pop("patches_per_frame", None)
    masker = build_masker(input_res=merged.get("input_res", 224), **masking)
    if patches is not None and (masker is None or masker.patches_per_frame != patches):
        raise ValueError(f"data_loader args for {name}: patches_per_frame {patches} does not match input_res "
                         f"{merged.get('input_res', 224)} / patch_size {masking.get('patch_size', 16)}")
    kwargs = {**merged, "seed": seed, "masker": masker}
    if split is not None:
        kwargs["split"] = split
    accepted = inspect.signature(cls).parameters
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(f"data_loader args for {name}: unknown key(s) {unknown}; accepted: "
                         f"{sorted(set(accepted) - {'masker'}) + list(MASKING_KEYS)}")
    return cls, kwargs


def build_dataset(args, split=None, seed=0):
    """The dataset of one `data_loader[i].args` dict, with its masker."""
    cls, kwargs = dataset_kwargs(args, split, seed)
    dataset = cls(**kwargs)
    if dataset.masker is not None:
        dataset.masker.check_frames(dataset.num_video_frames)
    return dataset


class ResumableSampler(DistributedSampler):
    """DistributedSampler whose next pass can start part-way, so a run resumed mid-epoch sees exactly the samples
    the interrupted run had not yet seen, without loading the skipped ones."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._skip = 0

    def skip_next(self, n_samples):
        """Leave out the first `n_samples` of the next pass only."""
        self._skip = n_samples

    def __iter__(self):
        indices = list(super().__iter__())[self._skip:]
        self._skip = 0
        return iter(indices)


def build_dataloader(args, tokenizer, rank=0, world_size=1, split=None, seed=0):
    """A DataLoader over this rank's share: shuffled with seed `seed`, drop_last as the official so every rank gets
    the same number of samples, tokenisation (`tokenizer`, see `data_loader.tokenizers`) in the workers'
    collate. `drop_last_batch: true` in the args also drops a training epoch's last, partial batch (CPD's
    official loader: every step a full batch; a BatchNorm head fails on a batch of one)."""
    dataset = build_dataset(args, split=split, seed=seed)
    num_workers = args.get("num_workers", 0)
    drop_last_batch = args.get("drop_last_batch", False)
    if not isinstance(drop_last_batch, bool):
        raise ValueError(f"data_loader args drop_last_batch must be true or false, got {drop_last_batch!r}")
    drop_last_batch = drop_last_batch and dataset.train
    # a private generator: starting an epoch must not consume the global torch RNG that dropout draws from,
    # or a resumed run would see different dropout masks (samples draw from their own seeded generators)
    generator = torch.Generator().manual_seed(seed)
    if dataset.shards is not None:  # a WebDataset copy: streamed, split over ranks and workers
        stream = ShardStream(dataset, rank, world_size, args["batch_size"], args.get("shuffle_buffer", 1000),
                             drop_last=drop_last_batch)
        return DataLoader(stream, batch_size=args["batch_size"], num_workers=num_workers,
                          collate_fn=TextVideoCollator(tokenizer), pin_memory=torch.cuda.is_available(),
                          generator=generator)
    sampler = ResumableSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed,
                               drop_last=True)
    return DataLoader(dataset, batch_size=args["batch_size"], sampler=sampler, num_workers=num_workers,
                      drop_last=drop_last_batch,
                      collate_fn=TextVideoCollator(tokenizer), pin_memory=torch.cuda.is_available(),
                      persistent_workers=False, generator=generator)


def set_epoch(loader, epoch):
    """New shuffles and new random draws (windows, frames, crops, masks) for `epoch`."""
    if isinstance(loader.dataset, ShardStream):
        loader.dataset.set_epoch(epoch)
        return
    loader.sampler.set_epoch(epoch)
    loader.dataset.set_epoch(epoch)


def skip_next(loader, n_samples):
    """The next pass of `loader` leaves out its first `n_samples` (resume), sampler- or shard-based."""
    (loader.dataset if isinstance(loader.dataset, ShardStream) else loader.sampler).skip_next(n_samples)


class AlternatingLoader:
    """The loop over several datasets (TVTS stage 2, TVTSv2): each iteration yields one batch of every loader, in
    config order, as `(loader_index, batch)`. An epoch lasts as many iterations as loader `epoch_loader` has
    batches (-1: the longest loader, TVTS; 0: the first, TVTSv2's YT-Temporal); a loader that runs out earlier
    starts over with the same sampler epoch, as the official trainers do."""

    def __init__(self, loaders, epoch_loader=-1):
        self.loaders = list(loaders)
        if not -1 <= epoch_loader < len(self.loaders):
            raise ValueError(f"epoch_loader must be -1 (the longest) or a loader index below {len(self.loaders)}, "
                             f"got {epoch_loader}")
        self.epoch_loader = epoch_loader

    def set_epoch(self, epoch):
        for loader in self.loaders:
            set_epoch(loader, epoch)

    def __len__(self):
        if self.epoch_loader >= 0:
            return len(self.loaders[self.epoch_loader])
        return max(len(loader) for loader in self.loaders)

    def __iter__(self):
        return self.iterate()

    def iterate(self, start=0, stop=None):
        """Iterations `start` to `stop` (default: the epoch's end) of the epoch, skipping the first ones without
        loading them (resume)."""
        for loader in self.loaders:
            skip_next(loader, (start % len(loader)) * loader.batch_size)
        iterators = [iter(loader) for loader in self.loaders]
        for loader in self.loaders:  # a stream's iterator has read its skip (a sampler clears its own when read)
            if isinstance(loader.dataset, ShardStream):
                skip_next(loader, 0)
        for _ in range(start, min(stop or len(self), len(self))):
            for i, loader in enumerate(self.loaders):
                try:
                    batch = next(iterators[i])
                except StopIteration:
                    iterators[i] = iter(loader)
                    batch = next(iterators[i])
                yield i, batch
