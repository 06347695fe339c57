"""Downstream datasets: list parsing, SSV2 segment and dense (VideoMAE) frame sampling, evaluation crops, view
order, failure handling, batching, and the UCF-101 / HMDB-51 list converters. Expected indices are derived by hand
in the comments."""
import os

import numpy as np
import pytest
import torch

from data_loader.base import SampleError
from data_loader.transforms import IMAGENET_MEAN, IMAGENET_STD
from downstream import lists
from downstream.datasets import (DATASETS, build_dataset, center_crop, collate_clips, dense_indices,
                                 dense_test_indices, read_video_list, resize_short_side, segment_indices,
                                 segment_test_indices, long_side_crop, to_normalized_tensor)

from media import frame_index, write_indexed_video

SMALL = dict(num_frames=8, input_size=32, short_side_size=32)


def decoded_indices(clip):
    """Frame indices shown by a normalised (3, T, S, S) clip of `write_indexed_video` frames."""
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1, 1)
    frames = ((clip * std + mean) * 255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 3, 0).numpy()
    return [frame_index(f) for f in frames]


def record_indices(frames, rng):
    """A stand-in train transform: the indices of the frames it was given."""
    return torch.tensor([frame_index(f) for f in frames])


@pytest.fixture(scope="module")
def ssv2(tmp_path_factory):
    """SSV2 layout: <root>/sthv2_*_list_videos.txt, videos in <root>/videos; a.mp4 has 40 frames, b.mp4 43."""
    root = tmp_path_factory.mktemp("ssv2")
    (root / "videos").mkdir()
    write_indexed_video(root / "videos" / "a.mp4", n=40)
    write_indexed_video(root / "videos" / "b.mp4", n=43)
    (root / "sthv2_train_list_videos.txt").write_text("a.mp4 3\nb.mp4 173\n")
    (root / "sthv2_val_list_videos.txt").write_text("a.mp4 5\n\nb.mp4 7\n")
    return root


@pytest.fixture(scope="module")
def ucf(tmp_path_factory):
    """UCF-style layout: MPEG-4 AVI videos under <videos>/<class>/, lists in <lists>/{train,val,test}.csv."""
    base = tmp_path_factory.mktemp("ucf")
    (base / "videos" / "Fencing").mkdir(parents=True)
    write_indexed_video(base / "videos" / "Fencing" / "v_a.avi", n=40, codec="mpeg4", container="avi")
    (base / "lists").mkdir()
    for name in ("train.csv", "val.csv", "test.csv"):
        (base / "lists" / name).write_text("Fencing/v_a.avi 27\n")
    return base


# ---- sampling rules ----

def test_segment_indices_take_one_frame_per_equal_segment():
    # n=40, 8 segments of avg=5: centre = 5i + 2
    assert segment_indices(40, 8).tolist() == [2, 7, 12, 17, 22, 27, 32, 37]
    # n=43: still avg=5, the 3 tail frames are never used; random offsets cover 0..4 within each segment
    draws = np.stack([segment_indices(43, 8, np.random.default_rng(s)) for s in range(200)])
    offsets = draws - 5 * np.arange(8)
    assert offsets.min() == 0 and offsets.max() == 4 and draws.max() <= 39
    assert all(set(offsets[:, i]) == {0, 1, 2, 3, 4} for i in range(8))


def test_short_videos_give_copies_of_frame_zero_unless_spread():
    rng = np.random.default_rng(0)
    assert segment_indices(5, 8, rng).tolist() == [0] * 8  # the official (dead elif branch)
    # spread: floor(i * 5 / 8) for i = 0..7
    assert segment_indices(5, 8, rng, short_videos="spread").tolist() == [0, 0, 1, 1, 2, 3, 3, 4]


