"""The zero-shot evaluation sets of TVTSv2, read from the files the authors ship, and the shared video input.

Every reader takes the official folders: `data_dir` (the videos, official `data/<dataset>`) and `meta_dir` (the
authors' `meta_data` archive), and returns records `{"id", "path", ...}` with `text` (retrieval), `label`
(recognition) or `options` + `answer` (SSV2 multiple choice). A missing column, a malformed row, a label outside
the class list or a row count that disagrees with the official set is an error naming the file; `check_rows=False`
accepts a subset. Header rows: the official read every table with pandas' default `header=0`, which drops the
first row of a file that has no header (the LSMDC file has none); `header="auto"` keeps a first row that is
data, `header="first_row"` drops it as the official did.

Video input (`EvalVideos`), the same for every protocol: `num_frames` frames, the middle frame of each of
`num_frames` equal bins (fewer for shorter videos, then zero frames after normalisation, as official), the short side
resized to int(1.2 * crop) (TVTSv2: 268 by nearest neighbour), the centre crop, ImageNet normalisation, one view.
A video that cannot be read is a failure record, never black frames or another video.
"""
import csv
import json
import os
import pickle
import re

import numpy as np
import torch

from data_loader.base import FailSafeDataset
from data_loader.readers import ReaderByFile, VideoReadError
from data_loader.transforms import VideoTransform

HEADER_RULES = ("auto", "first_row")
LSMDC_CLIP = re.compile(r"^\d+_.+_\d{2}\.\d{2}\.\d{2}\.\d{3}-\d{2}\.\d{2}\.\d{2}\.\d{3}$")


class MetadataError(ValueError):
    """An evaluation metadata file does not hold what the official reader expects."""


# ---------------------------------------------------------------------------------------------- file helpers

def _require_file(path):
    if not os.path.isfile(path):
        raise MetadataError(f"metadata file not found: {path}")
    return path


def read_rows(path, min_columns, is_data_row, header="auto"):
    """Tab-separated rows of `path` (blank lines skipped), each with at least `min_columns` fields, with pandas'
    quoting (a field that starts with '"' is quoted: the quotes go, doubled quotes become one), as the official
    `pd.read_csv(sep="\t")` read them. The first row is a header when `header` is "first_row" or, with "auto",
    when `is_data_row(row)` is false. Returns [(line number, fields)]."""
    if header not in HEADER_RULES:
        raise ValueError(f"header must be one of {HEADER_RULES}, got {header!r}")
    with open(_require_file(path), encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quotechar='"')
        try:
            rows = [(reader.line_num, row) for row in reader if any(field.strip() for field in row)]
        except csv.Error as e:
            raise MetadataError(f"{path}, line {reader.line_num}: {e}") from None
    if rows and (header == "first_row" or not is_data_row(rows[0][1])):
        rows = rows[1:]
    for number, row in rows:
        if len(row) < min_columns:
            raise MetadataError(f"{path}, line {number}: expected at least {min_columns} tab-separated columns, got "
                                f"{len(row)}: {row!r}")
    if not rows:
        raise MetadataError(f"{path} lists nothing")
    return rows


def check_count(path, count, expected, check_rows):
    """The official sets have fixed sizes; a different count means a wrong or truncated file."""
    if check_rows and expected is not None and count != expected:
        raise MetadataError(f"{path} lists {count} entries, the official set has {expected} (pass check_rows=False "
                            "/ --no-check-rows to evaluate a subset)")


