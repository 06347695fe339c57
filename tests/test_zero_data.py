"""Readers of the official zero-shot metadata files (formats as the authors ship them, spec section 3) and the shared
evaluation frame sampler."""
import json
import os
import pickle

import numpy as np
import pytest

from downstream.zero_data import (MetadataError, k400_video_path, lsmdc_video_path, read_didemo, read_hmdb51,
                                  read_k400, read_label_names, read_lsmdc, read_msrvtt, read_plain_pickle,
                                  read_ssv2_mc, read_ucf101, uniform_indices)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


def test_uniform_indices_by_hand():
    assert uniform_indices(100, 12).tolist() == [3, 11, 20, 28, 36, 45, 53, 61, 70, 78, 86, 95]
    assert uniform_indices(5, 12).tolist() == [0, 1, 2, 3, 4]  # shorter videos: fewer frames (then zero padding)
    assert uniform_indices(24, 12).tolist() == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22]


def test_msrvtt_takes_the_pickled_caption_of_each_listed_video(tmp_path):
    data, meta = tmp_path / "data", tmp_path / "meta"
    split = data / "high-quality" / "structured-symlinks"
    write(str(split / "val_list_jsfusion.txt"), "video9\nvideo10\n")
    anns = [{"image_id": "video10", "caption": "c10a"}, {"image_id": "video9", "caption": "c9a"},
            {"image_id": "video0", "caption": "train only"}, {"image_id": "video10", "caption": "c10b"},
            {"image_id": "video9", "caption": "c9b"}]
    write(str(meta / "msrvtt" / "MSR_VTT.json"), json.dumps({"annotations": anns}))
    with open(split / "jsfusion_val_caption_idx.pkl", "wb") as f:
        pickle.dump({"video9": np.int64(1), "video10": 0, "video0": 0}, f, protocol=2)
    records = read_msrvtt(str(data), str(meta), check_rows=False)
    assert [(r["id"], r["text"]) for r in records] == [("video10", "c10a"), ("video9", "c9b")]
    assert records[0]["path"] == str(data / "videos" / "all" / "video10.mp4")
    with pytest.raises(MetadataError, match="val_list_jsfusion.txt lists 2 entries, the official set has 1000"):
        read_msrvtt(str(data), str(meta))


def test_plain_pickle_refuses_code(tmp_path):
    path = tmp_path / "evil.pkl"
    with open(path, "wb") as f:
        pickle.dump({"a": os.getcwd}, f)  # a reference to a callable
    with pytest.raises(MetadataError, match="evil.pkl is not a plain-data pickle: refusing to load"):
        read_plain_pickle(str(path))


def test_didemo_keeps_the_paragraph_and_detects_its_header(tmp_path):
    meta = tmp_path / "meta"
    write(str(meta / "didemo" / "DiDeMo_test.tsv"), "caption\tvideo\np one. p two.\tv/a.mp4\nq.\tv/b.mp4\n")
    records = read_didemo(str(tmp_path / "d"), str(meta))
    assert [(r["text"], r["id"]) for r in records] == [("p one. p two.", "v/a.mp4"), ("q.", "v/b.mp4")]
    write(str(meta / "didemo" / "DiDeMo_test.tsv"), "p one.\tv/a.mp4\nq.\tv/b.mp4\n")  # no header: nothing lost
    assert len(read_didemo(str(tmp_path / "d"), str(meta))) == 2
    assert len(read_didemo(str(tmp_path / "d"), str(meta), header="first_row")) == 1  # the official pandas read


def test_lsmdc_movie_folder_rule_and_headerless_file(tmp_path):
    assert lsmdc_video_path("1010_TITANIC_00.41.32.072-00.41.40.196") == \
        "1010_TITANIC/1010_TITANIC_00.41.32.072-00.41.40.196.avi"
    rows = [f"0001_A_B_00.00.0{i}.000-00.00.0{i}.500\t1\t2\t1\t2\tSomeone waves {i}." for i in range(3)]
    meta = tmp_path / "meta"
    write(str(meta / "lsmdc" / "LSMDC16_challenge_1000_publictect.csv"), "\n".join(rows) + "\n")
    records = read_lsmdc(str(tmp_path / "data"), str(meta), check_rows=False)
    assert [r["text"] for r in records] == ["Someone waves 0.", "Someone waves 1.", "Someone waves 2."]
    assert records[0]["path"] == str(tmp_path / "data" / "0001_A_B" / (records[0]["id"] + ".avi"))
    with pytest.raises(MetadataError, match="publictect.csv lists 3 entries, the official set has 1000"):
        read_lsmdc(str(tmp_path / "data"), str(meta))


