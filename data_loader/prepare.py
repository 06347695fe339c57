"""Data preparation: build and check the YT-Temporal split files, cache transcript alignments, re-encode videos.

    # check an official layout (<data-dir>/videos/<subset>/{data,annotations}/) and write the split files
    python -m data_loader.prepare yttemporal --data-dir data/YTTemporal --meta-dir meta_data
    # from flat folders of <id>.mp4 and MERLOT-style <id>.json: link them into the official layout first
    python -m data_loader.prepare yttemporal --videos raw/videos --annotations raw/json --data-dir data/YTTemporal
    # re-encode for fast sparse access (short side 268, never upscaled; --profile sampler: 6 fps, short GOPs;
    # --profile intra: 8 fps, every frame a keyframe)
    python -m data_loader.prepare reencode --data-dir data/YTTemporal --out-dir data/YTTemporal268 --profile intra
    # pack into WebDataset shards with a manifest (train with data_loader args "shards": "<out>/manifest.json")
    python -m data_loader.prepare shards --source yttemporal --data-dir data/YTTemporal --meta-dir meta_data \
        --out-dir data/shards/yttemporal --samples-per-shard 1000
    # describe video2dataset's output (*.tar + *_stats.json) with a manifest, in place
    python -m data_loader.prepare shards --video2dataset data/webvid_v2d

Every video/annotation pair is checked (the annotation parses and aligns, its words lie inside its duration,
the video opens, its length agrees with the annotation, its first and last frames decode). Without split files in
`--meta-dir`, the good pairs are split (seeded) into `yttemporal_{train,val}.csv` there and the failed ones listed
with the reason in `prepare_report.json`. Split files this command did not write (the official download) are never
replaced: the videos they list are checked and the problems reported, rows kept; `--drop-bad --out-meta-dir D`
writes filtered copies to D.
"""
import argparse
import json
import os
import sys
from collections import Counter
from fractions import Fraction
from multiprocessing import Pool

import numpy as np
from tqdm import tqdm

from utils.io import atomic_path

from .base import read_split_file
from .readers import VideoReadError, get_reader
from .splits import is_derived_split, write_derived_split
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
    for what, path in (("video", os.path.join(data_dir, "videos", name)), ("annotation", annotation_path(data_dir, name))):
        if not os.path.exists(path):
            return {**result, "reason": f"missing_{what}", "detail": path}
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


SPLITS = ("train", "val")


def split_path(meta_dir, split):
    return os.path.join(meta_dir, f"yttemporal_{split}.csv")


def existing_split(meta_dir):
    """{split: names} of the split files in `meta_dir` unless there are none or all were drawn by this project
    (`write_derived_split`, unedited since): a downloaded, official split, which is kept."""
    present = [s for s in SPLITS if os.path.isfile(split_path(meta_dir, s))]
    if all(is_derived_split(meta_dir, os.path.basename(split_path(meta_dir, s))) for s in present):
        return None
    return {s: [str(n) for n in read_split_file(split_path(meta_dir, s), columns=["Name"])["Name"]] for s in present}