def test_segment_test_views_are_segment_starts_and_midpoints():
    # tick = 40 / 16 = 2.5: starts floor(2.5x), midpoints floor(2.5x + 1.25)
    starts = [0, 2, 5, 7, 10, 12, 15, 17, 20, 22, 25, 27, 30, 32, 35, 37]
    mids = [1, 3, 6, 8, 11, 13, 16, 18, 21, 23, 26, 28, 31, 33, 36, 38]
    assert segment_test_indices(40, 16, 0, 2).tolist() == starts
    assert segment_test_indices(40, 16, 1, 2).tolist() == mids
    for n in (16, 23, 40, 97, 203):  # the official rule: sort starts + midpoints, then take every second one
        tick = n / 16
        official = sorted([int(tick / 2.0 + tick * x) for x in range(16)] + [int(tick * x) for x in range(16)])
        for chunk in (0, 1):
            assert segment_test_indices(n, 16, chunk, 2).tolist() == official[chunk::2]


def test_segment_test_views_for_other_segment_counts():
    # tick = 3 with three views: offsets 0, 1, 2 within each segment
    for chunk in range(3):
        assert segment_test_indices(30, 10, chunk, 3).tolist() == [3 * x + chunk for x in range(10)]
    assert segment_test_indices(30, 10, 0, 1).tolist() == [3 * x for x in range(10)]


def test_dense_indices_follow_videomae():
    # window of 4 * 2 = 8 frames ending at e in [8, 39]: linspace(e - 8, e, 4) clipped to e - 1, floored
    # centre: e = (8 + 39) // 2 = 23 -> 15, 17.67, 20.33, 23 -> [15, 17, 20, 22]
    assert dense_indices(40, 4, 2).tolist() == [15, 17, 20, 22]
    ends = set()
    for seed in range(100):
        got = dense_indices(40, 4, 2, np.random.default_rng(seed)).tolist()
        e = got[0] + 8
        assert got == [e - 8, int(e - 8 + 8 / 3), int(e - 8 + 16 / 3), e - 1], got
        ends.add(e)
    assert min(ends) == 8 and max(ends) == 39
    # n=10 <= 16: linspace(0, 10, 10 // 2 = 5) = 0, 2.5, 5, 7.5, 10, padded with 10, all clipped to 9
    assert dense_indices(10, 8, 2, np.random.default_rng(0)).tolist() == [0, 2, 5, 7, 9, 9, 9, 9]
    assert dense_indices(3, 4, 4).tolist() == [2, 2, 2, 2]  # fewer frames than the stride: the last frame


def test_dense_test_views_are_evenly_spaced_windows():
    # stride 4 over 40 frames: 0, 4, ..., 36 (10 frames); 2 windows of 4: step (10 - 4) / 1 = 6
    assert dense_test_indices(40, 4, 4, 0, 2).tolist() == [0, 4, 8, 12]
    assert dense_test_indices(40, 4, 4, 1, 2).tolist() == [24, 28, 32, 36]
    assert dense_test_indices(40, 4, 4, 1, 3).tolist() == [12, 16, 20, 24]  # step 3
    assert dense_test_indices(40, 4, 4, 0, 1).tolist() == [12, 16, 20, 24]  # one view: the middle window
    # 10 frames at stride 4: 0, 4, 8 padded with 8
    assert dense_test_indices(10, 4, 4, 1, 2).tolist() == [0, 4, 8, 8]


# ---- evaluation transforms ----

def test_resize_short_side_keeps_the_aspect_ratio_with_truncation():
    assert resize_short_side(np.zeros((1, 240, 427, 3), np.uint8), 224).shape == (1, 224, 398, 3)
    assert resize_short_side(np.zeros((2, 64, 48, 3), np.uint8), 32).shape == (2, 42, 32, 3)
    flat = np.full((1, 48, 64, 3), 77, np.uint8)
    assert (resize_short_side(flat, 32) == 77).all()
    same = np.zeros((1, 32, 50, 3), np.uint8)
    assert resize_short_side(same, 32) is same


