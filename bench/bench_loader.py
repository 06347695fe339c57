"""Data-loader benchmark: YT-Temporal samples/s in one worker, against decoding the same frames alone.

For each reader, and for the original and re-encoded copies of a corpus, it builds samples of the train split the
way training does (alignment from the cache, windows, frame indices, decoding, resize/crop/normalise, masking),
cycling through the videos epoch after epoch (new draws each epoch), and records how much of that time was spent
opening, decoding and closing video. The rest (alignment lookup, text assembly, transforms, masking) is the per-sample
overhead the official loader spent three quarters of its time on. Every measurement is repeated `--repeats` times
(the machine may be shared): the tables give the median and the range.

`--shards` adds, for each copy, the same samples streamed from a WebDataset copy of it (`data_loader.shards`,
packed into the temporary folder) beside the files.

Two corpora: an existing one (`--data-dir`, e.g. the synthetic corpus: tiny 80x64 files) and, with
`--realistic`, a few generated 640x360 / 30 fps H.264 videos with B-frames and sparse keyframes like real
YT-Temporal clips (bench/realistic_corpus.py; about half a minute to write).

    python -m data_loader.synthetic --out data/synthetic         # if the corpus is not there yet
    python bench/bench_loader.py --data-dir data/synthetic/YTTemporal --meta-dir data/synthetic/meta_data \\
        --realistic
"""
import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.realistic_corpus import write_corpus  # noqa: E402
from data_loader.prepare import REENCODE_PROFILES, REENCODE_SHORT_SIDE, reencode_dataset  # noqa: E402
from data_loader.shards import ShardStream, pack  # noqa: E402
from data_loader.yttemporal import YTTemporal  # noqa: E402
from utils.hardware import describe_cpu  # noqa: E402


class TimedReader:
    """Wraps a reader; accumulates the seconds spent opening, decoding and closing videos."""

    def __init__(self, reader):
        self.reader, self.seconds = reader, 0.0

    def open(self, path):
        start = time.perf_counter()
        video = self.reader.open(path)
        self.seconds += time.perf_counter() - start
        timed = self

        class _Timed:
            num_frames, fps = video.num_frames, video.fps

            def read(self, indices):
                t0 = time.perf_counter()
                try:
                    return video.read(indices)
                finally:
                    timed.seconds += time.perf_counter() - t0

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                t0 = time.perf_counter()
                video.close()
                timed.seconds += time.perf_counter() - t0
        return _Timed()


def measure(data_dir, meta_dir, reader, samples, input_res):
    """Build `samples` samples (video i % len, epoch i // len); returns (total seconds, decoding seconds)."""
    ds = YTTemporal(data_dir, meta_dir=meta_dir, reader=reader, input_res=input_res, split="train")
    ds.reader = TimedReader(ds.reader)
    ds[0]  # warm-up: imports, first-call set-up
    ds.reader.seconds = 0.0
    start = time.perf_counter()
    for i in range(samples):
        ds.set_epoch(1 + i // len(ds))
        ds[i % len(ds)]
    return time.perf_counter() - start, ds.reader.seconds


def measure_workers(data_dir, meta_dir, reader, input_res, workers, batch_size, batches):
    """samples/s of a DataLoader with `workers` worker processes over `batches` batches after one warm-up batch
    (decoding, transforms and masking in the workers; no tokenisation)."""
    ds = YTTemporal(data_dir, meta_dir=meta_dir, reader=reader, input_res=input_res, split="train")
    sampler = torch.utils.data.RandomSampler(ds, replacement=True, num_samples=batch_size * (batches + 1),
                                             generator=torch.Generator().manual_seed(0))
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, sampler=sampler, num_workers=workers,
                                         collate_fn=list)
    it = iter(loader)
    next(it)  # workers started, first batch in
    start = time.perf_counter()
    n = sum(len(batch) for batch in it)
    return n / (time.perf_counter() - start)


