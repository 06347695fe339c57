"""A few YT-Temporal-layout videos at the size and encoding of real clips, for the loader benchmark.

The synthetic training corpus is 80x64 at 8 fps with a keyframe every second, so decoding it costs almost nothing
and says little about a real worker. Real YT-Temporal clips are about 360p, 30 fps H.264 with B-frames and a
keyframe every few seconds, which makes sparse frame access expensive. This writes videos like that: a panning
textured backdrop, moving shapes and per-frame grain (so the encoder cannot make them trivially small), encoded
with x264 at a fixed bit rate typical of 360p streaming, plus a narrated annotation of about three words a second,
then checks them with `data_loader.prepare` (which caches the alignments and writes the split files).

    python bench/realistic_corpus.py --out data/realistic
"""
import argparse
import json
import os
import sys
import time
from multiprocessing import Pool

import av
import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from data_loader.prepare import prepare_yttemporal  # noqa: E402

WORDS = ("the", "a", "we", "now", "look", "at", "this", "here", "is", "and", "then", "you", "can", "see", "how",
         "it", "moves", "over", "there", "red", "blue", "green", "box", "ball", "light", "water", "slowly", "fast",
         "again", "next", "turn", "left", "right", "up", "down", "into", "out", "of", "frame", "camera")
GRAIN_FRAMES = 16  # a bank of grain images cycled over the frames: real-looking noise at no per-frame cost