def test_test_crops_along_the_long_side():
    wide = np.broadcast_to(np.arange(96, dtype=np.uint8)[None, None, :, None], (1, 32, 96, 3))
    # offsets int(k * (96 - 32) / 2) = 0, 32, 64
    assert [long_side_crop(wide, 32, k, 3)[0, 0, 0, 0] for k in range(3)] == [0, 32, 64]
    assert long_side_crop(wide, 32, 2, 3).shape == (1, 32, 32, 3)
    # four crops: int(k * 64 / 3) = 0, 21, 42, 64; one crop: the centre, 32
    assert [long_side_crop(wide, 32, k, 4)[0, 0, 0, 0] for k in range(4)] == [0, 21, 42, 64]
    assert long_side_crop(wide, 32, 0, 1)[0, 0, 0, 0] == 32
    tall = np.ascontiguousarray(wide.transpose(0, 2, 1, 3))  # rows carry the pattern
    assert [long_side_crop(tall, 32, k, 3)[0, 0, 0, 0] for k in range(3)] == [0, 32, 64]
    with pytest.raises(ValueError, match="short side resized to 24"):
        long_side_crop(wide, 24, 0, 3)


def test_center_crop_rounds_like_the_official():
    frames = np.broadcast_to(np.arange(41, dtype=np.uint8)[None, None, :, None], (1, 32, 41, 3))
    assert center_crop(frames, 32)[0, 0, 0, 0] == 4  # round(9 / 2) = 4 (Python rounds halves to even)
    frames = np.broadcast_to(np.arange(43, dtype=np.uint8)[None, None, :, None], (1, 32, 43, 3))
    assert center_crop(frames, 32)[0, 0, 0, 0] == 6  # round(5.5) = 6


def test_normalisation_and_layout():
    frames = np.zeros((2, 4, 5, 3), np.uint8)
    frames[1, :, :, 0] = 255
    x = to_normalized_tensor(frames)
    assert x.shape == (3, 2, 4, 5) and x.dtype == torch.float32
    assert torch.allclose(x[0, 1], torch.full((4, 5), (1 - 0.485) / 0.229))
    assert torch.allclose(x[2, 0], torch.full((4, 5), -0.406 / 0.225))


# ---- datasets end to end ----

def test_registry():
    assert {k: (v.nb_classes, v.sampling, v.flip) for k, v in DATASETS.items()} == {
        "SSV2": (174, "segment", False), "Kinetics-400": (400, "dense", True), "UCF101": (101, "dense", True),
        "HMDB51": (51, "dense", True)}
    assert DATASETS["SSV2"].lists["validation"] == DATASETS["SSV2"].lists["test"] == "sthv2_val_list_videos.txt"


def test_ssv2_validation_centre_frames_and_crop(ssv2):
    data = build_dataset("SSV2", "validation", data_path=str(ssv2), val_sampling="center", **SMALL)
    assert len(data) == 2 and data.nb_classes == 174
    item = data[0]
    assert item["video"].shape == (3, 8, 32, 32) and item["video"].dtype == torch.float32
    assert (item["label"], item["id"], item["chunk"], item["split"]) == (5, "a", 0, 0)
    assert decoded_indices(item["video"]) == [2, 7, 12, 17, 22, 27, 32, 37]


def test_ssv2_validation_offsets_are_random_by_default_and_seeded(ssv2):
    data = build_dataset("SSV2", "validation", data_path=str(ssv2), seed=3, **SMALL)
    draws = set()
    for epoch in range(6):
        data.set_epoch(epoch)
        got = decoded_indices(data[1]["video"])  # b: 43 frames, avg 5
        assert all(5 * i <= f <= 5 * i + 4 for i, f in enumerate(got)), got
        draws.add(tuple(got))
    assert len(draws) > 1
    data.set_epoch(2)
    again = build_dataset("SSV2", "validation", data_path=str(ssv2), seed=3, **SMALL)
    again.set_epoch(2)
    assert torch.equal(data[1]["video"], again[1]["video"])