def bench_workers(copies, meta_dir, reader, input_res, workers, batch_size, batches):
    rows = [f"| files | reader | workers | samples/s (batches of {batch_size}) |", "|---|---|---|---|"]
    for label, data_dir in copies:
        for n in workers:
            rate = measure_workers(data_dir, meta_dir, reader, input_res, n, batch_size, batches)
            rows.append(f"| {label} | {reader} | {n} | {rate:.1f} |")
            print(rows[-1], flush=True)
    return rows


def _cell(values, fmt):
    """'median (min-max)' of the repeated runs, or the value alone after one run."""
    median = format(statistics.median(values), fmt)
    return median if len(values) == 1 else f"{median} ({format(min(values), fmt)}-{format(max(values), fmt)})"


def bench_copies(copies, meta_dir, readers, samples, input_res, repeats):
    """Markdown rows, one per (copy, reader): medians and ranges over `repeats` runs."""
    rows = ["| files | reader | samples/s | decoding alone (samples/s) | outside decoding (ms/sample) | "
            "share outside decoding |", "|---|---|---|---|---|---|"]
    for label, data_dir in copies:
        for reader in readers:
            runs = [measure(data_dir, meta_dir, reader, samples, input_res) for _ in range(repeats)]
            rate = [samples / total for total, _ in runs]
            decode_rate = [samples / decode for _, decode in runs]
            outside_ms = [1000 * (total - decode) / samples for total, decode in runs]
            share = [100 * (1 - decode / total) for total, decode in runs]
            rows.append(f"| {label} | {reader} | {_cell(rate, '.1f')} | {_cell(decode_rate, '.1f')} | "
                        f"{_cell(outside_ms, '.1f')} | {_cell(share, '.0f')}% |")
            print(rows[-1], flush=True)
    return rows


def measure_shards(manifest, reader, samples, input_res):
    """Seconds to stream `samples` training samples from the shards of `manifest` in one process (after one),
    epoch after epoch (new draws each epoch), as `measure` does from the files."""
    stream = ShardStream(YTTemporal(shards=manifest, reader=reader, input_res=input_res, split="train"),
                         batch_size=1, shuffle_buffer=100)

    def epochs():
        for epoch in range(1, 10**6):
            stream.set_epoch(epoch)
            yield from stream
    it = epochs()
    next(it)
    start = time.perf_counter()
    for _ in range(samples):
        next(it)
    return time.perf_counter() - start


def bench_shards(copies, meta_dir, reader, samples, input_res, repeats, out_dir):
    """Rows: each copy from its files and from a WebDataset copy of it (100 samples a shard), samples/s."""
    rows = ["| files | reader | from files (samples/s) | from shards (samples/s) |", "|---|---|---|---|"]
    for label, data_dir in copies:
        target = os.path.join(out_dir, label.replace(" ", "_").replace(",", ""))
        manifest = pack("yttemporal", {"data_dir": data_dir, "meta_dir": meta_dir}, target, ("train",), 100,
                        progress=False)
        files = [samples / measure(data_dir, meta_dir, reader, samples, input_res)[0] for _ in range(repeats)]
        shards = [samples / measure_shards(os.path.join(target, "manifest.json"), reader, samples, input_res)
                  for _ in range(repeats)]
        rows.append(f"| {label} | {reader} | {_cell(files, '.1f')} | {_cell(shards, '.1f')} |")
        print(rows[-1], f"({manifest['splits']['train']['samples']} videos in shards)", flush=True)
    return rows