def _backdrop(rng, width, height):
    """A textured image twice the frame size: smooth blobs plus fine detail, values kept in 0..220 so that shapes
    and grain can be added without overflow."""
    coarse = cv2.resize(rng.uniform(0, 1, (height // 16, width // 16, 3)).astype(np.float32), (2 * width, 2 * height),
                        interpolation=cv2.INTER_CUBIC)
    fine = rng.uniform(0, 1, (2 * height, 2 * width, 1)).astype(np.float32)
    return np.clip(30 + 150 * coarse + 40 * fine, 0, 220).astype(np.uint8)


def _frames(rng, num_frames, width, height):
    """RGB frames: the backdrop panning along a slow random path, bouncing rectangles, grain."""
    backdrop = _backdrop(rng, width, height)
    grain = rng.integers(0, 24, (GRAIN_FRAMES, height, width, 3), dtype=np.uint8)
    pan_speed = rng.uniform(-1.5, 1.5, size=2)
    shapes = [{"pos": rng.uniform(0, 1, 2) * (width, height), "vel": rng.uniform(-4, 4, 2),
               "size": rng.integers(30, 110, 2), "color": rng.integers(0, 220, 3).astype(np.uint8)}
              for _ in range(int(rng.integers(3, 7)))]
    for f in range(num_frames):
        x0 = int((width / 2 + pan_speed[0] * f + width / 2 * np.sin(f / 200)) % width)
        y0 = int((height / 2 + pan_speed[1] * f + height / 2 * np.cos(f / 230)) % height)
        frame = backdrop[y0:y0 + height, x0:x0 + width].copy()
        for s in shapes:
            s["pos"] += s["vel"]
            for axis, limit in enumerate((width, height)):
                if not 0 <= s["pos"][axis] <= limit:
                    s["vel"][axis] = -s["vel"][axis]
            (cx, cy), (w, h) = s["pos"].astype(int), s["size"]
            frame[max(cy - h // 2, 0):max(cy + h // 2, 0), max(cx - w // 2, 0):max(cx + w // 2, 0)] = s["color"]
        frame += grain[(f * 7 + int(rng.integers(GRAIN_FRAMES))) % GRAIN_FRAMES]  # <= 219 + 23: no overflow
        yield frame


def _annotation(rng, duration):
    """MERLOT-style word-level ASR (about three words a second) and its de-noised sentences."""
    subtitles, sentences, sentence = [], [], []
    t = float(rng.uniform(0.2, 1.0))
    while t < duration - 0.5:
        word = str(rng.choice(WORDS))
        subtitles.append({"word": word, "time": round(t, 3)})
        sentence.append(word)
        if len(sentence) >= rng.integers(5, 12):
            sentences.append(" ".join(sentence).capitalize() + ".")
            sentence = []
        t += float(rng.uniform(0.15, 0.55))
    if sentence:
        sentences.append(" ".join(sentence).capitalize() + ".")
    denoised = [{"cleanasr": " ".join(sentences[i:i + 3])} for i in range(0, len(sentences), 3)]
    return {"info": {"duration": duration}, "subtitles": subtitles, "denoised": denoised}


def write_video(task):
    """Write one video and its annotation; returns (name, bytes, encode seconds)."""
    data_dir, index, seed, seconds, (width, height), fps, keyframe_seconds, bit_rate = task
    rng = np.random.default_rng([seed, index])
    name = f"subset_{index % 2}/data/real{index:03d}.mp4"
    video_path = os.path.join(data_dir, "videos", name)
    ann_path = os.path.join(data_dir, "videos", name.split("/")[0], "annotations", f"real{index:03d}.json")
    os.makedirs(os.path.dirname(video_path), exist_ok=True)
    os.makedirs(os.path.dirname(ann_path), exist_ok=True)
    started, num_frames = time.perf_counter(), int(seconds * fps)
    with av.open(video_path, "w") as container:
        # x264 defaults otherwise (B-frames, CABAC, scene-cut keyframes), as in streamed H.264
        stream = container.add_stream("libx264", rate=fps, options={
            "g": str(int(round(fps * keyframe_seconds))), "preset": "veryfast", "threads": "1"})
        stream.width, stream.height, stream.pix_fmt, stream.bit_rate = width, height, "yuv420p", bit_rate
        for frame in _frames(rng, num_frames, width, height):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    with open(ann_path, "w") as f:
        json.dump(_annotation(rng, num_frames / fps), f)
    return name, os.path.getsize(video_path), time.perf_counter() - started


def write_corpus(out_dir, num_videos=4, seconds=40.0, size=(640, 360), fps=30, keyframe_seconds=4.0,
                 bit_rate=800_000, seed=0, workers=2):
    """Write `num_videos` videos under `<out_dir>/YTTemporal`, check them with `prepare_yttemporal` (all in the
    train split); returns (data_dir, meta_dir, summary line)."""
    data_dir, meta_dir = os.path.join(out_dir, "YTTemporal"), os.path.join(out_dir, "meta_data")
    tasks = [(data_dir, i, seed, seconds, tuple(size), fps, keyframe_seconds, bit_rate) for i in range(num_videos)]
    started = time.perf_counter()
    with Pool(workers) as pool:
        written = pool.map(write_video, tasks)
    elapsed = time.perf_counter() - started
    report = prepare_yttemporal(data_dir, meta_dir, val_fraction=0, workers=workers)
    if report["dropped"]:
        raise RuntimeError(f"data_loader.prepare dropped generated videos: {report['dropped_items']}")
    mbit_s = 8 * sum(b for _, b, _ in written) / (num_videos * seconds) / 1e6
    summary = (f"{num_videos} videos of {seconds:g} s, {size[0]}x{size[1]} H.264 at {fps} fps, x264 veryfast with "
               f"B-frames, a keyframe every {keyframe_seconds:g} s, {mbit_s:.2f} Mbit/s on average; written in "
               f"{elapsed:.0f} s")
    return data_dir, meta_dir, summary


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="data/realistic")
    p.add_argument("--num-videos", type=int, default=4)
    p.add_argument("--seconds", type=float, default=40.0)
    p.add_argument("--size", type=int, nargs=2, default=(640, 360), metavar=("WIDTH", "HEIGHT"))
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--keyframe-seconds", type=float, default=4.0)
    p.add_argument("--bit-rate", type=int, default=800_000)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    *_, summary = write_corpus(args.out, args.num_videos, args.seconds, args.size, args.fps, args.keyframe_seconds,
                               args.bit_rate, workers=args.workers)
    print(summary)


if __name__ == "__main__":
    main()