def test_ssv2_train_passes_sampled_frames_to_the_transform(ssv2):
    data = build_dataset("SSV2", "train", data_path=str(ssv2), train_transform=record_indices, **SMALL)
    item = data[1]
    assert item["label"] == 173 and item["skipped"] == []
    assert all(5 * i <= f <= 5 * i + 4 for i, f in enumerate(item["video"].tolist()))
    with pytest.raises(ValueError, match="train_transform"):
        build_dataset("SSV2", "train", data_path=str(ssv2), **SMALL)


def test_ssv2_test_views_order_count_and_frames(ssv2):
    data = build_dataset("SSV2", "test", data_path=str(ssv2), num_frames=16, short_side_size=32)
    assert len(data) == 2 * 2 * 3
    # segment-major, then crop, then video
    expected = [(video, chunk, split) for chunk in range(2) for split in range(3) for video in range(2)]
    assert [data.view(i) for i in range(len(data))] == expected
    assert [(data[i]["id"], data[i]["chunk"], data[i]["split"]) for i in (1, 4, 11)] == \
        [("b", 0, 0), ("a", 0, 2), ("b", 1, 2)]
    item = data[6 + 2]  # chunk 1, split 1, video a
    assert (item["chunk"], item["split"], item["id"], item["label"]) == (1, 1, "a", 5)
    assert item["video"].shape == (3, 16, 32, 32)
    assert decoded_indices(item["video"]) == [1, 3, 6, 8, 11, 13, 16, 18, 21, 23, 26, 28, 31, 33, 36, 38]
    assert decoded_indices(data[0]["video"]) == [0, 2, 5, 7, 10, 12, 15, 17, 20, 22, 25, 27, 30, 32, 35, 37]


def test_test_crops_of_a_decoded_video(ssv2):
    # 48x64 -> 32x42: crops at int(k * 10 / 2) = 0, 5, 10 along the width
    data = build_dataset("SSV2", "test", data_path=str(ssv2), num_frames=2, short_side_size=32)
    views = [data[i]["video"] for i in (0, 2, 4)]  # video a, chunk 0, crops 0, 1, 2
    with data._reader.other.open(data.paths[0]) as video:
        frames = resize_short_side(video.read([0, 20]), 32)
    for k, view in zip(range(3), views):
        assert torch.equal(view, to_normalized_tensor(frames[:, :, 5 * k:5 * k + 32]))


def test_dense_dataset_reads_avi_with_pyav(ucf):
    common = dict(data_path=str(ucf / "lists"), video_root=str(ucf / "videos"), num_frames=4, sampling_rate=4,
                  input_size=32, short_side_size=32)
    test = build_dataset("ucf101", "test", **common)
    assert test._reader.avi.name == "pyav" and len(test) == 6
    assert decoded_indices(test[0]["video"]) == [0, 4, 8, 12]
    assert decoded_indices(test[3]["video"]) == [24, 28, 32, 36]  # chunk 1
    assert test[0]["id"] == "Fencing/v_a"
    val = build_dataset("UCF101", "validation", val_sampling="center", **common)
    # window of 16 ending at (16 + 39) // 2 = 27: linspace(11, 27, 4) = 11, 16.33, 21.67, 27 -> clip 26
    assert decoded_indices(val[0]["video"]) == [11, 16, 21, 26]
    train = build_dataset("UCF101", "train", train_transform=record_indices, **common)
    got = train[0]["video"].tolist()
    end = got[0] + 16
    assert got == [end - 16, int(end - 16 + 16 / 3), int(end - 16 + 32 / 3), end - 1]


# ---- lists and configuration errors ----

