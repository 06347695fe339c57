"""Synthetic zero-shot eval sets: the official TVTSv2 layouts (MSR-VTT jsfusion cut, DiDeMo, LSMDC, HMDB-51, UCF-101,
Kinetics-400, SSV2 multiple choice), read back with plain json/csv/pickle/av. Also checked: whole-second clips that
decode frame-exact, captions whose colour words match the pixels of their seconds, and same seed -> same bytes."""
import csv
import json
import os
import pathlib
import pickle
import re

import av
import numpy as np
import pytest

from data_loader import synthetic as S

K = 12
SETS = ("msrvtt", "didemo", "lsmdc", "hmdb51", "ucf101", "k400", "ssv2_mc")


@pytest.fixture(scope="module")
def evalsets(tmp_path_factory):
    out = tmp_path_factory.mktemp("evalsets")
    summary = S.generate_eval_sets(out, num_clips=K, seed=0, workers=2)  # a spawn pool
    return str(out), summary


def _tsv(path):
    with open(path, newline="") as f:
        return list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def _decode(path):
    with av.open(path) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def _codec(path):
    with av.open(path) as container:
        return container.format.name, container.streams.video[0].codec_context.name


def _colour_of(frame):
    """The named colour of the object: median of the pixels far from every backdrop grey, nearest colour."""
    greys = np.array(S.BACKGROUNDS, np.int32)
    pixels = frame.astype(np.int32).reshape(-1, 3)
    foreground = pixels[np.abs(pixels[:, None, :] - greys).sum(-1).min(-1) > 75]
    assert len(foreground) > 50
    median = np.median(foreground, axis=0)
    return min(S.COLORS, key=lambda c: np.abs(median - np.array(S.COLORS[c])).sum())


