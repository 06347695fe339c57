"""WebDataset shards: pack a corpus into tar shards with a manifest, and stream them as a training dataset.

A shard holds one member per sample, its files named `<key>.<field>`: `meta.json` (`name`, and `index`, the
sample's row in the split it was packed from), the video under its extension (`mp4`, ...) or the image (`jpg`,
...), and `annotation.json` + `aligned.json` (YT-Temporal: the annotation and its cached alignment) or `txt` (the
caption). video2dataset's output (`mp4` + `txt` + `json`) reads as it is. The manifest (`manifest.json` beside the
shards) lists each split's shards with their sample counts, and the hours of video.

`ShardStream` streams a manifest's split with the same sample code as the file datasets: a member packed with
`index` i gives exactly the sample the file dataset gives for row i in the same epoch (same seeded generator).
In training, shards go to ranks round-robin after a seeded per-epoch shuffle, and within a rank to its data
workers; each worker shuffles its members through a buffer. Every rank yields floor(samples / world) samples (in
whole batches with `drop_last`), so distributed steps stay in step; a reader whose shards hold fewer samples than
its share starts them over (reshuffled), one with more stops early, so an epoch gives every sample exactly once
when every reader's shards hold exactly its share of the batches: equal shards whose size is a multiple of the
batch size, and a shard count divisible by ranks x workers. With fewer shards per rank than workers every reader
reads all of them and keeps its share of the members. A resume past k batches makes worker i play reader
(i + k) % workers, so the remaining batches come in the uninterrupted order. Evaluation gives
every member exactly once (member j to rank j % world) in shard order. Unreadable members are counted by reason
and replaced by the next member in training, reported in evaluation, as for files. A resume mid-epoch skips the
members already consumed without decoding them: exact when none of them failed.
"""
import json
import logging
import os
import zlib

import numpy as np
from torch.utils.data import IterableDataset, get_worker_info
from tqdm import tqdm

from utils.io import atomic_path

from .base import SAMPLE_ERRORS, SampleError, failure_reason
from .transcripts import AnnotationError, annotation_duration

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"
VIDEO_FIELDS = ("mp4", "webm", "mkv", "avi", "mov")
IMAGE_FIELDS = ("jpg", "jpeg", "png", "webp")


# ---- manifest ----