class _PlainUnpickler(pickle.Unpickler):
    """Builds containers, strings and numbers only; numpy scalars are rebuilt from their bytes, nothing else."""

    _NUMPY_SCALAR = {("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar")}
    _NUMPY_DTYPE = {("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) in self._NUMPY_SCALAR:
            return _numpy_scalar
        if (module, name) in self._NUMPY_DTYPE:
            return _numpy_dtype
        if (module, name) == ("_codecs", "encode"):  # how protocol 2 stores the bytes of a numpy scalar
            return _latin1_bytes
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only plain data is expected here")


def _numpy_dtype(name, align=False, copy=False):
    dtype = np.dtype(name)
    if dtype.kind not in "iub":
        raise pickle.UnpicklingError(f"refusing numpy dtype {name!r}: only integer scalars are expected here")
    return dtype


def _latin1_bytes(text, encoding="latin1"):
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"refusing _codecs.encode with {encoding!r}")
    return text.encode("latin1")


def _numpy_scalar(dtype, data):
    return np.frombuffer(data, dtype=dtype)[0].item()


def read_plain_pickle(path):
    """A pickle of plain data (dicts, lists, strings, numbers, numpy integer scalars) without running any code."""
    with open(_require_file(path), "rb") as f:
        try:
            return _PlainUnpickler(f).load()
        except (pickle.UnpicklingError, EOFError, AttributeError, ValueError, TypeError) as e:
            raise MetadataError(f"{path} is not a plain-data pickle: {e}") from None


def read_label_names(path):
    """Class names: the keys of the official `label2id.json` in file order (the official took index i as class
    id i); ids that disagree with that order are an error."""
    with open(_require_file(path), encoding="utf-8") as f:
        try:
            table = json.load(f, object_pairs_hook=list)
        except json.JSONDecodeError as e:
            raise MetadataError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(table, list) or not table:
        raise MetadataError(f"{path} must be a non-empty {{class name: id}} object")
    for index, (name, value) in enumerate(table):
        if str(value) != str(index):
            raise MetadataError(f"{path}: class {name!r} has id {value!r} at position {index}; the official code "
                                "takes the position as the id, so the ids must be 0, 1, ... in file order")
    return [name for name, _ in table]


def _is_int(text):
    return text.strip().lstrip("-").isdigit()


# ------------------------------------------------------------------------------------------- retrieval sets

def read_msrvtt(data_dir, meta_dir, cut="jsfusion", check_rows=True, **_):
    """MSR-VTT 1k-A: the 1,000 ids of `val_list_jsfusion.txt`, each with the one caption
    `jsfusion_val_caption_idx.pkl` picks among its `MSR_VTT.json` captions (in annotation order)."""
    if cut != "jsfusion":
        raise ValueError(f"MSR-VTT cut {cut!r} is not supported: the paper's zero-shot numbers are on 'jsfusion'")
    split_dir = os.path.join(data_dir, "high-quality", "structured-symlinks")
    list_path = os.path.join(split_dir, "val_list_jsfusion.txt")
    with open(_require_file(list_path)) as f:
        ids = [line.strip() for line in f if line.strip()]
    check_count(list_path, len(ids), 1000, check_rows)
    ann_path = os.path.join(meta_dir, "msrvtt", "MSR_VTT.json")
    with open(_require_file(ann_path), encoding="utf-8") as f:
        try:
            annotations = json.load(f).get("annotations")
        except (json.JSONDecodeError, AttributeError) as e:
            raise MetadataError(f"{ann_path} is not the MSR-VTT annotation JSON: {e}") from None
    if not isinstance(annotations, list):
        raise MetadataError(f"{ann_path} has no 'annotations' list")
    wanted, captions = set(ids), {}
    for number, ann in enumerate(annotations):
        if not isinstance(ann, dict) or "image_id" not in ann or "caption" not in ann:
            raise MetadataError(f"{ann_path}: annotation {number} lacks 'image_id' or 'caption': {ann!r}")
        if ann["image_id"] in wanted:
            captions.setdefault(ann["image_id"], []).append(ann["caption"])
    idx_path = os.path.join(split_dir, "jsfusion_val_caption_idx.pkl")
    choice = read_plain_pickle(idx_path)
    if not isinstance(choice, dict):
        raise MetadataError(f"{idx_path} must hold a {{video id: caption index}} dict, got {type(choice).__name__}")
    records = []
    for vid in sorted(wanted):  # the official grouped by id, which sorts
        if vid not in captions:
            raise MetadataError(f"{ann_path} has no caption for test video {vid} (listed in {list_path})")
        if vid not in choice or not 0 <= int(choice[vid]) < len(captions[vid]):
            raise MetadataError(f"{idx_path}: no valid caption index for {vid} ({len(captions[vid])} captions)")
        records.append({"id": vid, "path": os.path.join(data_dir, "videos", "all", vid + ".mp4"),
                        "text": captions[vid][int(choice[vid])]})
    return records


def read_didemo(data_dir, meta_dir, check_rows=True, header="auto", **_):
    """DiDeMo paragraph-to-video: column 0 of `DiDeMo_test.tsv` is the paragraph as the authors' file holds it,
    column 1 the video path under `data_dir` (~1,004 test videos; their exact count is not fixed here)."""
    path = os.path.join(meta_dir, "didemo", "DiDeMo_test.tsv")
    rows = read_rows(path, 2, lambda row: bool(os.path.splitext(row[1])[1]), header)  # a header names no file
    return [{"id": row[1], "path": os.path.join(data_dir, row[1]), "text": row[0]} for _, row in rows]


def lsmdc_video_path(clip):
    """The official movie-folder rule: `<movie>_<start>-<end>` lives in `<movie>/<clip>.avi`, the movie being the
    clip name up to its first '.' without its last '_' part."""
    head = clip.split(".")[0]
    return head[:head.rindex("_")] + "/" + clip + ".avi" if "_" in head else clip + ".avi"


def read_lsmdc(data_dir, meta_dir, check_rows=True, header="auto", **_):
    """LSMDC16 public test: 1,000 clips of `LSMDC16_challenge_1000_publictect.csv` (tab-separated, no header; the
    official read it with a header row and so lost the first clip), the sentence in the last column."""
    path = os.path.join(meta_dir, "lsmdc", "LSMDC16_challenge_1000_publictect.csv")
    rows = read_rows(path, 2, lambda row: bool(LSMDC_CLIP.match(row[0])), header)
    check_count(path, len(rows), 999 if header == "first_row" else 1000, check_rows)
    return [{"id": row[0], "path": os.path.join(data_dir, lsmdc_video_path(row[0])), "text": row[-1]}
            for _, row in rows]


# ----------------------------------------------------------------------------------------- recognition sets

def _labelled(path, names, data_dir, one_based, header, to_path):
    rows = read_rows(path, 2, lambda row: _is_int(row[1]), header)
    records = []
    for number, row in rows:
        if not _is_int(row[1]):
            raise MetadataError(f"{path}, line {number}: column 1 must be an integer label, got {row[1]!r}")
        label = int(row[1]) - one_based
        if not 0 <= label < len(names):
            raise MetadataError(f"{path}, line {number}: label {row[1]} outside the {len(names)} classes of "
                                f"label2id.json ({'1' if one_based else '0'}-based)")
        records.append({"id": row[0], "path": os.path.join(data_dir, to_path(row[0])), "label": label})
    return records


# official list sizes per (part, split): HMDB-51 has 70 training and 30 test videos per class in every split
HMDB_ROWS = {("train", k): 3570 for k in (1, 2, 3)} | {("test", k): 1530 for k in (1, 2, 3)}
UCF_ROWS = {("train", 1): 9537, ("train", 2): 9586, ("train", 3): 9624,
            ("test", 1): 3783, ("test", 2): 3734, ("test", 3): 3696}
PARTS = ("test", "train")


def _check_part(part):
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}")