def _seen_colours(frames):
    """The object's colour at the middle frame of every second (one shot per second)."""
    assert len(frames) % S.FPS == 0
    return [_colour_of(frames[s * S.FPS + S.FPS // 2]) for s in range(len(frames) // S.FPS)]


def _said_colours(caption):
    """The colour named by each sentence of a caption."""
    sentences = re.split(r"(?<=[.!])\s+", caption.strip())
    assert all(s[-1] in ".!" for s in sentences), caption
    return [next(w for w in re.findall(r"[a-z]+", s.lower()) if w in S.COLORS) for s in sentences]


def _check_clip(path, caption=None, colour=None):
    """Decodes frame-exact to 3-4 whole seconds; the caption names each second's colour in order, or every second
    shows `colour`."""
    frames = _decode(path)
    assert len(frames) in (3 * S.FPS, 4 * S.FPS), (path, len(frames))
    assert frames[0].shape == (S.FRAME_SIZE[1], S.FRAME_SIZE[0], 3)
    seen = _seen_colours(frames)
    if caption is not None:
        assert _said_colours(caption) == seen, (path, caption, seen)
    if colour is not None:
        assert seen == [colour] * len(seen), (path, colour, seen)
    return len(frames)


def test_summary_and_record(evalsets):
    out, summary = evalsets
    assert summary["out_dir"] == out
    assert summary["meta_dir"] == os.path.join(out, "meta_data") and summary["data_dir"] == os.path.join(out, "data")
    assert all(summary[name] == K for name in SETS) and summary["classes"] == 6 and summary["elapsed_s"] >= 0
    with open(os.path.join(out, "eval_sets.json")) as f:
        record = json.load(f)
    assert record["eval_design"] == S.EVAL_DESIGN == 2 and record["seed"] == 0
    assert all(record[name] == K for name in SETS)


def test_msrvtt(evalsets):
    out, _ = evalsets
    data = os.path.join(out, "data", "msrvtt")
    with open(os.path.join(data, "high-quality", "structured-symlinks", "val_list_jsfusion.txt")) as f:
        ids = f.read().splitlines()
    assert ids == [f"video{7010 + i}" for i in range(K)]
    with open(os.path.join(out, "meta_data", "msrvtt", "MSR_VTT.json")) as f:
        annotations = json.load(f)["annotations"]
    assert sorted(a["id"] for a in annotations) == list(range(len(annotations)))
    captions = {}
    for a in annotations:  # in file order, as the official reader groups them
        captions.setdefault(a["image_id"], []).append(a["caption"])
    extra = set(captions) - set(ids)
    assert len(extra) == 5 and len(annotations) == 3 * (K + 5)
    assert not any(os.path.exists(os.path.join(data, "videos", "all", f"{v}.mp4")) for v in extra)
    assert all(len(captions[v]) == 3 and len(set(captions[v])) == 3 for v in ids)
    runs = sum(a["image_id"] == b["image_id"] for a, b in zip(annotations, annotations[1:], strict=False))
    assert runs < len(annotations) // 3  # shuffled: a video's captions are mostly not adjacent
    with open(os.path.join(data, "high-quality", "structured-symlinks", "jsfusion_val_caption_idx.pkl"), "rb") as f:
        raw = f.read()
    assert raw[:2] == b"\x80\x02"  # protocol 2
    index = pickle.loads(raw)
    assert type(index) is dict and sorted(index) == sorted(ids)
    for vid in ids:
        assert type(index[vid]) is int and 0 <= index[vid] < 3
        picked = captions[vid][index[vid]]
        # every caption of a video describes it: its sentences name the colours seen in its seconds
        for caption in captions[vid]:
            n = _check_clip(os.path.join(data, "videos", "all", f"{vid}.mp4"), caption=caption)
        assert len(re.split(r"(?<=[.!])\s+", picked)) == n // S.FPS


def test_didemo(evalsets):
    out, _ = evalsets
    rows = _tsv(os.path.join(out, "meta_data", "didemo", "DiDeMo_test.tsv"))
    assert rows[0] == ["text", "video"] and len(rows) == K + 1 and all(len(r) == 2 for r in rows)
    assert len({r[1] for r in rows[1:]}) == K
    for text, video in rows[1:]:
        assert video.startswith("videos/") and video.endswith(".mp4")
        assert _codec(os.path.join(out, "data", "didemo", video)) == ("mov,mp4,m4a,3gp,3g2,mj2", "h264")
        _check_clip(os.path.join(out, "data", "didemo", video), caption=text)


def _lsmdc_seconds(t):
    h, m, s, ms = (int(x) for x in t.split("."))
    return h * 3600 + m * 60 + s + ms / 1000


def test_lsmdc(evalsets):
    out, _ = evalsets
    rows = _tsv(os.path.join(out, "meta_data", "lsmdc", "LSMDC16_challenge_1000_publictect.csv"))
    assert len(rows) == K and all(len(r) == 6 for r in rows)  # no header
    movies = set()
    for name, start, end, start2, end2, sentence in rows:
        folder = name.split(".")[0].rsplit("_", 1)[0]  # the official rule: '<movie>_<HH>.<MM>...' -> '<movie>'
        movies.add(folder)
        path = os.path.join(out, "data", "lsmdc", folder, f"{name}.avi")
        assert _codec(path) == ("avi", "mpeg4")
        n = _check_clip(path, caption=sentence)
        assert name == f"{folder}_{start}-{end}" and (start, end) == (start2, end2)
        assert abs(_lsmdc_seconds(end) - _lsmdc_seconds(start) - n / S.FPS) < 1e-6
    assert movies == {"0001_SYNTHA", "0002_SYNTHB", "0003_SYNTHC"}
    assert len({r[0] for r in rows}) == K


def _label2id(out, name):
    with open(os.path.join(out, "meta_data", name, "prompt", "label2id.json")) as f:
        label2id = json.load(f)
    assert list(label2id.values()) == list(range(6))
    for cls in label2id:
        colour, shape = cls.split()
        assert colour in S.COLORS and shape in S.SHAPE_WORDS
    return {i: cls for cls, i in label2id.items()}


@pytest.mark.parametrize("name,files", [
    ("hmdb51", ["split_1_test_list.tsv", "split_2_test_list.tsv", "split_3_test_list.tsv"]),
    ("hmdb51", ["split_1_train_list.tsv", "split_2_train_list.tsv", "split_3_train_list.tsv"]),
    ("ucf101", ["testlist01_new.tsv", "testlist02_new.tsv", "testlist03_new.tsv"]),
    ("ucf101", ["trainlist01_new.tsv", "trainlist02_new.tsv", "trainlist03_new.tsv"])])
def test_hmdb_ucf(evalsets, name, files):
    out, _ = evalsets
    classes = _label2id(out, name)
    splits = []
    for file in files:
        rows = _tsv(os.path.join(out, "meta_data", name, "prompt", file))
        assert rows[0] == ["video", "label"] and all(len(r) == 2 for r in rows)
        splits.append([tuple(r) for r in rows[1:]])
    assert len(splits[0]) == K and len(set(splits[0])) == K
    assert np.bincount([int(label) for _, label in splits[0]]).tolist() == [0] + [K // 6] * 6  # 1-based, balanced
    for split in splits[1:]:
        assert set(split) < set(splits[0]) and abs(len(split) - 2 * K / 3) <= 1
    assert set(splits[1]) != set(splits[2])
    for video, label in splits[0]:
        cls = classes[int(label) - 1]
        folder, file = video.split("/")
        if name == "hmdb51":
            assert folder == cls.replace(" ", "_") and file.endswith(".avi")
        else:
            assert folder == "".join(w.capitalize() for w in cls.split())
            assert re.fullmatch(rf"v_{folder}_g\d\d_c\d\d\.avi", file)
        path = os.path.join(out, "data", name, video)
        assert _codec(path) == ("avi", "mpeg4")
        _check_clip(path, colour=cls.split()[0])


@pytest.mark.parametrize("listed,video_dir", [("val", "videos_val"), ("train", "train/train")])
def test_k400(evalsets, listed, video_dir):
    out, _ = evalsets
    classes = _label2id(out, "k400")
    rows = _tsv(os.path.join(out, "meta_data", "k400", "prompt", f"kinetics400_{listed}_list_videos.tsv"))
    assert rows[0] == ["video", "label"] and len(rows) == K + 1 and all(len(r) == 2 for r in rows)
    rows = rows[1:]
    assert sorted(r[0].endswith(".mkv") for r in rows) == [False] * (K // 2) + [True] * (K // 2)
    assert np.bincount([int(label) for _, label in rows]).tolist() == [K // 6] * 6  # 0-based, balanced
    for video, label in rows:
        folder, file = video.split("/")
        cls = classes[int(label)]
        assert folder == cls.replace(" ", "_")
        assert re.fullmatch(r"[A-Za-z0-9_-]{11}_000010_000020\.(mp4|mkv)", file)
        path = os.path.join(out, "data", "k400", video_dir, file.replace(".mkv", ".mp4"))
        _check_clip(path, colour=cls.split()[0])


def test_ssv2_multiple_choice(evalsets):
    out, _ = evalsets
    with open(os.path.join(out, "meta_data", "ssv2", "mc", "val.jsonl")) as f:
        records = [json.loads(line) for line in f]
    assert [r["clip_name"] for r in records] == [f"{i}.mp4" for i in range(1, K + 1)]
    answers = []
    for r in records:
        assert set(r) == {"clip_name", "options", "answer"}
        assert len(r["options"]) == 5 and len(set(r["options"])) == 5
        assert type(r["answer"]) is int and 0 <= r["answer"] < 5
        answers.append(r["answer"])
        _check_clip(os.path.join(out, "data", "SSV2", "videos", r["clip_name"]), caption=r["options"][r["answer"]])
    truths = {r["options"][r["answer"]] for r in records}
    assert all(o in truths for r in records for o in r["options"])  # distractors are captions of other clips
    assert len(set(answers)) > 1


def _bytes(root):
    root = pathlib.Path(root)
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_differs(evalsets, tmp_path):
    out, _ = evalsets
    S.generate_eval_sets(tmp_path / "again", num_clips=K, seed=0, workers=1)
    first, again = _bytes(out), _bytes(tmp_path / "again")
    assert sorted(first) == sorted(again)
    meta = [p for p in first if p.startswith("meta_data") or p.endswith((".json", ".txt", ".pkl"))]
    assert len(meta) >= 14 and all(first[p] == again[p] for p in meta)
    assert first == again  # the videos too, whatever the worker count
    S.generate_eval_sets(tmp_path / "other", num_clips=6, seed=1, workers=1)
    other = _bytes(tmp_path / "other")
    assert other["meta_data/ssv2/mc/val.jsonl"] != first["meta_data/ssv2/mc/val.jsonl"]



def test_recognition_training_clips_are_other_videos_than_the_test_clips(evalsets):
    out, _ = evalsets
    prompt = os.path.join(out, "meta_data", "{}", "prompt", "{}")
    for name, train, test in (("hmdb51", "split_1_train_list.tsv", "split_1_test_list.tsv"),
                              ("ucf101", "trainlist01_new.tsv", "testlist01_new.tsv"),
                              ("k400", "kinetics400_train_list_videos.tsv", "kinetics400_val_list_videos.tsv")):
        train_rows = {r[0].split("/")[-1] for r in _tsv(prompt.format(name, train))[1:]}
        test_rows = {r[0].split("/")[-1] for r in _tsv(prompt.format(name, test))[1:]}
        assert len(train_rows) == len(test_rows) == K and not train_rows & test_rows
