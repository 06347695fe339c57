"""Data-loader benchmark: YT-Temporal samples/s in one worker, against decoding the same frames alone.

For each reader, and for the original and re-encoded copies of a corpus, it builds every sample of the split once
(alignment from the cache, windows, frame indices, decoding, resize/crop/normalise, masking) and records how much
of that time was spent opening and decoding video. The rest (alignment lookup, text assembly, transforms,
masking) is the per-sample overhead the official loader spent three quarters of its time on.

    python -m data_loader.synthetic --out data/synthetic         # if the corpus is not there yet
    python bench/bench_loader.py --data-dir data/synthetic/YTTemporal --meta-dir data/synthetic/meta_data
"""
import argparse
import os
import platform
import sys
import tempfile
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from data_loader.prepare import reencode_dataset  # noqa: E402
from data_loader.yttemporal import YTTemporal  # noqa: E402


class TimedReader:
    """Wraps a reader; accumulates the seconds spent opening videos and decoding frames."""

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
                video.close()
        return _Timed()


def measure(data_dir, meta_dir, reader, samples, input_res):
    ds = YTTemporal(data_dir, meta_dir=meta_dir, reader=reader, input_res=input_res, split="train")
    ds.reader = TimedReader(ds.reader)
    n = min(samples, len(ds))
    ds[0]  # warm-up: imports, first-call set-up
    ds.reader.seconds = 0.0
    start = time.perf_counter()
    for i in range(n):
        ds[i]
    total = time.perf_counter() - start
    decode = ds.reader.seconds
    return {"samples_per_s": n / total, "decode_only_per_s": n / decode, "overhead": 1 - decode / total}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default="data/synthetic/YTTemporal")
    p.add_argument("--meta-dir", default="data/synthetic/meta_data")
    p.add_argument("--samples", type=int, default=100)
    p.add_argument("--input-res", type=int, default=224)
    p.add_argument("--readers", nargs="+", default=["decord", "pyav", "cv2"])
    p.add_argument("--short-side", type=int, default=256, help="re-encode size; 0 skips the re-encoded copy")
    p.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "loader.md"))
    args = p.parse_args()
    torch.set_num_threads(1)  # as in a DataLoader worker

    copies = [("original", args.data_dir)]
    tmp = None
    if args.short_side:
        tmp = tempfile.TemporaryDirectory()
        print(f"re-encoding {args.data_dir} (short side {args.short_side}, a keyframe every second) ...", flush=True)
        done, errors = reencode_dataset(args.data_dir, tmp.name, args.short_side)
        if errors:
            sys.exit("\n".join(errors))
        copies.append((f"re-encoded {args.short_side}", tmp.name))
    header = (f"YT-Temporal loader, one process (torch 1 thread), {args.samples} samples of 16 frames at "
              f"{args.input_res}px, mask 0.75; {platform.machine()}, {os.cpu_count()} CPU cores")
    rows = ["| files | reader | samples/s | decoding alone (samples/s) | share outside decoding |",
            "|---|---|---|---|---|"]
    print(header)
    for label, data_dir in copies:
        for reader in args.readers:
            r = measure(data_dir, args.meta_dir, reader, args.samples, args.input_res)
            rows.append(f"| {label} | {reader} | {r['samples_per_s']:.1f} | {r['decode_only_per_s']:.1f} | "
                        f"{100 * r['overhead']:.0f}% |")
            print(rows[-1], flush=True)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(header + "\n\n" + "\n".join(rows) + "\n")
    print(f"table written to {args.out}")
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
