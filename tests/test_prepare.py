"""The preparation command: checking pairs, split files, the report, flat-folder linking, re-encoding."""
import builtins
import json
import os

import pytest

from data_loader.prepare import check_pair, main, prepare_yttemporal, reencode_video
from data_loader.readers import get_reader
from data_loader.transcripts import alignment_cache_path, load_transcript
from data_loader.yttemporal import annotation_path
from media import frame_index, write_indexed_video, write_yt_corpus


@pytest.fixture
def corpus(tmp_path):
    videos = {f"subset_0/data/v{i}.mp4": 12 for i in range(6)}
    videos["subset_1/data/late.mp4"] = {"info": {"duration": 12.0}, "subtitles": [{"word": "x", "time": 40.0}],
                                        "denoised": [{"cleanasr": "x"}]}
    videos["subset_1/data/short.mp4"] = 5
    videos["subset_1/data/noasr.mp4"] = {"info": {"duration": 12.0}, "denoised": []}
    videos["subset_1/data/long.mp4"] = {"info": {"duration": 30.0}, "subtitles": [{"word": "x", "time": 1.0}],
                                        "denoised": [{"cleanasr": "x"}]}
    data_dir, meta_dir = write_yt_corpus(str(tmp_path), videos, fps=4)
    open(os.path.join(data_dir, "videos", "subset_0", "data", "v5.mp4"), "w").close()
    write_indexed_video(os.path.join(data_dir, "videos", "subset_1", "data", "long.mp4"), n=48, fps=4)  # 12 s
    return data_dir, meta_dir


def test_bad_pairs_are_dropped_with_reasons_and_good_ones_split(corpus, tmp_path):
    data_dir, _ = corpus
    meta = str(tmp_path / "meta")
    report = prepare_yttemporal(data_dir, meta, val_fraction=0.2, workers=1)
    reasons = {os.path.basename(d["name"]): d["reason"] for d in report["dropped_items"]}
    assert reasons == {"v5.mp4": "unreadable_video", "late.mp4": "words_outside_duration",
                       "short.mp4": "too_short", "noasr.mp4": "bad_annotation", "long.mp4": "duration_mismatch"}
    assert report["kept"] == 5 and report["val"] == 1 and report["train"] == 4
    lines = {s: open(os.path.join(meta, f"yttemporal_{s}.csv")).read().splitlines() for s in ("train", "val")}
    assert lines["train"][0] == "Name" and lines["val"][0] == "Name"
    assert sorted(lines["train"][1:] + lines["val"][1:]) == [f"subset_0/data/v{i}.mp4" for i in range(5)]
    assert json.load(open(os.path.join(meta, "prepare_report.json")))["dropped"] == 5
    ann = os.path.join(data_dir, "videos", "subset_0", "annotations", "v0.json")
    assert alignment_cache_path(ann).exists()


def test_checking_a_pair_parses_its_annotation_once(corpus, monkeypatch):
    data_dir, _ = corpus
    name = "subset_0/data/v1.mp4"
    opened, real_open = [], builtins.open

    def recording_open(file, *args, **kwargs):
        opened.append(os.fspath(file))
        return real_open(file, *args, **kwargs)
    monkeypatch.setattr(builtins, "open", recording_open)
    result = check_pair((data_dir, name, "pyav", 8.0))
    monkeypatch.undo()
    assert result["reason"] is None and result["duration"] == 12.0 and result["words"] == 12
    assert opened.count(annotation_path(data_dir, name)) == 1
    transcript, duration = load_transcript(annotation_path(data_dir, name))  # from the cache just written
    assert duration == 12.0 and transcript.words == [f"s{s}" for s in range(12)]


def test_flat_folders_are_linked_into_the_official_layout(corpus, tmp_path):
    data_dir, _ = corpus
    flat_v, flat_a = tmp_path / "flat_v", tmp_path / "flat_a"
    flat_v.mkdir(), flat_a.mkdir()
    for i in range(3):
        os.symlink(os.path.join(data_dir, "videos", "subset_0", "data", f"v{i}.mp4"), flat_v / f"v{i}.mp4")
        if i < 2:
            os.symlink(os.path.join(data_dir, "videos", "subset_0", "annotations", f"v{i}.json"), flat_a / f"v{i}.json")
    out = str(tmp_path / "linked")
    main(["yttemporal", "--videos", str(flat_v), "--annotations", str(flat_a), "--data-dir", out,
          "--meta-dir", str(tmp_path / "m2"), "--val-fraction", "0", "--workers", "1"])
    report = json.load(open(tmp_path / "m2" / "prepare_report.json"))
    assert report["kept"] == 2 and report["dropped_by_reason"] == {"no_annotation": 1}
    assert os.path.exists(os.path.join(out, "videos", "subset_0", "annotations", "v1.json"))


def test_reencoding_keeps_every_frame_and_shrinks_the_short_side(corpus, tmp_path):
    data_dir, _ = corpus
    src = os.path.join(data_dir, "videos", "subset_0", "data", "v0.mp4")
    dst = str(tmp_path / "re" / "v0.mp4")
    reencode_video(src, dst, short_side=32)
    reader = get_reader("decord")
    with reader.open(src) as a, reader.open(dst) as b:
        assert b.num_frames == a.num_frames and b.fps == pytest.approx(a.fps)
        frames = b.read([0, 7, 30, b.num_frames - 1])
    assert frames.shape[1:] == (32, 42, 3)
    assert [frame_index(f) for f in frames] == [0, 7, 30, a.num_frames - 1]