def prepare_yttemporal(data_dir, meta_dir, videos=None, annotations=None, val_fraction=None, seed=0,
                       reader="decord", workers=None, min_duration=8.0, drop_bad=False, out_meta_dir=None):
    """Check the videos and cache their alignments; returns the report dict (also written as prepare_report.json).

    Without split files in `meta_dir`, every video found is checked and `yttemporal_{train,val}.csv` are drawn
    from the good ones (seeded) and written there (`out_meta_dir` instead, when given). With split files that this
    command did not write (the official download), they are kept: the videos they list are checked and the
    problems reported, rows unchanged; `drop_bad` writes copies without the bad rows to `out_meta_dir`, which must
    be another folder. `val_fraction` (default 0.01) only applies to a split drawn here: giving it beside an official
    split is an error."""
    unmatched = []
    if videos or annotations:
        if not (videos and annotations):
            raise ValueError("--videos and --annotations go together")
        names, unmatched = link_flat_folders(videos, annotations, data_dir)
    else:
        names = None
    official = existing_split(meta_dir)
    if official is not None:
        names = sorted(set().union(*official.values()))
    elif names is None:
        names = official_names(data_dir)
    if not names:
        raise ValueError(f"no videos found for {data_dir}")
    if official is not None and val_fraction is not None:
        raise ValueError(f"{meta_dir} holds split files this command did not write, which are kept: a validation "
                         "fraction applies only to a split drawn here (move those files away to draw one)")
    if drop_bad and official is not None and (
            not out_meta_dir or os.path.realpath(out_meta_dir) == os.path.realpath(meta_dir)):
        raise ValueError(f"{meta_dir} holds a split this command did not write: dropping its bad rows needs "
                         "--out-meta-dir, another folder for the filtered copy")
    jobs = [(data_dir, n, reader, min_duration) for n in names]
    with Pool(workers or min(4, os.cpu_count() or 1)) as pool:
        results = list(_progress(pool.imap(check_pair, jobs, chunksize=4), len(jobs), "checking videos"))
    good = [r["name"] for r in results if r["reason"] is None]
    bad = [r for r in results if r["reason"] is not None]
    bad += [{"name": vid, "reason": "no_annotation", "detail": "no <id>.json found"} for vid in unmatched]
    out_dir = out_meta_dir or meta_dir
    if official is None:
        order = np.random.default_rng(seed).permutation(len(good))
        val_fraction = 0.01 if val_fraction is None else val_fraction
        n_val = int(round(len(good) * val_fraction)) if len(good) > 1 else 0
        splits = {"val": sorted(good[i] for i in order[:n_val]), "train": sorted(good[i] for i in order[n_val:])}
        write_derived_split(out_dir, "yttemporal", splits)
        report = {"split": "derived"}
    elif drop_bad:
        keep = set(good)
        splits = {split: [n for n in listed if n in keep] for split, listed in official.items()}
        write_derived_split(out_dir, "yttemporal", splits)
        report = {"split": f"official, filtered copy (the official files stay in {meta_dir})"}
    else:
        splits, out_dir = official, meta_dir
        report = {"split": "official, kept unchanged (problems reported, no row dropped)"}
        for item in bad:
            item["split"] = [split for split, listed in official.items() if item["name"] in listed]
    dropped = bad if official is None or drop_bad else []
    report.update({"data_dir": data_dir, "kept": len(good), "train": len(splits.get("train", [])),
                   "val": len(splits.get("val", [])), "dropped": len(dropped),
                   "dropped_by_reason": dict(Counter(r["reason"] for r in dropped)),
                   "problems": len(bad), "problems_by_reason": dict(Counter(r["reason"] for r in bad)),
                   "hours": sum(r["duration"] for r in results if r["reason"] is None) / 3600,
                   "dropped_items": dropped, "problem_items": bad})
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "prepare_report.json"), "w") as f:
        json.dump(report, f, indent=1)
    report["report_dir"] = out_dir
    return report


# Short side 268 = int(1.2 * 224), what the TVTS transforms resize to: a smaller re-encode would be upsampled.
REENCODE_SHORT_SIDE = 268
# "archive": every frame at the source rate, a keyframe every second (any sampler reads it as the original).
# "sampler": built for the official sampler, which keeps 16 frames over 15-23 s (about one a second): 6 frames a
# second (each segment of the span still holds several, so the random draw keeps its spread) and a keyframe every
# 3 frames, so a seek decodes at most 3 (docs/faithfulness.md: how far its frames drift from the original timeline).
# "intra": the fastest to sample: 8 frames a second, every one a keyframe, x264's fastdecode tuning (no CABAC, no
# deblocking), so each wanted frame costs one cheap decode; about 1.5x the bytes of a 0.8 Mbit/s 360p original.
REENCODE_PROFILES = {"archive": {"fps": None, "keyframe_seconds": 1.0},
                     "sampler": {"fps": 6.0, "keyframe_seconds": 0.5},
                     "intra": {"fps": 8.0, "keyframe_seconds": 0.0, "tune": "fastdecode"}}