def test_recognition_lists_labels_and_class_order(tmp_path):
    meta = tmp_path / "meta"
    prompt = meta / "hmdb51" / "prompt"
    write(str(prompt / "label2id.json"), '{"wave": 0, "brush hair": 1, "sit": 2}')
    write(str(prompt / "split_1_test_list.tsv"), "video\tlabel\nwave/a.avi\t1\nsit/b.avi\t3\n")
    records, names = read_hmdb51(str(tmp_path / "hmdb"), str(meta), check_rows=False)
    assert names == ["wave", "brush hair", "sit"]
    assert [(r["id"], r["label"]) for r in records] == [("wave/a.avi", 0), ("sit/b.avi", 2)]  # 1-based in the file
    write(str(prompt / "split_2_test_list.tsv"), "wave/a.avi\t4\n")
    with pytest.raises(MetadataError, match=r"split_2_test_list.tsv, line 1: label 4 outside the 3 classes"):
        read_hmdb51(str(tmp_path / "hmdb"), str(meta), split=2, check_rows=False)
    write(str(prompt / "split_3_test_list.tsv"), "video\tlabel\nwave/a.avi\tone\n")
    with pytest.raises(MetadataError, match=r"split_3_test_list.tsv, line 2: column 1 must be an integer label"):
        read_hmdb51(str(tmp_path / "hmdb"), str(meta), split=3, check_rows=False)
    with pytest.raises(MetadataError, match="split_1_test_list.tsv lists 2 entries, the official set has 1530"):
        read_hmdb51(str(tmp_path / "hmdb"), str(meta))

    ucf = meta / "ucf101" / "prompt"
    write(str(ucf / "label2id.json"), '{"A": 0, "B": 1}')
    write(str(ucf / "trainlist02_new.tsv"), "B/v_B_g01_c01.avi\t2\n")
    records, _ = read_ucf101(str(tmp_path / "ucf"), str(meta), split=2, part="train", check_rows=False)
    assert records == [{"id": "B/v_B_g01_c01.avi", "path": str(tmp_path / "ucf" / "B/v_B_g01_c01.avi"), "label": 1}]

    k400 = meta / "k400" / "prompt"
    write(str(k400 / "label2id.json"), '{"abseiling": 0, "air drumming": 1}')
    write(str(k400 / "kinetics400_val_list_videos.tsv"), "path\tlabel\nair drumming/x_1.mkv\t1\nabseiling/y.mp4\t0\n")
    records, _ = read_k400(str(tmp_path / "k"), str(meta))
    assert [(r["path"], r["label"]) for r in records] == [(str(tmp_path / "k" / "videos_val" / "x_1.mp4"), 1),
                                                          (str(tmp_path / "k" / "videos_val" / "y.mp4"), 0)]
    assert k400_video_path("c/z.mkv", "train") == os.path.join("train", "train", "z.mp4")


def test_label_ids_must_follow_file_order(tmp_path):
    path = write(str(tmp_path / "label2id.json"), '{"a": 1, "b": 0}')
    with pytest.raises(MetadataError, match="class 'a' has id 1 at position 0"):
        read_label_names(path)


def test_ssv2_mc_records_are_checked(tmp_path):
    meta = tmp_path / "meta"
    lines = [{"clip_name": "1.webm", "options": list("abcde"), "answer": 2},
             {"clip_name": "2.webm", "options": list("fghij"), "answer": 0}]
    path = write(str(meta / "ssv2" / "mc" / "val.jsonl"), "\n".join(json.dumps(x) for x in lines) + "\n")
    records = read_ssv2_mc(str(tmp_path / "SSV2"), str(meta))
    assert [(r["path"], r["answer"]) for r in records] == [(str(tmp_path / "SSV2" / "videos" / "1.webm"), 2),
                                                           (str(tmp_path / "SSV2" / "videos" / "2.webm"), 0)]
    lines[1]["options"] = list("fghi")
    write(path, "\n".join(json.dumps(x) for x in lines) + "\n")
    with pytest.raises(MetadataError, match=r"val.jsonl, line 2: 4 options, the first record has 5"):
        read_ssv2_mc(str(tmp_path / "SSV2"), str(meta))


def test_fields_are_read_as_the_official_pandas_read_them(tmp_path):
    """Quoted fields lose their quotes (doubled quotes become one), as in the official pd.read_csv(sep='\\t')."""
    import pandas as pd
    meta = tmp_path / "meta"
    text = ('caption\tvideo\n"Hi," she says.\tv/a.mp4\nplain "inner" quotes\tv/b.mp4\n'
            '"a ""quoted"" word"\tv/c.mp4\n')
    path = write(str(meta / "didemo" / "DiDeMo_test.tsv"), text)
    official = pd.read_csv(path, sep="\t")
    ours = read_didemo(str(tmp_path), str(meta))
    assert [r["text"] for r in ours] == list(official.iloc[:, 0])
    assert [r["id"] for r in ours] == list(official.iloc[:, 1])