def _read_split(dataset, list_name, rows, data_dir, meta_dir, split, part, check_rows, header):
    """A 1-based HMDB-51 / UCF-101 split list of `<meta_dir>/<dataset>/prompt/` and its label2id.json classes."""
    _check_part(part)
    prompt = os.path.join(meta_dir, dataset, "prompt")
    names = read_label_names(os.path.join(prompt, "label2id.json"))
    path = os.path.join(prompt, list_name)
    records = _labelled(path, names, data_dir, 1, header, lambda p: p)
    check_count(path, len(records), rows.get((part, split)), check_rows)
    return records, names


def read_hmdb51(data_dir, meta_dir, split=1, part="test", check_rows=True, header="auto", **_):
    """HMDB-51 split 1-3 (`split_<k>_<part>_list.tsv`; labels 1-based), classes from `label2id.json`."""
    return _read_split("hmdb51", f"split_{split}_{part}_list.tsv", HMDB_ROWS, data_dir, meta_dir, split, part,
                       check_rows, header)


def read_ucf101(data_dir, meta_dir, split=1, part="test", check_rows=True, header="auto", **_):
    """UCF-101 split 1-3 (`<part>list0<k>_new.tsv`; labels 1-based), classes from `label2id.json`."""
    return _read_split("ucf101", f"{part}list0{split}_new.tsv", UCF_ROWS, data_dir, meta_dir, split, part,
                       check_rows, header)


def k400_video_path(listed, part="test"):
    """The official rule: the class folder is dropped and `.mkv` becomes `.mp4`, under `videos_val/` (test) or
    `train/train/` (train)."""
    name = listed.split("/")[-1]
    folder = "videos_val" if part == "test" else os.path.join("train", "train")
    return os.path.join(folder, name[:-4] + ".mp4" if name.endswith(".mkv") else name)