def test_list_parsing_errors(tmp_path):
    path = tmp_path / "list.txt"
    with pytest.raises(ValueError, match="video list not found"):
        read_video_list(str(path), 10)
    path.write_text("a.mp4 1\nb.mp4\n")
    with pytest.raises(ValueError, match=r"list.txt, line 2: expected"):
        read_video_list(str(path), 10)
    path.write_text("a.mp4 one\n")
    with pytest.raises(ValueError, match="line 1: expected"):
        read_video_list(str(path), 10)
    path.write_text("a.mp4 1\nb.mp4 10\n")
    with pytest.raises(ValueError, match=r"line 2: label 10 outside \[0, 10\)"):
        read_video_list(str(path), 10)
    path.write_text("a.mp4 -1\n")
    with pytest.raises(ValueError, match="label -1 outside"):
        read_video_list(str(path), 10)
    path.write_text("\n\n")
    with pytest.raises(ValueError, match="lists no videos"):
        read_video_list(str(path), 10)
    path.write_text("dir with space/a.mp4 2\n\nb.mp4 0\n")
    assert read_video_list(str(path), 10) == [("dir with space/a.mp4", 2), ("b.mp4", 0)]


def test_dataset_configuration_errors(ssv2, ucf, tmp_path):
    with pytest.raises(ValueError, match="Kinetics-400, UCF101, HMDB51"):
        build_dataset("Kinetics", "validation", data_path=str(ssv2))
    with pytest.raises(ValueError, match=r"line 3: label 7 outside \[0, 6\)"):  # fewer classes than the list uses
        build_dataset("SSV2", "validation", data_path=str(ssv2), nb_classes=6)
    assert build_dataset("SSV2", "validation", data_path=str(ssv2), nb_classes=8).nb_classes == 8  # a subset
    (tmp_path / "val.csv").write_text("Fencing/v_a.avi 0\nFencing/v_a.avi 51\n")
    with pytest.raises(ValueError, match=r"val.csv, line 2: label 51 outside \[0, 51\)"):
        build_dataset("HMDB51", "validation", data_path=str(tmp_path), video_root=str(ucf / "videos"))
    with pytest.raises(ValueError, match="video list not found.*sthv2_val_list_videos.txt"):
        build_dataset("SSV2", "test", data_path=str(tmp_path))
    with pytest.raises(ValueError, match="video folder not found"):
        build_dataset("UCF101", "test", data_path=str(ucf / "lists"), video_root=str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="mode must be one of"):
        build_dataset("SSV2", "val", data_path=str(ssv2))
    with pytest.raises(ValueError, match="input_size 64 cannot be centre-cropped"):
        build_dataset("SSV2", "validation", data_path=str(ssv2), input_size=64, short_side_size=32)
    with pytest.raises(ValueError, match="test_num_crop must be at least 1"):
        build_dataset("SSV2", "test", data_path=str(ssv2), test_num_crop=0)
    listed = tmp_path / "mine.txt"
    listed.write_text("a.mp4 0\n")
    data = build_dataset("SSV2", "validation", data_path=str(tmp_path), list_file=str(listed),
                         video_root=str(ssv2 / "videos"), **SMALL)
    assert len(data) == 1 and data[0]["video"].shape == (3, 8, 32, 32)


# ---- failures ----

@pytest.fixture
def broken(tmp_path, ssv2):
    """SSV2 layout with a good video, a missing one and a zero-byte one."""
    (tmp_path / "videos").mkdir()
    os.symlink(ssv2 / "videos" / "a.mp4", tmp_path / "videos" / "good.mp4")
    (tmp_path / "videos" / "empty.mp4").write_bytes(b"")
    text = "good.mp4 1\nmissing.mp4 2\nempty.mp4 3\n"
    for name in ("sthv2_train_list_videos.txt", "sthv2_val_list_videos.txt"):
        (tmp_path / name).write_text(text)
    return tmp_path