def reencode_video(src, dst, short_side=REENCODE_SHORT_SIDE, keyframe_seconds=1.0, crf=23, fps=None, tune=None):
    """Re-encode to H.264 with the short side at `short_side` (never upscaled), a keyframe every
    `keyframe_seconds` (0: every frame) and no B-frames. `fps=None` keeps the frame rate and every frame; a lower
    `fps` keeps, for each output time n / fps, the source frame nearest to it (never more than the source's rate).
    `tune` is an x264 tuning ("fastdecode")."""
    import av
    os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
    with atomic_path(dst, suffix=".mp4") as tmp, av.open(src) as inp, av.open(tmp, "w") as out:
        istream = inp.streams.video[0]
        source_rate = istream.average_rate or istream.guessed_rate
        rate = source_rate if fps is None or fps >= float(source_rate) else Fraction(fps).limit_denominator(1001)
        scale = min(1.0, short_side / min(istream.width, istream.height))
        width, height = (int(round(istream.width * scale / 2)) * 2, int(round(istream.height * scale / 2)) * 2)
        ostream = out.add_stream("libx264", rate=rate)
        ostream.width, ostream.height, ostream.pix_fmt = width, height, "yuv420p"
        ostream.options = {"g": str(max(1, int(round(float(rate) * keyframe_seconds)))), "crf": str(crf),
                           "bf": "0", **({"tune": tune} if tune else {})}
        ostream.codec_context.time_base = 1 / rate
        frames = inp.decode(istream)
        if rate != source_rate:
            frames = _nearest_frames(frames, float(source_rate), float(rate))
        for index, frame in enumerate(frames):
            frame = frame.reformat(width=width, height=height, format="yuv420p")
            frame.pts, frame.time_base = index, 1 / rate  # constant frame rate
            for packet in ostream.encode(frame):
                out.mux(packet)
        for packet in ostream.encode():
            out.mux(packet)


def _nearest_frames(frames, source_rate, rate):
    """For n = 0, 1, ... while n / rate lies within the source: the frame nearest to time n / rate (source frame
    i shows at i / source_rate; a tie goes to the earlier frame)."""
    previous, previous_time, n = None, None, 0
    for i, frame in enumerate(frames):
        time = i / source_rate
        while n / rate <= time:
            target = n / rate
            yield previous if previous is not None and target - previous_time <= time - target else frame
            n += 1
        previous, previous_time = frame, time


def _reencode_job(job):
    src, dst, short_side, profile = job
    try:
        reencode_video(src, dst, short_side, **REENCODE_PROFILES[profile])
        return None
    except Exception as e:  # report every failure by file; PyAV raises many error types
        return f"{src}: {e}"


def reencode_dataset(data_dir, out_dir, short_side=REENCODE_SHORT_SIDE, workers=None, profile="archive"):
    """Re-encode every video of an official layout into `out_dir` with a REENCODE_PROFILES entry, linking
    annotations and alignment caches."""
    if profile not in REENCODE_PROFILES:
        raise ValueError(f"re-encoding profile must be one of {sorted(REENCODE_PROFILES)}, got {profile!r}")
    names = official_names(data_dir)
    jobs = [(os.path.join(data_dir, "videos", n), os.path.join(out_dir, "videos", n), short_side, profile)
            for n in names]
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


