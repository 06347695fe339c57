"""Data preparation: build and check the YT-Temporal split files, cache transcript alignments, re-encode videos.

    # check an official layout (<data-dir>/videos/<subset>/{data,annotations}/) and write the split files
    python -m data_loader.prepare yttemporal --data-dir data/YTTemporal --meta-dir meta_data
    # from flat folders of <id>.mp4 and MERLOT-style <id>.json: link them into the official layout first
    python -m data_loader.prepare yttemporal --videos raw/videos --annotations raw/json --data-dir data/YTTemporal
    # re-encode for fast sparse access (short side 256, a keyframe every second)
    python -m data_loader.prepare reencode --data-dir data/YTTemporal --out-dir data/YTTemporal256

Every video/annotation pair is checked (the annotation parses and aligns, its words lie inside its duration,
the video opens, its length agrees with the annotation, its first and last frames decode). Pairs that fail are
left out of the split files and listed with the reason in `<meta-dir>/prepare_report.json`.
"""
import argparse
import json
import os
import sys
from collections import Counter
from multiprocessing import Pool

import numpy as np
from tqdm import tqdm

from utils.io import atomic_path

from .readers import VideoReadError, get_reader
from .transcripts import AnnotationError, write_alignment_cache
from .yttemporal import annotation_path

VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi", ".mov")


def official_names(data_dir):
    """Video names (`<subset>/data/<file>`) found in an official layout."""
    root = os.path.join(data_dir, "videos")
    if not os.path.isdir(root):
        raise FileNotFoundError(f"no videos folder in {data_dir} (expected {root}/<subset>/data/<id>.mp4)")
    names = []
    for subset in sorted(os.listdir(root)):
        folder = os.path.join(root, subset, "data")
        if os.path.isdir(folder):
            names += [f"{subset}/data/{f}" for f in sorted(os.listdir(folder)) if f.endswith(VIDEO_EXTENSIONS)]
    return names


def _index(folder, extensions):
    found = {}
    for parent, _, files in os.walk(folder):
        for f in files:
            stem, ext = os.path.splitext(f)
            if ext in extensions:
                found.setdefault(stem, os.path.join(parent, f))
    return found


def link_flat_folders(videos_dir, annotations_dir, data_dir, subset_size=1000):
    """Symlink `<id>.<ext>` videos and their `<id>.json` annotations into the official layout, in subsets of
    `subset_size` videos. Returns the names linked and the ids that had no annotation."""
    videos, annotations = _index(videos_dir, VIDEO_EXTENSIONS), _index(annotations_dir, (".json",))
    names, unmatched = [], []
    for vid in sorted(videos):
        if vid not in annotations:
            unmatched.append(vid)
            continue
        subset = f"subset_{len(names) // subset_size}"
        name = f"{subset}/data/{os.path.basename(videos[vid])}"
        pairs = ((videos[vid], os.path.join(data_dir, "videos", name)),
                 (annotations[vid], annotation_path(data_dir, name)))
        for src, dst in pairs:
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            if not os.path.lexists(dst):
                os.symlink(os.path.abspath(src), dst)
        names.append(name)
    return names, unmatched


def check_pair(job):
    """Check one video and its annotation (run in a worker); caches the alignment. Returns a result dict."""
    data_dir, name, reader_name, min_duration = job
    result = {"name": name}
    try:
        transcript, duration = write_alignment_cache(annotation_path(data_dir, name))
        if duration < min_duration:
            return {**result, "reason": "too_short", "detail": f"{duration:.1f}s < {min_duration}s"}
        if len(transcript.times) and (transcript.times.min() < 0 or transcript.times.max() > duration):
            return {**result, "reason": "words_outside_duration",
                    "detail": f"word times {transcript.times.min():.1f}..{transcript.times.max():.1f}s, "
                              f"duration {duration:.1f}s"}
        with get_reader(reader_name).open(os.path.join(data_dir, "videos", name)) as video:
            if video.num_frames < 2 or video.fps <= 0:
                return {**result, "reason": "unreadable_video",
                        "detail": f"{video.num_frames} frames at {video.fps} fps"}
            length = video.num_frames / video.fps
            if abs(length - duration) > max(1.0, 0.05 * duration):
                return {**result, "reason": "duration_mismatch",
                        "detail": f"video {length:.1f}s, annotation {duration:.1f}s"}
            video.read([0, video.num_frames - 1])
        return {**result, "reason": None, "duration": duration, "fps": video.fps, "words": len(transcript.times)}
    except AnnotationError as e:
        return {**result, "reason": "bad_annotation", "detail": str(e)}
    except (VideoReadError, OSError) as e:  # anything else is a bug and must surface
        return {**result, "reason": "unreadable_video" if isinstance(e, VideoReadError) else "unreadable_file",
                "detail": str(e)}


def _progress(iterable, total, desc):
    return tqdm(iterable, total=total, desc=desc, unit="video", file=sys.stderr)