def read_k400(data_dir, meta_dir, part="test", check_rows=True, header="auto", **_):
    """Kinetics-400 validation as the test part, or the training list (`kinetics400_{val,train}_list_videos.tsv`;
    labels 0-based; the counts depend on which videos the authors still had, so they are not checked)."""
    _check_part(part)
    prompt = os.path.join(meta_dir, "k400", "prompt")
    names = read_label_names(os.path.join(prompt, "label2id.json"))
    path = os.path.join(prompt, f"kinetics400_{'val' if part == 'test' else 'train'}_list_videos.tsv")
    return _labelled(path, names, data_dir, 0, header, lambda p: k400_video_path(p, part)), names


def read_ssv2_mc(data_dir, meta_dir, **_):
    """SSV2 multiple choice: `ssv2/mc/val.jsonl` records `{clip_name, options, answer}`; every record has the same
    number of options (at least 5, for top-5) and an answer index among them."""
    path = os.path.join(meta_dir, "ssv2", "mc", "val.jsonl")
    records = []
    with open(_require_file(path), encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as e:
                raise MetadataError(f"{path}, line {number}: not JSON: {e}") from None
            if not isinstance(item, dict) or not {"clip_name", "options", "answer"} <= set(item):
                raise MetadataError(f"{path}, line {number}: needs clip_name, options and answer")
            options = item["options"]
            if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
                raise MetadataError(f"{path}, line {number}: options must be a list of strings")
            if records and len(options) != len(records[0]["options"]):
                raise MetadataError(f"{path}, line {number}: {len(options)} options, the first record has "
                                    f"{len(records[0]['options'])}")
            if not isinstance(item["clip_name"], str) or not isinstance(item["answer"], int):
                raise MetadataError(f"{path}, line {number}: clip_name must be a string and answer an integer")
            if len(options) < 5 or not 0 <= item["answer"] < len(options):
                raise MetadataError(f"{path}, line {number}: needs >= 5 options and an answer among them")
            records.append({"id": item["clip_name"], "path": os.path.join(data_dir, "videos", item["clip_name"]),
                            "options": options, "answer": int(item["answer"])})
    if not records:
        raise MetadataError(f"{path} lists nothing")
    return records


RETRIEVAL_SETS = {"msrvtt": read_msrvtt, "didemo": read_didemo, "lsmdc": read_lsmdc}
RECOGNITION_SETS = {"hmdb51": read_hmdb51, "ucf101": read_ucf101, "k400": read_k400}


# ----------------------------------------------------------------------------------------------- video input

def uniform_indices(n, num_frames):
    """The official evaluation frames: bins at linspace(0, n, k + 1) (integer edges, k = min(num_frames, n)), and
    in each bin [a, b) the frame (a + b - 1) // 2."""
    edges = np.linspace(0, n, min(num_frames, n) + 1).astype(int)
    return (edges[:-1] + edges[1:] - 1) // 2


class EvalVideos(FailSafeDataset):
    """One deterministic view per video: items `{"video": (num_frames, 3, crop, crop), "index"}` or a failure
    record; `reader` as `data_loader.readers.ReaderByFile`."""

    def __init__(self, paths, num_frames=12, crop_size=224, interpolation="nearest", reader="auto",
                 loading="lax"):
        super().__init__("test", loading=loading)
        self._names = list(paths)
        self.num_frames, self.crop_size = num_frames, crop_size
        self.transform = VideoTransform(crop_size, train=False, interpolation=interpolation)
        self._reader = ReaderByFile(reader)

    def _load(self, index, rng):
        path = self._names[index]
        if not os.path.isfile(path):
            raise VideoReadError(f"video file not found: {path}")
        with self._reader.open(path) as video:
            if video.num_frames < 1:
                raise VideoReadError(f"video has no frames: {path}")
            frames = video.read(uniform_indices(video.num_frames, self.num_frames))
        clip = torch.zeros(self.num_frames, 3, self.crop_size, self.crop_size)
        clip[:len(frames)] = self.transform(frames, rng)
        return {"video": clip, "index": index}


def collate_eval(items):
    ok = [item for item in items if "failed" not in item]
    return {"video": torch.stack([item["video"] for item in ok]) if ok else None,
            "index": torch.tensor([item["index"] for item in ok], dtype=torch.long),
            "failed": [item["failed"] for item in items if "failed" in item]}