def read_manifest(path):
    """The manifest dict; each shard's `url` resolved against the manifest's folder unless it is absolute, a URL
    or a `pipe:` command. A missing file or malformed entry is an error naming the file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"shard manifest not found: {path}")
    with open(path) as f:
        manifest = json.load(f)
    base = os.path.dirname(os.path.abspath(path))
    for split, entry in manifest.get("splits", {}).items():
        for shard in entry.get("shards", []):
            if not {"url", "samples"} <= set(shard):
                raise ValueError(f"{path}: split {split!r} has a shard entry without url / samples: {shard}")
            url = shard["url"]
            if not (os.path.isabs(url) or "://" in url or url.startswith("pipe:")):
                shard["url"] = os.path.join(base, url)
    if not manifest.get("splits"):
        raise ValueError(f"{path}: no splits")
    return manifest


def manifest_split(path, split):
    """The entry of `split` ("val" also serves "test") in a manifest: `shards`, `samples`, and `rows` (the
    split's row count when packed, the range of the members' `index`; absent for video2dataset's output)."""
    manifest = read_manifest(path)
    name = "val" if split == "test" and "test" not in manifest["splits"] else split
    if name not in manifest["splits"]:
        raise ValueError(f"{path}: no split {split!r} (splits: {sorted(manifest['splits'])})")
    return manifest["splits"][name]


# ---- packing ----

def pack_split(dataset, out_dir, split, samples_per_shard=1000, progress=True):
    """Write `dataset`'s samples in row order into `<out_dir>/<split>-NNNNNN.tar`, `samples_per_shard` each (the
    last one smaller), and return the split's manifest entry (with the `hours` of video when the members carry
    annotations). Shards already written completely (an earlier, interrupted run) are kept; a shard is written
    under a temporary name and renamed when complete. A sample whose files are missing is left out and reported in
    `dropped`; one whose annotation gives no duration is packed and listed in `no_duration`."""
    import webdataset as wds
    os.makedirs(out_dir, exist_ok=True)
    n = len(dataset)
    shards, dropped, no_duration, seconds = [], [], [], 0.0
    starts = range(0, n, samples_per_shard)
    for number, start in enumerate(tqdm(starts, desc=f"shards {split}", disable=not progress)):
        shard = f"{split}-{number:06d}.tar"
        path = os.path.join(out_dir, shard)
        done = path + ".json"  # per-shard record: its count and drops, written after the shard
        if os.path.isfile(path) and os.path.isfile(done):
            with open(done) as f:
                record = json.load(f)
        else:
            record = {"url": shard, "samples": 0, "seconds": 0.0, "dropped": [], "no_duration": []}
            with atomic_path(path) as temporary:
                with wds.TarWriter(temporary) as writer:
                    for index in range(start, min(start + samples_per_shard, n)):
                        name = dataset._names[index]
                        try:
                            files = dataset.member_files(index)
                        except OSError as e:
                            record["dropped"].append({"name": name, "error": str(e)})
                            continue
                        if "annotation.json" in files:
                            try:
                                record["seconds"] += annotation_duration(files["annotation.json"], name)
                            except AnnotationError as e:  # packed all the same: training counts it as it fails
                                record["no_duration"].append({"name": name, "error": str(e)})
                        meta = json.dumps({"name": name, "index": index}).encode()
                        writer.write({"__key__": f"{index:09d}", "meta.json": meta, **files})
                        record["samples"] += 1
            with atomic_path(done) as temporary:
                with open(temporary, "w") as f:
                    json.dump(record, f)
        shards.append({"url": record["url"], "samples": record["samples"]})
        dropped.extend(record["dropped"])
        no_duration.extend(record["no_duration"])
        seconds += record["seconds"]
    entry = {"shards": shards, "samples": sum(s["samples"] for s in shards), "rows": n, "dropped": dropped}
    if "annotation" in dataset.member_fields:  # hours over the annotations that give a duration; the others listed
        entry["hours"], entry["no_duration"] = seconds / 3600, no_duration
    return entry


def pack(source, dataset_args, out_dir, splits=("train", "val"), samples_per_shard=1000, progress=True):
    """Pack a corpus (`source` yttemporal, webvid or cc3m; `dataset_args` its file dataset's arguments, e.g.
    data_dir and meta_dir) into shards under `out_dir` and write `manifest.json`; returns the manifest."""
    from .cc3m import ConceptualCaptions3M
    from .webvid import WebVid
    from .yttemporal import YTTemporal
    classes = {"yttemporal": YTTemporal, "webvid": WebVid, "cc3m": ConceptualCaptions3M}
    if source not in classes:
        raise ValueError(f"source must be one of {sorted(classes)}, got {source!r}")
    manifest = {"source": source, "samples_per_shard": samples_per_shard, "splits": {}}
    for split in splits:
        dataset = classes[source](split=split, **dataset_args)
        manifest["splits"][split] = pack_split(dataset, out_dir, split, samples_per_shard, progress)
    with atomic_path(os.path.join(out_dir, MANIFEST)) as temporary:
        with open(temporary, "w") as f:
            json.dump(manifest, f, indent=1)
    return manifest


def describe_video2dataset(folder, split="train"):
    """A manifest for video2dataset's output in `folder` (`*.tar` with `<shard>_stats.json` counts): written to
    `folder/manifest.json` and returned."""
    tars = sorted(f for f in os.listdir(folder) if f.endswith(".tar"))
    if not tars:
        raise ValueError(f"no .tar shards in {folder}")
    shards = []
    for tar in tars:
        stats = os.path.join(folder, tar[:-4] + "_stats.json")
        if not os.path.isfile(stats):
            raise ValueError(f"{stats} is missing: video2dataset writes one beside every shard (its sample count)")
        with open(stats) as f:
            shards.append({"url": tar, "samples": int(json.load(f)["successes"])})
    manifest = {"source": "video2dataset", "splits": {split: {"shards": shards,
                                                              "samples": sum(s["samples"] for s in shards)}}}
    with atomic_path(os.path.join(folder, MANIFEST)) as temporary:
        with open(temporary, "w") as f:
            json.dump(manifest, f, indent=1)
    return manifest


# ---- streaming ----

def _text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def decode_member(raw):
    """A webdataset sample dict -> the `member` dict the datasets' `_load` reads (`name`, `index`, `url`, and
    `video` / `image` bytes, `annotation` + `alignment` or `caption`). Without our `meta.json` (video2dataset),
    the name is the key and the index a hash of it; a caption may also come from video2dataset's `json`."""
    key, url = raw["__key__"], raw.get("__url__", "?")
    meta = json.loads(raw["meta.json"]) if "meta.json" in raw else {}
    member = {"name": meta.get("name", key), "url": url,
              "index": int(meta["index"]) if "index" in meta else zlib.crc32(key.encode())}
    for field in VIDEO_FIELDS:
        if field in raw:
            member["video"] = raw[field]
    for field in IMAGE_FIELDS:
        if field in raw:
            member["image"] = raw[field]
    if "annotation.json" in raw:
        member["annotation"] = raw["annotation.json"]
        member["alignment"] = raw.get("aligned.json")
    if "txt" in raw:
        member["caption"] = _text(raw["txt"])
    elif "json" in raw:
        extra = json.loads(raw["json"])
        if "caption" in extra:  # without one the member is incomplete, and counted as such
            member["caption"] = str(extra["caption"])
    return member


class ShardStream(IterableDataset):
    """The samples of `dataset` (a file dataset built with `shards=<manifest>`) streamed from its shards: this
    rank's share, split over the DataLoader's workers. Training: `len()` = this rank's samples per epoch, the same
    on every rank. Evaluation: every member exactly once (member j to rank j % world), no shuffle. `num_instances`
    is the range of the members' indices (CPD's bank slots; None for video2dataset's output). See the module
    docstring for the split, the epoch length and the resume rule."""

    def __init__(self, dataset, rank=0, world_size=1, batch_size=1, shuffle_buffer=1000, drop_last=True):
        self.dataset, self.rank, self.world_size, self.batch_size = dataset, rank, world_size, batch_size
        self.train, self.epoch, self._skip = dataset.train, 0, 0
        self.shuffle_buffer = shuffle_buffer if self.train else 0
        entry = manifest_split(dataset.shards, dataset.split)
        self.shards, self.num_instances = entry["shards"], entry.get("rows")
        total = sum(s["samples"] for s in self.shards)
        if self.train:
            per_rank = total // world_size
            self.samples_per_rank = per_rank // batch_size * batch_size if drop_last else per_rank
        else:
            self.samples_per_rank = len(range(rank, total, world_size))
        if getattr(getattr(dataset, "reader", None), "name", None) == "cv2":
            raise ValueError(f"{dataset.shards}: reader cv2 cannot decode videos held in memory; use decord or pyav")
        if self.samples_per_rank == 0:
            raise ValueError(f"{dataset.shards}: {total} {dataset.split} samples make no batch of {batch_size} "
                             f"on each of {world_size} ranks")

    @property
    def texts_per_sample(self):
        return self.dataset.texts_per_sample

    def set_epoch(self, epoch):
        self.epoch = epoch
        self.dataset.set_epoch(epoch)

    def skip_next(self, n_samples):
        """Leave out the first `n_samples` of this rank's next pass (resume), without decoding them."""
        self._skip = n_samples

    def __len__(self):
        return self.samples_per_rank

    def plan(self, worker, num_workers):
        """(shard urls, member split) of one reader this epoch. Training with at least one shard per reader on
        every rank: the rank's shards (a seeded per-epoch order, dealt round-robin to ranks, then to workers),
        every member kept. Otherwise every shard, and the reader keeps the members of its batches: member p of a
        pass goes to rank p % world, and the rank's members go to its workers a batch at a time (each reader then
        reads all the shards: fine for evaluation sets)."""
        order = np.arange(len(self.shards))
        if self.train:
            order = np.random.default_rng([self.dataset.seed, self.epoch]).permutation(order)
            if len(self.shards) // self.world_size >= num_workers:  # the same answer on every rank
                mine = order[self.rank::self.world_size]
                return [self.shards[i]["url"] for i in mine[worker::num_workers]], None
            if worker == 0:
                log.warning("%s: %d shards for %d ranks x %d workers: every reader reads every shard and keeps "
                            "its share of the members (pack smaller shards to avoid the extra reading)",
                            self.dataset.shards, len(self.shards), self.world_size, num_workers)
        return [self.shards[i]["url"] for i in order], (worker, num_workers)

    def _quota(self, worker, num_workers, skip_batches=0):
        """Samples reader `worker` yields in training (its round-robin share of the rank's batches: the
        DataLoader takes one batch from each worker in turn) and how many of them a resume past `skip_batches`
        batches leaves out."""
        full, last = divmod(self.samples_per_rank, self.batch_size)
        size = [self.batch_size] * full + ([last] if last else [])
        skip_batches = min(skip_batches, len(size))
        return sum(size[worker::num_workers]), sum(size[:skip_batches][worker::num_workers])

    def _members(self, pipeline, split):
        """The members of one pass this reader keeps (all, or its batches' share under the member split)."""
        if split is None:
            yield from pipeline
            return
        worker, num_workers = split
        for position, raw in enumerate(pipeline):
            mine = position // self.world_size  # position among this rank's members
            if position % self.world_size == self.rank and (mine // self.batch_size) % num_workers == worker:
                yield raw

    def _passes(self, urls, split, worker, broken):
        """This reader's passes: one in evaluation, as many as the quota needs in training, each in a new shard
        order (when the shards are the reader's own) and shuffled through the buffer on its own. A tar that
        cannot be read further is recorded in `broken` and the pass goes on with the next shard."""
        import webdataset as wds

        def handler(error):
            if self.dataset.loading == "strict":
                raise error
            broken.append({"name": "a shard", "reason": "unreadable_shard", "error": str(error)})
            return True
        for repeat in range(10**9):
            order = list(urls)
            rng = np.random.default_rng([self.dataset.seed, self.epoch, self.rank, worker, repeat])
            if self.train and split is None:
                order = [order[i] for i in rng.permutation(len(order))]
            pipeline = wds.WebDataset(order, shardshuffle=False, nodesplitter=None, workersplitter=None,
                                      empty_check=False, handler=handler)
            yield self._shuffled(self._members(iter(pipeline), split), rng)
            if not self.train:
                return

    def _shuffled(self, members, rng):
        if not self.shuffle_buffer:
            yield from members
            return
        buffer = []
        for member in members:
            if len(buffer) < self.shuffle_buffer:
                buffer.append(member)
                continue
            i = int(rng.integers(len(buffer)))
            yield buffer[i]
            buffer[i] = member
        while buffer:
            yield buffer.pop(int(rng.integers(len(buffer))))

    def __iter__(self):
        """Read the resume skip now (the DataLoader calls this when its iterator is made; the caller then clears
        it), and stream. After a resume past k batches, worker i plays reader (i + k) % workers, whose batch comes
        next, so the resumed batches arrive in the uninterrupted order."""
        info = get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        skip_batches = self._skip // self.batch_size if self.train else 0
        reader = (worker + skip_batches) % num_workers
        quota, skip = self._quota(reader, num_workers, skip_batches) if self.train else (None, 0)
        return self._stream(reader, num_workers, quota, skip)

    def _stream(self, reader, num_workers, quota, skip):
        urls, split = self.plan(reader, num_workers)
        if quota == 0:
            return
        given, skipped, failures = 0, [], 0
        for members in self._passes(urls, split, reader, skipped):
            empty = True
            for raw in members:
                empty = False
                if quota is not None and given >= quota:
                    break
                if skip:
                    skip -= 1
                    given += 1
                    continue
                sample = self._sample(raw, skipped)
                if sample is None:
                    failures += 1
                    if failures >= self.dataset.max_attempts:
                        reasons = "; ".join(f"{r['name']}: {r['error']}" for r in skipped[-3:])
                        raise RuntimeError(f"{failures} shard members in a row failed to load; last ones: {reasons}")
                    continue
                if "failed" in sample:  # evaluation: the shard errors pending before it become items too
                    yield from ({"failed": record} for record in skipped)
                skipped.clear()  # in place: the shard handler of `_passes` appends to this list
                failures, given = 0, given + 1
                yield sample
            if empty and quota is not None and not skipped:
                raise ValueError(f"this reader's share of {urls} holds no member")
            if quota is None:  # evaluation: what no later item carries is reported as failed items
                yield from ({"failed": record} for record in skipped)
                skipped.clear()
            if quota is None or given >= quota:
                break
        if skipped:  # training: failures after the epoch's last sample, which no sample carries
            log.warning("%d shard member(s) failed after this reader's last sample of the epoch: %s", len(skipped),
                        "; ".join(f"{r['name']}: {r['error']}" for r in skipped[:3]))

    def _sample(self, raw, skipped):
        """The sample of one member, or None when it failed in training (its record then rides on the next
        sample, with those of unreadable shards); evaluation yields `{"failed": record}`, strict loading raises."""
        name = f"{raw.get('__key__')} in {raw.get('__url__')}"
        try:
            try:
                member = decode_member(raw)
            except (ValueError, UnicodeDecodeError) as e:  # meta.json / json / txt that do not parse
                raise SampleError("bad_member", f"{name}: {e}") from e
            missing = [field for field in self.dataset.member_fields if field not in member]
            if missing:
                raise SampleError("incomplete_member", f"{name}: no {missing}")
            sample = self.dataset.load_member(member, self.dataset.rng(member["index"]))
        except SAMPLE_ERRORS as e:
            record = {"name": name, "reason": failure_reason(e), "error": str(e)}
            if self.dataset.loading == "strict":
                raise SampleError(record["reason"], f"shard member {name}: {e}") from e
            if not self.train:
                return {"failed": record}
            skipped.append(record)
            return None
        sample["skipped"] = list(skipped)
        return sample