def with_reencoded(data_dir, short_side, profiles, out_dir):
    """[(label, dir)] for the original and, when `short_side`, a copy re-encoded with each profile under `out_dir`."""
    copies = [("original", data_dir)]
    for profile in profiles if short_side else ():
        print(f"re-encoding {data_dir} (short side {short_side}, profile {profile}) ...", flush=True)
        target = os.path.join(out_dir, profile)
        _, errors = reencode_dataset(data_dir, target, short_side, profile=profile)
        if errors:
            sys.exit("\n".join(errors))
        copies.append((f"re-encoded {short_side}, {profile}", target))
    return copies


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default="data/synthetic/YTTemporal", help="an existing corpus; '' skips it")
    p.add_argument("--meta-dir", default="data/synthetic/meta_data")
    p.add_argument("--samples", type=int, default=100)
    p.add_argument("--realistic", action="store_true", help="also generate and benchmark 640x360 / 30 fps videos")
    p.add_argument("--realistic-videos", type=int, default=4)
    p.add_argument("--realistic-samples", type=int, default=16)
    p.add_argument("--realistic-seconds", type=float, default=40.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--input-res", type=int, default=224)
    p.add_argument("--readers", nargs="+", default=["decord", "pyav", "cv2"])
    p.add_argument("--short-side", type=int, default=REENCODE_SHORT_SIDE,
                   help="re-encode size; 0 skips the re-encoded copies")
    p.add_argument("--profiles", nargs="+", default=sorted(REENCODE_PROFILES), choices=sorted(REENCODE_PROFILES))
    p.add_argument("--workers", type=int, nargs="*", default=[],
                   help="also measure a DataLoader with each of these worker counts (first reader of --readers)")
    p.add_argument("--batch-size", type=int, default=24, help="for --workers (the official per-GPU batch)")
    p.add_argument("--batches", type=int, default=10, help="for --workers, after one warm-up batch")
    p.add_argument("--shards", action="store_true", help="also stream each copy from WebDataset shards (first "
                   "reader of --readers)")
    p.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "loader.md"))
    args = p.parse_args()
    # the corpus writer and the re-encoder use process pools: forking after decord has run threads in this process
    # can hang them (seen with --shards and both corpora), so their workers start fresh
    multiprocessing.set_start_method("spawn", force=True)
    torch.set_num_threads(1)  # as in a DataLoader worker

    sections = [f"YT-Temporal loader, one process (torch 1 thread), 16 frames at {args.input_res}px, mask 0.75; "
                f"{describe_cpu()}; median (min-max) of {args.repeats} runs"]
    print(sections[0])
    with tempfile.TemporaryDirectory() as tmp:
        if args.data_dir:
            title = f"{args.data_dir}: {args.samples} samples"
            print(title, flush=True)
            copies = with_reencoded(args.data_dir, args.short_side, args.profiles, os.path.join(tmp, "given"))
            rows = bench_copies(copies, args.meta_dir, args.readers, args.samples, args.input_res, args.repeats)
            sections.append(title + "\n\n" + "\n".join(rows))
            if args.shards:
                rows = bench_shards(copies, args.meta_dir, args.readers[0], args.samples, args.input_res,
                                    args.repeats, os.path.join(tmp, "given-shards"))
                sections.append(title + ", files against shards\n\n" + "\n".join(rows))
        if args.realistic:
            data_dir, meta_dir, summary = write_corpus(os.path.join(tmp, "realistic"), args.realistic_videos,
                                                       seconds=args.realistic_seconds,
                                                       workers=max(1, min(8, os.cpu_count() or 1)))
            title = f"realistic corpus ({summary}): {args.realistic_samples} samples"
            print(title, flush=True)
            copies = with_reencoded(data_dir, args.short_side, args.profiles, os.path.join(tmp, "realistic-copies"))
            rows = bench_copies(copies, meta_dir, args.readers, args.realistic_samples, args.input_res,
                                args.repeats)
            sections.append(title + "\n\n" + "\n".join(rows))
            if args.shards:
                rows = bench_shards(copies, meta_dir, args.readers[0], args.realistic_samples, args.input_res,
                                    args.repeats, os.path.join(tmp, "realistic-shards"))
                sections.append(title + ", files against shards\n\n" + "\n".join(rows))
            if args.workers:
                rows = bench_workers(copies, meta_dir, args.readers[0], args.input_res, args.workers,
                                     args.batch_size, args.batches)
                sections.append(f"realistic corpus, DataLoader workers ({os.cpu_count()} CPU cores)\n\n" +
                                "\n".join(rows))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write("\n\n".join(sections) + "\n")
    print(f"tables written to {args.out}")


if __name__ == "__main__":
    main()