@pytest.mark.parametrize("mode", ["validation", "test"])
def test_unreadable_videos_fail_in_evaluation(broken, mode):
    data = build_dataset("SSV2", mode, data_path=str(broken), **SMALL)
    videos = 3
    for index in range(len(data)):
        item = data[index]
        name = ["good.mp4", "missing.mp4", "empty.mp4"][index % videos]
        if name == "good.mp4":
            assert item["label"] == 1 and item["id"] == "good"
            continue
        assert set(item) == {"failed"}
        assert item["failed"]["name"] == name and item["failed"]["reason"] == "unreadable_video"
        assert ("not found" if name == "missing.mp4" else "empty file") in item["failed"]["error"]


def test_unreadable_videos_are_replaced_in_training(broken):
    data = build_dataset("SSV2", "train", data_path=str(broken), train_transform=record_indices, **SMALL)
    for index in (1, 2):
        item = data[index]
        assert item["label"] == 1  # the only readable video, with its own label
        assert item["skipped"] and all(r["name"] in ("missing.mp4", "empty.mp4") for r in item["skipped"])
        assert item["skipped"][0]["name"] == ["good.mp4", "missing.mp4", "empty.mp4"][index]


@pytest.mark.parametrize("mode", ["train", "validation", "test"])
def test_strict_loading_raises(broken, mode):
    data = build_dataset("SSV2", mode, data_path=str(broken), loading="strict", train_transform=record_indices,
                         **SMALL)
    assert data[0]["label"] == 1
    with pytest.raises(SampleError, match="missing.mp4"):
        data[1]


def test_collate_clips():
    good = [{"video": torch.full((3, 2, 4, 4), float(i)), "label": i, "id": f"v{i}", "chunk": i % 2, "split": 2,
             "skipped": [{"name": "x", "reason": "unreadable_video", "error": "e"}] if i == 1 else []}
            for i in range(2)]
    failed = {"failed": {"name": "bad", "reason": "unreadable_video", "error": "e"}}
    batch = collate_clips([good[0], failed, good[1]])
    assert batch["video"].shape == (2, 3, 2, 4, 4) and batch["video"][1].eq(1).all()
    assert batch["label"].tolist() == [0, 1] and batch["label"].dtype == torch.long
    assert batch["id"] == ["v0", "v1"] and batch["chunk"].tolist() == [0, 1] and batch["split"].tolist() == [2, 2]
    assert [r["name"] for r in batch["failed"]] == ["bad"] and [r["name"] for r in batch["skipped"]] == ["x"]
    empty = collate_clips([failed, failed])
    assert empty["video"] is None and empty["label"].numel() == 0 and len(empty["failed"]) == 2


# ---- converters ----

def _touch(root, *paths):
    for p in paths:
        os.makedirs(os.path.dirname(os.path.join(root, p)), exist_ok=True)
        open(os.path.join(root, p), "wb").close()


@pytest.fixture
def ucf_splits(tmp_path):
    root, splits = tmp_path / "UCF101", tmp_path / "ucfTrainTestlist"
    splits.mkdir()
    (splits / "classInd.txt").write_text("1 ApplyEyeMakeup\r\n2 Basketball\r\n3 Fencing\r\n")
    (splits / "trainlist01.txt").write_text("Basketball/v_b1.avi 2\r\nApplyEyeMakeup/v_a1.avi 1\r\n\r\n")
    (splits / "testlist01.txt").write_text("Fencing/v_f1.avi\r\nApplyEyeMakeup/v_a2.avi\r\n")
    _touch(root, "Basketball/v_b1.avi", "ApplyEyeMakeup/v_a1.avi", "Fencing/v_f1.avi", "ApplyEyeMakeup/v_a2.avi")
    return root, splits


