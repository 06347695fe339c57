"""The preparation command: checking pairs, split files, the report, flat-folder linking, re-encoding."""
import builtins
import json
import os

import av
import pytest

from data_loader.prepare import (REENCODE_PROFILES, check_pair, main, prepare_yttemporal, reencode_dataset,
                                  reencode_video)
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


def test_the_sampler_profile_keeps_the_source_frame_nearest_each_new_time(tmp_path):
    src, dst = str(tmp_path / "src.mp4"), str(tmp_path / "low.mp4")
    write_indexed_video(src, n=64, fps=8, size=(64, 48))  # 8 s; frame i shows at i / 8
    reencode_video(src, dst, short_side=400, keyframe_seconds=0.5, fps=3)  # 400: never upscaled
    with get_reader("pyav").open(dst) as video:
        assert video.fps == pytest.approx(3) and video.num_frames == 24  # n / 3 <= 63 / 8
        frames = video.read(list(range(24)))
    assert frames.shape[1:] == (48, 64, 3)
    nearest = [min(range(64), key=lambda i: (abs(i / 8 - n / 3), i)) for n in range(24)]
    assert [frame_index(f) for f in frames] == nearest
    with pytest.raises(ValueError, match="profile must be one of"):
        reencode_dataset(str(tmp_path), str(tmp_path / "out"), profile="fast")


def test_the_intra_profile_writes_8_fps_of_keyframes_in_display_order(tmp_path):
    src, dst = str(tmp_path / "src.mp4"), str(tmp_path / "intra.mp4")
    write_indexed_video(src, n=96, fps=24, size=(64, 48))  # 4 s; frame i shows at i / 24
    reencode_video(src, dst, short_side=400, **REENCODE_PROFILES["intra"])
    with av.open(dst) as container:
        stream = container.streams.video[0]
        assert not stream.codec_context.has_b_frames
        packets = [p for p in container.demux(stream) if p.size]
    assert len(packets) == 32 and all(p.is_keyframe for p in packets)
    assert [p.pts for p in packets] == sorted(p.pts for p in packets)
    with get_reader("pyav").open(dst) as video:
        assert video.fps == pytest.approx(8) and video.num_frames == 32
        assert [frame_index(f) for f in video.read([0, 31, 10, 11])] == [0, 93, 30, 33]


def test_an_official_split_is_kept_and_its_problems_reported(corpus, tmp_path):
    data_dir, _ = corpus
    meta = tmp_path / "official"
    meta.mkdir()
    listed = {"train": ["subset_0/data/v0.mp4", "subset_0/data/v5.mp4", "subset_9/data/gone.mp4"],
              "val": ["subset_0/data/v1.mp4", "subset_1/data/short.mp4"]}
    for split, names in listed.items():  # tab-separated with another column, as a downloaded file may be
        (meta / f"yttemporal_{split}.csv").write_text("Name\tother\n" + "".join(f"{n}\tx\n" for n in names))
    before = {s: (meta / f"yttemporal_{s}.csv").read_bytes() for s in listed}
    report = prepare_yttemporal(data_dir, str(meta), workers=1)
    assert {s: (meta / f"yttemporal_{s}.csv").read_bytes() for s in listed} == before  # untouched
    assert report["split"].startswith("official, kept") and report["dropped"] == 0
    assert report["train"] == 3 and report["val"] == 2 and report["kept"] == 2
    problems = {d["name"]: (d["reason"], d["split"]) for d in report["problem_items"]}
    assert problems == {"subset_0/data/v5.mp4": ("unreadable_video", ["train"]),
                        "subset_9/data/gone.mp4": ("missing_video", ["train"]),
                        "subset_1/data/short.mp4": ("too_short", ["val"])}
    assert alignment_cache_path(annotation_path(data_dir, "subset_0/data/v1.mp4")).exists()
    with pytest.raises(ValueError, match="needs --out-meta-dir"):
        prepare_yttemporal(data_dir, str(meta), workers=1, drop_bad=True)
    with pytest.raises(ValueError, match="fraction applies only to a split drawn here"):
        prepare_yttemporal(data_dir, str(meta), workers=1, val_fraction=0.1)
    out = tmp_path / "filtered"
    main(["yttemporal", "--data-dir", data_dir, "--meta-dir", str(meta), "--drop-bad", "--out-meta-dir", str(out),
          "--workers", "1"])
    assert (out / "yttemporal_train.csv").read_text().splitlines() == ["Name", "subset_0/data/v0.mp4"]
    assert (out / "yttemporal_val.csv").read_text().splitlines() == ["Name", "subset_0/data/v1.mp4"]
    assert {s: (meta / f"yttemporal_{s}.csv").read_bytes() for s in listed} == before


def test_a_derived_split_is_redrawn_but_an_edited_one_is_kept(corpus, tmp_path):
    data_dir, _ = corpus
    meta = tmp_path / "meta"
    first = prepare_yttemporal(data_dir, str(meta), val_fraction=0.2, workers=1)
    assert first["split"] == "derived"
    again = prepare_yttemporal(data_dir, str(meta), val_fraction=0.4, seed=1, workers=1)  # our own files: redrawn
    assert again["split"] == "derived" and again["val"] == 2
    (meta / "yttemporal_val.csv").write_text("Name\nsubset_0/data/v3.mp4\n")  # the user edits it: now theirs
    kept = prepare_yttemporal(data_dir, str(meta), workers=1)
    assert kept["split"].startswith("official") and kept["val"] == 1 and kept["train"] == again["train"]
    assert (meta / "yttemporal_val.csv").read_text() == "Name\nsubset_0/data/v3.mp4\n"


def test_the_synthetic_generators_split_is_ours_to_redraw(tmp_path):
    from data_loader.splits import is_derived_split, write_derived_split
    meta = tmp_path / "meta"
    write_derived_split(str(meta), "yttemporal", {"train": ["a.mp4", "b.mp4"], "val": ["c.mp4"]})
    assert (meta / "yttemporal_val.csv").read_text() == "Name\nc.mp4\n"
    assert is_derived_split(str(meta), "yttemporal_train.csv") and is_derived_split(str(meta), "yttemporal_val.csv")
    (meta / "yttemporal_val.csv").write_text("Name\nd.mp4\n")
    assert not is_derived_split(str(meta), "yttemporal_val.csv") and not is_derived_split(str(meta), "other.csv")