def pack_shards_command(args, parser):
    from .shards import describe_video2dataset, pack
    if args.video2dataset:
        manifest = describe_video2dataset(args.video2dataset)
        print(f"manifest for {manifest['splits']['train']['samples']} samples in "
              f"{len(manifest['splits']['train']['shards'])} shards: {args.video2dataset}/manifest.json")
        return
    if not (args.source and args.data_dir and args.out_dir):
        parser.error("shards needs --source, --data-dir and --out-dir (or --video2dataset DIR)")
    manifest = pack(args.source, {"data_dir": args.data_dir, "meta_dir": args.meta_dir}, args.out_dir,
                    tuple(args.splits), args.samples_per_shard)
    for split, entry in manifest["splits"].items():
        hours = f", {entry['hours']:.1f} h" if "hours" in entry else ""
        print(f"{split}: {entry['samples']} samples in {len(entry['shards'])} shards{hours}; "
              f"{len(entry['dropped'])} left out (missing files){' e.g. ' + entry['dropped'][0]['name'] if entry['dropped'] else ''}")
    print(f"manifest: {os.path.join(args.out_dir, 'manifest.json')}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    yt = sub.add_parser("yttemporal", help="check pairs, cache alignments, write split files")
    yt.add_argument("--data-dir", required=True)
    yt.add_argument("--meta-dir", default="meta_data")
    yt.add_argument("--videos", help="flat folder of <id>.mp4 to link into the official layout")
    yt.add_argument("--annotations", help="folder of MERLOT-style <id>.json annotations")
    yt.add_argument("--val-fraction", type=float, help="share of a split drawn here (default 0.01)")
    yt.add_argument("--seed", type=int, default=0)
    yt.add_argument("--reader", default="decord")
    yt.add_argument("--workers", type=int)
    yt.add_argument("--min-duration", type=float, default=8.0)
    yt.add_argument("--drop-bad", action="store_true",
                    help="with an official split in --meta-dir: write it without the bad rows to --out-meta-dir")
    yt.add_argument("--out-meta-dir", help="where derived split files and the report go (default: --meta-dir)")
    re = sub.add_parser("reencode", help="re-encode an official layout for fast sparse frame access")
    re.add_argument("--data-dir", required=True)
    re.add_argument("--out-dir", required=True)
    re.add_argument("--short-side", type=int, default=REENCODE_SHORT_SIDE,
                    help="never upscaled; below 268 the TVTS transforms would upsample")
    re.add_argument("--profile", choices=sorted(REENCODE_PROFILES), default="archive",
                    help="archive: every frame, a keyframe a second; sampler: 6 fps, a keyframe every 3 frames; "
                         "intra: 8 fps, every frame a keyframe, tuned for fast decoding")
    re.add_argument("--workers", type=int)
    sh = sub.add_parser("shards", help="pack a corpus into WebDataset shards (resumable) and write their manifest")
    sh.add_argument("--source", choices=["yttemporal", "webvid", "cc3m"])
    sh.add_argument("--data-dir")
    sh.add_argument("--meta-dir", default="meta_data")
    sh.add_argument("--out-dir")
    sh.add_argument("--splits", nargs="+", default=["train", "val"])
    sh.add_argument("--samples-per-shard", type=int, default=1000,
                    help="equal shard sizes let an epoch split evenly over ranks x workers")
    sh.add_argument("--video2dataset", metavar="DIR", help="write a manifest for video2dataset's shards in DIR")
    args = parser.parse_args(argv)
    if args.command == "yttemporal":
        report = prepare_yttemporal(args.data_dir, args.meta_dir, args.videos, args.annotations, args.val_fraction,
                                    args.seed, args.reader, args.workers, args.min_duration, args.drop_bad,
                                    args.out_meta_dir)
        print(f"split: {report['split']}; {report['kept']} good videos ({report['hours']:.1f} h), "
              f"{report['problems']} with problems {report['problems_by_reason']}; split files list "
              f"{report['train']} train, {report['val']} val (dropped {report['dropped']}); report in "
              f"{os.path.join(report['report_dir'], 'prepare_report.json')}")
    elif args.command == "shards":
        pack_shards_command(args, parser)
    else:
        done, errors = reencode_dataset(args.data_dir, args.out_dir, args.short_side, args.workers, args.profile)
        print(f"re-encoded {done} videos into {args.out_dir}; {len(errors)} failed")
        for e in errors:
            print("  " + e)
        if errors:
            sys.exit(1)


if __name__ == "__main__":
    main()