def test_ucf101_converter(ucf_splits, tmp_path, capsys):
    root, splits = ucf_splits
    out = tmp_path / "out"
    counts = lists.main(["ucf101", "--root", str(root), "--splits", str(splits), "--split", "1", "--out", str(out)])
    assert counts == {"classes": 3, "train": 2, "test": 2}
    assert "3 classes, 2 train and 2 test videos" in capsys.readouterr().out
    assert (out / "train.csv").read_text() == "Basketball/v_b1.avi 1\nApplyEyeMakeup/v_a1.avi 0\n"
    assert (out / "val.csv").read_text() == (out / "test.csv").read_text() == \
        "Fencing/v_f1.avi 2\nApplyEyeMakeup/v_a2.avi 0\n"


def test_ucf101_converter_errors(ucf_splits, tmp_path):
    root, splits = ucf_splits
    out = str(tmp_path / "out")
    os.remove(root / "Fencing" / "v_f1.avi")
    with pytest.raises(ValueError, match="1 listed videos are missing.*Fencing/v_f1.avi"):
        lists.convert("ucf101", str(root), str(splits), 1, out)
    assert lists.convert("ucf101", str(root), str(splits), 1, out, check_videos=False)["test"] == 2
    (splits / "trainlist01.txt").write_text("Basketball/v_b1.avi 1\n")
    with pytest.raises(ValueError, match="trainlist01.txt, line 1: label 1 disagrees"):
        lists.convert("ucf101", str(root), str(splits), 1, out, check_videos=False)
    (splits / "trainlist01.txt").write_text("Fencing/v_f1.avi 3\n")
    with pytest.raises(ValueError, match="in both train and the test split"):
        lists.convert("ucf101", str(root), str(splits), 1, out, check_videos=False)
    (splits / "testlist01.txt").write_text("Golf/v_g1.avi\n")
    with pytest.raises(ValueError, match="testlist01.txt, line 1: 'Golf/v_g1.avi' is not under a class folder"):
        lists.convert("ucf101", str(root), str(splits), 1, out, check_videos=False)
    with pytest.raises(ValueError, match="split file not found.*trainlist02.txt"):
        lists.convert("ucf101", str(root), str(splits), 2, out)


def test_hmdb51_converter(tmp_path):
    root, splits, out = tmp_path / "HMDB51", tmp_path / "splits", tmp_path / "out"
    splits.mkdir()
    # classes sorted: climb (0), climb_stairs (1), wave (2)
    (splits / "wave_test_split1.txt").write_text("w1.avi 1 \nw2.avi 2 \nw3.avi 0 \n")
    (splits / "climb_test_split1.txt").write_text("c1.avi 2\nc2.avi 1\n")
    (splits / "climb_stairs_test_split1.txt").write_text("s1.avi 1\n")
    (splits / "wave_test_split2.txt").write_text("w1.avi 2\n")
    _touch(root, "wave/w1.avi", "wave/w2.avi", "climb/c1.avi", "climb/c2.avi", "climb_stairs/s1.avi")
    counts = lists.convert("hmdb51", str(root), str(splits), 1, str(out))
    assert counts == {"classes": 3, "train": 3, "test": 2}
    assert (out / "train.csv").read_text() == "climb/c2.avi 0\nclimb_stairs/s1.avi 1\nwave/w1.avi 2\n"
    assert (out / "val.csv").read_text() == (out / "test.csv").read_text() == "climb/c1.avi 0\nwave/w2.avi 2\n"
    (splits / "climb_test_split1.txt").write_text("c1.avi 2\nc2.avi 3\n")
    with pytest.raises(ValueError, match=r"climb_test_split1.txt, line 2: expected '<video> <0\|1\|2>'"):
        lists.convert("hmdb51", str(root), str(splits), 1, str(out))
    (splits / "climb_test_split1.txt").write_text("c1.avi 2\nc1.avi 2\n")
    with pytest.raises(ValueError, match="climb/c1.avi is listed twice in the test split"):
        lists.convert("hmdb51", str(root), str(splits), 1, str(out))
    with pytest.raises(ValueError, match="no \\*_test_split3.txt files"):
        lists.convert("hmdb51", str(root), str(splits), 3, str(out))