def prepare_yttemporal(data_dir, meta_dir, videos=None, annotations=None, val_fraction=0.01, seed=0,
                       reader="decord", workers=None, min_duration=8.0):
    """Build `yttemporal_{train,val}.csv` from the checked pairs; returns the report dict (also written)."""
    unmatched = []
    if videos or annotations:
        if not (videos and annotations):
            raise ValueError("--videos and --annotations go together")
        names, unmatched = link_flat_folders(videos, annotations, data_dir)
    else:
        names = official_names(data_dir)
    if not names:
        raise ValueError(f"no videos found for {data_dir}")
    jobs = [(data_dir, n, reader, min_duration) for n in names]
    with Pool(workers or min(4, os.cpu_count() or 1)) as pool:
        results = list(_progress(pool.imap(check_pair, jobs, chunksize=4), len(jobs), "checking videos"))
    good = [r["name"] for r in results if r["reason"] is None]
    dropped = [r for r in results if r["reason"] is not None]
    dropped += [{"name": vid, "reason": "no_annotation", "detail": "no <id>.json found"} for vid in unmatched]
    order = np.random.default_rng(seed).permutation(len(good))
    n_val = int(round(len(good) * val_fraction)) if len(good) > 1 else 0
    splits = {"val": sorted(good[i] for i in order[:n_val]), "train": sorted(good[i] for i in order[n_val:])}
    os.makedirs(meta_dir, exist_ok=True)
    for split, split_names in splits.items():
        with open(os.path.join(meta_dir, f"yttemporal_{split}.csv"), "w") as f:
            f.write("Name\n" + "".join(n + "\n" for n in split_names))
    report = {"data_dir": data_dir, "kept": len(good), "train": len(splits["train"]), "val": len(splits["val"]),
              "dropped": len(dropped), "dropped_by_reason": dict(Counter(r["reason"] for r in dropped)),
              "hours": sum(r["duration"] for r in results if r["reason"] is None) / 3600, "dropped_items": dropped}
    with open(os.path.join(meta_dir, "prepare_report.json"), "w") as f:
        json.dump(report, f, indent=1)
    return report


def reencode_video(src, dst, short_side=256, keyframe_seconds=1.0, crf=23):
    """Re-encode to H.264 with the short side at `short_side` (never upscaled) and a keyframe every
    `keyframe_seconds`, keeping the frame rate and frame count; sparse frame access gets much cheaper."""
    import av
    os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
    with atomic_path(dst, suffix=".mp4") as tmp, av.open(src) as inp, av.open(tmp, "w") as out:
        istream = inp.streams.video[0]
        rate = istream.average_rate or istream.guessed_rate
        scale = min(1.0, short_side / min(istream.width, istream.height))
        width, height = (int(round(istream.width * scale / 2)) * 2, int(round(istream.height * scale / 2)) * 2)
        ostream = out.add_stream("libx264", rate=rate)
        ostream.width, ostream.height, ostream.pix_fmt = width, height, "yuv420p"
        ostream.options = {"g": str(max(1, int(round(float(rate) * keyframe_seconds)))), "crf": str(crf),
                           "bf": "0"}
        ostream.codec_context.time_base = 1 / rate
        for index, frame in enumerate(inp.decode(istream)):
            frame = frame.reformat(width=width, height=height, format="yuv420p")
            frame.pts, frame.time_base = index, 1 / rate  # constant frame rate, every frame kept
            for packet in ostream.encode(frame):
                out.mux(packet)
        for packet in ostream.encode():
            out.mux(packet)


def _reencode_job(job):
    src, dst, short_side = job
    try:
        reencode_video(src, dst, short_side)
        return None
    except Exception as e:  # report every failure by file; PyAV raises many error types
        return f"{src}: {e}"


def reencode_dataset(data_dir, out_dir, short_side=256, workers=None):
    """Re-encode every video of an official layout into `out_dir`, linking annotations and alignment caches."""
    names = official_names(data_dir)
    jobs = [(os.path.join(data_dir, "videos", n), os.path.join(out_dir, "videos", n), short_side) for n in names]
    for name in names:
        src_ann = annotation_path(data_dir, name)
        for src in (src_ann, src_ann[:-len(".json")] + ".aligned.json"):
            dst = os.path.join(out_dir, os.path.relpath(src, data_dir))
            if os.path.exists(src) and not os.path.lexists(dst):
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                os.symlink(os.path.abspath(src), dst)
    with Pool(workers or min(4, os.cpu_count() or 1)) as pool:
        errors = [e for e in _progress(pool.imap(_reencode_job, jobs), len(jobs), "re-encoding") if e]
    return len(jobs) - len(errors), errors


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    yt = sub.add_parser("yttemporal", help="check pairs, cache alignments, write split files")
    yt.add_argument("--data-dir", required=True)
    yt.add_argument("--meta-dir", default="meta_data")
    yt.add_argument("--videos", help="flat folder of <id>.mp4 to link into the official layout")
    yt.add_argument("--annotations", help="folder of MERLOT-style <id>.json annotations")
    yt.add_argument("--val-fraction", type=float, default=0.01)
    yt.add_argument("--seed", type=int, default=0)
    yt.add_argument("--reader", default="decord")
    yt.add_argument("--workers", type=int)
    yt.add_argument("--min-duration", type=float, default=8.0)
    re = sub.add_parser("reencode", help="re-encode an official layout for fast sparse frame access")
    re.add_argument("--data-dir", required=True)
    re.add_argument("--out-dir", required=True)
    re.add_argument("--short-side", type=int, default=256)
    re.add_argument("--workers", type=int)
    args = parser.parse_args(argv)
    if args.command == "yttemporal":
        report = prepare_yttemporal(args.data_dir, args.meta_dir, args.videos, args.annotations, args.val_fraction,
                                    args.seed, args.reader, args.workers, args.min_duration)
        print(f"kept {report['kept']} videos ({report['hours']:.1f} h): {report['train']} train, {report['val']} "
              f"val; dropped {report['dropped']} {report['dropped_by_reason']}; report in "
              f"{os.path.join(args.meta_dir, 'prepare_report.json')}")
    else:
        done, errors = reencode_dataset(args.data_dir, args.out_dir, args.short_side, args.workers)
        print(f"re-encoded {done} videos into {args.out_dir}; {len(errors)} failed")
        for e in errors:
            print("  " + e)
        if errors:
            sys.exit(1)


if __name__ == "__main__":
    main()
