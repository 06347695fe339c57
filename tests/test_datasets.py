"""YT-Temporal, WebVid and CC3M datasets, collate and loaders, on small generated corpora."""
import os

import numpy as np
import pytest
import torch
from PIL import Image

from data_loader.base import SampleError
from data_loader.collate import TextVideoCollator
from data_loader.loader import AlternatingLoader, build_dataloader, build_dataset, set_epoch
from data_loader.masking import build_masker
from data_loader.tokenizers import HuggingFaceTokenizer
from data_loader.transforms import IMAGENET_MEAN, IMAGENET_STD
from data_loader.yttemporal import YTTemporal
from media import frame_index, write_indexed_video, write_tokenizer, write_yt_corpus

FPS = 4


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    data_dir, meta_dir = write_yt_corpus(str(root), {"subset_0/data/a.mp4": 30, "subset_0/data/b.mp4": 40,
                                                     "subset_1/data/c.mp4": 28}, fps=FPS)
    tokenizer = HuggingFaceTokenizer(write_tokenizer(str(root / "tok"), [f"s{i}" for i in range(40)] + ["a", "dog"]))
    return {"root": root, "data_dir": data_dir, "meta_dir": meta_dir, "tokenizer": tokenizer}


def yt(corpus, **kw):
    args = dict(data_dir=corpus["data_dir"], meta_dir=corpus["meta_dir"], input_res=32, split="train",
                masker=build_masker(mask_ratio=0.75, input_res=32, patch_size=8))
    args.update(kw)
    return YTTemporal(**args)


def frame_indices(video):
    """Recover the written frame indices from normalised (T, 3, H, W) frames."""
    x = video * torch.tensor(IMAGENET_STD).view(3, 1, 1) + torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    return [frame_index((f.permute(1, 2, 0).numpy() * 255)) for f in x]


def words_seconds(text):
    return [int(w[1:]) for w in text.split()]


@pytest.mark.parametrize("split", ["train", "val"])
def test_yt_sample_follows_the_official_rules(corpus, split):
    ds = yt(corpus, split=split)
    for index in range(len(ds)):
        s = ds[index]
        assert s["skipped"] == [] and len(s["text"]) == 4
        np.testing.assert_array_equal(s["label"], np.arange(4))
        assert s["video"].shape == (16, 3, 32, 32) and s["keep_ind"].shape == (8, 4)
        seconds = [words_seconds(t) for t in s["text"]]
        assert all(seconds), "every 3-5 s window holds at least two words here"
        for earlier, later in zip(seconds, seconds[1:]):  # transcripts in temporal order, gaps between them
            assert max(earlier) < min(later) - 1
        if split == "train":
            continue  # random crops: the frame-index pattern is read from centre crops only
        times = np.array(frame_indices(s["video"])) / FPS
        assert np.all(np.diff(times) > 0)
        # frames spread over the whole span of the four windows (fps estimated as frames / int(duration))
        assert times[0] >= min(seconds[0]) - 0.5 - 1 and times[-1] <= max(seconds[-1]) + 1.5
        assert times[-1] - times[0] > 0.7 * (max(seconds[-1]) - min(seconds[0]))


def test_yt_samples_are_seeded_per_epoch(corpus):
    ds = yt(corpus)
    a, b = ds[0], ds[0]
    assert a["text"] == b["text"] and torch.equal(a["video"], b["video"])
    np.testing.assert_array_equal(a["keep_ind"], b["keep_ind"])
    draws = set()
    for epoch in range(6):
        ds.set_epoch(epoch)
        draws.add(tuple(ds[0]["text"]))
    assert len(draws) > 1
    assert yt(corpus, seed=1)[0]["text"] != a["text"] or not np.array_equal(yt(corpus, seed=1)[0]["keep_ind"],
                                                                             a["keep_ind"])


