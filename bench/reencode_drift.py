"""How far the frames of a lower-frame-rate re-encode drift from the ones the official sampler takes from the
original file, for the same draw (docs/faithfulness.md, re-encoding profile).

For each simulated video (random duration, source rate), the official rules (`data_loader.sampling`, fps estimated
as frames / int(duration) as the official loader does) pick 16 frames over K = 4 transcript windows from the
original timeline and, with the same random state, from a re-encode at a lower rate that keeps the source frame
nearest to each of its times (`data_loader.prepare.reencode_video`). Printed per rate: the time difference between
the two frames of a draw (mean, 95th percentile, max, in seconds) and the share of frames that fall in another
transcript window (or gap) than the original's.

    python bench/reencode_drift.py --videos 2000 --rates 4 6 8 10
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from data_loader.sampling import SamplingError, sample_transcript_windows, span_frame_indices  # noqa: E402

SOURCE_RATES = (24.0, 25.0, 30000 / 1001, 30.0)


def frame_times(duration, rate, windows, rng):
    """True times of the frames the official rule picks from a file of `rate` frames a second (nearest-frame
    re-encode: frame n shows at n / rate, n / rate <= the last source time)."""
    n_frames = int(np.floor(duration * rate)) + 1
    fps = n_frames / int(duration)  # the official estimate, biased high
    return span_frame_indices(windows, 16, fps, rng) / rate


def window_of(times, windows):
    """Index of the window each time falls in, or -1 in a gap / outside."""
    inside = (times[:, None] >= windows.starts[None]) & (times[:, None] < windows.ends[None])
    return np.where(inside.any(1), inside.argmax(1), -1)


def measure(rate, videos, seed=0):
    rng = np.random.default_rng(seed)
    drifts, moved, failed = [], 0, 0
    for _ in range(videos):
        source = SOURCE_RATES[rng.integers(len(SOURCE_RATES))]
        duration = float(rng.uniform(30, 600))
        draw = np.random.default_rng(rng.integers(1 << 62))
        windows = sample_transcript_windows(int(duration), draw)
        state = draw.bit_generator.state
        original = frame_times(duration, source, windows, draw)
        draw.bit_generator.state = state  # the same draw on the re-encoded timeline
        try:
            reencoded = frame_times(duration, min(rate, source), windows, draw)
        except SamplingError:
            failed += 1
            continue
        source_frame = np.round(reencoded * source) / source  # the source frame it holds
        drifts.append(np.abs(source_frame - original))
        moved += int((window_of(source_frame, windows) != window_of(original, windows)).sum())
    d = np.concatenate(drifts)
    return {"rate": rate, "mean": d.mean(), "p95": np.percentile(d, 95), "max": d.max(),
            "other_window": 100 * moved / len(d), "failed": failed}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", type=int, default=2000)
    p.add_argument("--rates", type=float, nargs="+", default=[4, 6, 8, 10])
    args = p.parse_args(argv)
    print(f"{args.videos} videos of 30-600 s at {', '.join(f'{r:.2f}' for r in SOURCE_RATES)} fps; 16 frames a draw")
    print("| re-encoded fps | drift mean (s) | p95 (s) | max (s) | frames in another window or gap | draws that fail |")
    print("|---|---|---|---|---|---|")
    for rate in args.rates:
        m = measure(rate, args.videos)
        print(f"| {m['rate']:g} | {m['mean']:.3f} | {m['p95']:.3f} | {m['max']:.3f} | {m['other_window']:.1f}% | "
              f"{m['failed']} |")


if __name__ == "__main__":
    main()