@pytest.fixture
def broken_corpus(tmp_path):
    videos = {"subset_0/data/good.mp4": 30, "subset_0/data/missing.mp4": 30, "subset_0/data/empty.mp4": 30,
              "subset_0/data/cut.mp4": 30, "subset_0/data/noasr.mp4": {"info": {"duration": 30.0}, "denoised": []},
              "subset_0/data/short.mp4": 4, "subset_0/data/silent.mp4": {  # speech only after the last possible window
                  "info": {"duration": 30.0}, "subtitles": [{"word": "late", "time": 29.9}],
                  "denoised": [{"cleanasr": "late"}]}}
    data_dir, meta_dir = write_yt_corpus(str(tmp_path), videos, fps=FPS)
    vdir = os.path.join(data_dir, "videos", "subset_0", "data")
    os.remove(os.path.join(vdir, "missing.mp4"))
    open(os.path.join(vdir, "empty.mp4"), "w").close()
    with open(os.path.join(vdir, "cut.mp4"), "r+b") as f:
        f.truncate(os.path.getsize(f.name) // 3)
    return {"data_dir": data_dir, "meta_dir": meta_dir}


def test_training_replaces_broken_samples_and_counts_why(broken_corpus):
    ds = yt(broken_corpus)
    reasons = {}
    for index in range(len(ds)):
        s = ds[index]
        assert s["name"] in ("subset_0/data/good.mp4", "subset_0/data/silent.mp4")  # only loadable samples
        for r in s["skipped"]:
            reasons[r["name"].split("/")[-1]] = r["reason"]
            stem = os.path.splitext(os.path.basename(r["name"]))[0]
            assert stem in r["error"] or r["reason"] == "too_short"
    assert reasons["missing.mp4"] == "unreadable_video" and reasons["empty.mp4"] == "unreadable_video"
    assert reasons["cut.mp4"] == "unreadable_video" and reasons["noasr.mp4"] == "bad_annotation"
    assert reasons["short.mp4"] == "too_short"


def test_empty_transcripts_are_kept_as_the_official_unless_min_words(broken_corpus):
    ds = yt(broken_corpus)
    silent = ds._names.index("subset_0/data/silent.mp4")
    assert ds[silent]["text"] == ["", "", "", ""]
    strict_words = yt(broken_corpus, min_words=1)
    s = strict_words[silent]
    assert s["name"] == "subset_0/data/good.mp4"
    assert [r["reason"] for r in s["skipped"]][0] == "empty_transcript"


def test_validation_never_resamples_and_strict_mode_raises(broken_corpus, corpus):
    val = yt(broken_corpus, split="val")
    missing = val._names.index("subset_0/data/missing.mp4")
    record = val[missing]["failed"]
    assert record["reason"] == "unreadable_video" and "missing.mp4" in record["error"]
    strict = yt(broken_corpus, loading="strict")
    with pytest.raises(SampleError, match="missing.mp4"):
        strict[missing]
    batch = TextVideoCollator(corpus["tokenizer"])([val[missing], val[val._names.index("subset_0/data/good.mp4")]])
    assert batch["name"] == ["subset_0/data/good.mp4"] and batch["video"].shape[0] == 1
    assert [r["name"] for r in batch["skipped"]] == ["subset_0/data/missing.mp4"]


def test_collate_orders_text_transcript_major(corpus):
    ds = yt(corpus)
    samples = [ds[i] for i in range(3)]
    batch = TextVideoCollator(corpus["tokenizer"])(samples)
    assert batch["video"].shape == (3, 16, 3, 32, 32) and batch["keep_ind"].shape == (3, 8, 4)
    assert batch["label"].tolist() == [[0, 1, 2, 3]] * 3
    ids = batch["text"]["input_ids"]
    assert ids.shape[0] == 12
    for k in range(4):
        for b in range(3):
            decoded = corpus["tokenizer"].decode(ids[k * 3 + b])
            assert decoded.split() == samples[b]["text"][k].split()
    short = TextVideoCollator(HuggingFaceTokenizer(corpus["tokenizer"].name, max_length=4))(samples)
    assert short["text"]["input_ids"].shape[1] == 4


def test_tokenizer_vocabulary_is_checked(corpus, tmp_path):
    with pytest.raises(ValueError, match="outside the embedding table"):
        HuggingFaceTokenizer(corpus["tokenizer"].name, vocab_size=10)


def official_args(corpus, **kw):
    args = {"dataset_name": "YTTemporal", "data_dir": corpus["data_dir"], "meta_dir": corpus["meta_dir"],
            "reader": "decord", "shuffle": True, "num_workers": 0, "batch_size": 2, "split": "train", "cut": "2M",
            "subsample": 1, "text_params": {"input": "text"}, "patch_size": 8,
            "video_params": {"input_res": 32, "num_frames": 4, "loading": "lax"}}
    args.update(kw)
    return args


def test_loader_from_official_args_splits_ranks_and_reshuffles(corpus):
    args = official_args(corpus, batch_size=1)
    args.pop("subsample")
    names = []
    for rank in range(2):
        loader = build_dataloader(args, corpus["tokenizer"], rank=rank, world_size=2)
        assert len(loader) == 1  # 3 videos, drop_last: one per rank
        names += [n for batch in loader for n in batch["name"]]
    assert len(set(names)) == 2
    loader = build_dataloader(args, corpus["tokenizer"])
    orders = set()
    for epoch in range(5):
        set_epoch(loader, epoch)
        orders.add(tuple(n for batch in loader for n in batch["name"]))
    assert len(orders) > 1


def test_loader_with_worker_processes_gives_the_same_batches(corpus):
    batches = []
    for workers in (0, 2):
        loader = build_dataloader(official_args(corpus, num_workers=workers), corpus["tokenizer"])
        batches.append([b for b in loader])
    for a, b in zip(*batches):
        assert a["name"] == b["name"] and torch.equal(a["video"], b["video"])
        assert torch.equal(a["text"]["input_ids"], b["text"]["input_ids"])


def test_unknown_dataset_and_keys_are_named(corpus):
    with pytest.raises(ValueError, match="Kinetics"):
        build_dataset(official_args(corpus, dataset_name="Kinetics"))
    with pytest.raises(ValueError, match="num_frame"):
        build_dataset(official_args(corpus, video_params={"num_frame": 4}))
    with pytest.raises(FileNotFoundError, match="yttemporal_train.csv"):
        build_dataset(official_args(corpus, meta_dir="/nonexistent"))


@pytest.fixture(scope="module")
def stage2(tmp_path_factory):
    root = tmp_path_factory.mktemp("stage2")
    meta = root / "meta_data"
    meta.mkdir()
    (root / "WebVid" / "train" / "p").mkdir(parents=True)
    rows = []
    for i in range(5):
        write_indexed_video(root / "WebVid" / "train" / "p" / f"v{i}.mp4", n=12, fps=4)
        rows.append(f"a dog {i}\tp/v{i}")
    (meta / "webvid_train.tsv").write_text("name\tpage_dir\n" + "\n".join(rows) + "\n")
    (root / "CC3M" / "training").mkdir(parents=True)
    rows = []
    for i in range(3):
        Image.fromarray(np.full((50, 70, 3), 40 * i, np.uint8)).save(root / "CC3M" / "training" / f"i{i}.png")
        rows.append(f"a dog\ti{i}.png")
    (meta / "cc3m_train.tsv").write_text("caption\tfile\n" + "\n".join(rows) + "\n")
    return root


def stage2_args(root, name, batch_size):
    data_dir = {"WebVid": root / "WebVid", "ConceptualCaptions3M": root / "CC3M"}[name]
    return {"dataset_name": name, "data_dir": str(data_dir), "meta_dir": str(root / "meta_data"),
            "num_workers": 0, "batch_size": batch_size, "split": "train", "patch_size": 8,
            "video_params": {"input_res": 32, "num_frames": 4 if name == "WebVid" else 1, "loading": "lax"}}


def test_webvid_and_cc3m_samples(stage2):
    webvid = build_dataset(stage2_args(stage2, "WebVid", 2))
    s = webvid[0]
    assert s["text"] == ["a dog 0"] and s["video"].shape == (4, 3, 32, 32)
    assert s["keep_ind"].shape == (2, 16) and sorted(s["keep_ind"][0].tolist()) == list(range(16))
    cc = build_dataset(stage2_args(stage2, "ConceptualCaptions3M", 2))
    s = cc[2]
    assert s["video"].shape == (2, 3, 32, 32) and torch.equal(s["video"][0], s["video"][1])
    assert s["keep_ind"].shape == (1, 16)


def test_alternating_loader_yields_every_dataset_each_iteration(stage2, corpus):
    loaders = [build_dataloader(stage2_args(stage2, "ConceptualCaptions3M", 1), corpus["tokenizer"]),
               build_dataloader(stage2_args(stage2, "WebVid", 1), corpus["tokenizer"])]
    alternating = AlternatingLoader(loaders)
    assert len(alternating) == 5
    steps = list(alternating)
    assert [i for i, _ in steps] == [0, 1] * 5
    assert len({b["name"][0] for i, b in steps if i == 1}) == 5  # the longest loader runs once through
    assert [b["name"][0] for i, b in steps if i == 0][3:] == [b["name"][0] for i, b in steps if i == 0][:2]


def test_an_epoch_can_be_one_pass_over_the_first_loader(stage2, corpus):
    loaders = [build_dataloader(stage2_args(stage2, "ConceptualCaptions3M", 1), corpus["tokenizer"]),
               build_dataloader(stage2_args(stage2, "WebVid", 1), corpus["tokenizer"])]
    first = AlternatingLoader(loaders, epoch_loader=0)
    assert len(first) == 3 and [i for i, _ in first] == [0, 1] * 3
    with pytest.raises(ValueError, match="epoch_loader"):
        AlternatingLoader(loaders, epoch_loader=2)


def test_masker_is_chosen_by_the_loader_entry(stage2, corpus):
    tube = build_dataset({**stage2_args(stage2, "WebVid", 2), "masking": "tube", "mask_ratio": 0.5})
    assert tube[0]["keep_ind"].shape == (8,)
    batch = TextVideoCollator(corpus["tokenizer"])([tube[0], tube[1]])
    assert batch["keep_ind"].shape == (2, 8)
    none = build_dataset({**stage2_args(stage2, "WebVid", 2), "masking": "none"})
    assert "keep_ind" not in none[0] and "keep_ind" not in TextVideoCollator(corpus["tokenizer"])([none[0]])
    with pytest.raises(ValueError, match="tubelets of 2"):
        build_dataset({**stage2_args(stage2, "WebVid", 2), "video_params": {"input_res": 32, "num_frames": 3}})
    with pytest.raises(ValueError, match="unknown masker"):
        build_dataset({**stage2_args(stage2, "WebVid", 2), "masking": "blocks"})
