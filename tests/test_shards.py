"""WebDataset shards: packing with a manifest, streaming the same samples as the files, the split over ranks and
workers, broken members, resume, and training from shards end to end."""
import io
import json
import os
import tarfile

import pytest
import torch
from torch.utils.data import DataLoader

import train
from data_loader.prepare import main as prepare_main
from data_loader.shards import ShardStream, describe_video2dataset, read_manifest
from data_loader.webvid import WebVid
from data_loader.yttemporal import YTTemporal
from media import write_noise_video, write_tokenizer, write_yt_corpus
from test_training import metrics, run_dir_of, write_config
from trainer.checkpointing import load_training_checkpoint

KW = {"input_res": 32, "reader": "pyav", "num_frames": 4}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """16 YT-Temporal videos packed 4 to a shard (4 train shards, and the same 16 as val)."""
    root = tmp_path_factory.mktemp("shard_corpus")
    names = {f"subset_{i % 2}/data/v{i}.mp4": 26 + i % 5 for i in range(16)}
    data_dir, meta_dir = write_yt_corpus(str(root), names, fps=4)
    out = root / "shards"
    prepare_main(["yttemporal", "--data-dir", data_dir, "--meta-dir", meta_dir])  # caches the alignments
    prepare_main(["shards", "--source", "yttemporal", "--data-dir", data_dir, "--meta-dir", meta_dir,
                  "--out-dir", str(out), "--samples-per-shard", "4"])
    tok = write_tokenizer(str(root / "tok"), [f"s{i}" for i in range(40)])
    return {"data_dir": data_dir, "meta_dir": meta_dir, "manifest": str(out / "manifest.json"), "root": root,
            "tokenizer": tok, "names": list(names)}


def collect(stream, num_workers=0, batch_size=2):
    loader = DataLoader(stream, batch_size=batch_size, num_workers=num_workers, collate_fn=list)
    return [sample for batch in loader for sample in batch]


def test_the_manifest_lists_every_sample_and_the_shards_hold_our_files(corpus):
    manifest = read_manifest(corpus["manifest"])
    train_split = manifest["splits"]["train"]
    assert [s["samples"] for s in train_split["shards"]] == [4, 4, 4, 4] and train_split["rows"] == 16
    assert train_split["hours"] == pytest.approx(sum(26 + i % 5 for i in range(16)) / 3600)
    with tarfile.open(train_split["shards"][0]["url"]) as tar:
        names = sorted(tar.getnames())
    assert names[:4] == ["000000000.aligned.json", "000000000.annotation.json", "000000000.meta.json",
                         "000000000.mp4"]


def test_a_streamed_sample_is_the_file_dataset_sample_of_its_row(corpus):
    files = YTTemporal(corpus["data_dir"], meta_dir=corpus["meta_dir"], **KW)
    stream = ShardStream(YTTemporal(None, shards=corpus["manifest"], **KW), batch_size=2, shuffle_buffer=3)
    for epoch in (0, 5):
        files.set_epoch(epoch)
        stream.set_epoch(epoch)
        got = collect(stream)
        assert sorted(s["index"] for s in got) == list(range(16))  # one reader: every sample once
        assert [s["index"] for s in got] != list(range(16))  # shuffled
        for sample in got:
            ref = files[sample["index"]]
            assert (sample["name"], sample["text"]) == (ref["name"], ref["text"])
            assert torch.equal(torch.as_tensor(sample["video"]), torch.as_tensor(ref["video"]))


def test_two_ranks_with_two_workers_each_read_every_sample_exactly_once(corpus):
    seen = []
    for epoch in (0, 1):
        per_epoch = []
        for rank in (0, 1):
            stream = ShardStream(YTTemporal(None, shards=corpus["manifest"], **KW), rank=rank, world_size=2,
                                 batch_size=2, shuffle_buffer=2)
            stream.set_epoch(epoch)
            got = [s["index"] for s in collect(stream, num_workers=2)]
            assert len(got) == len(stream) == 8
            per_epoch.append(got)
        assert sorted(per_epoch[0] + per_epoch[1]) == list(range(16))
        seen.append(per_epoch[0])
    assert seen[0] != seen[1]  # shards go to ranks in a new order every epoch


def test_evaluation_gives_every_member_once_however_few_the_shards(corpus, tmp_path):
    """The val split in one shard, over 2 ranks x 2 workers: each member exactly once, and a training stream with
    fewer shards than readers shares the members out instead of failing."""
    manifest = read_manifest(corpus["manifest"])
    one = {"splits": {s: {"shards": [{"url": os.path.join(tmp_path, "all.tar"), "samples": 16}]}
                      for s in ("train", "val")}}
    with tarfile.open(tmp_path / "all.tar", "w") as out:
        for shard in manifest["splits"]["val"]["shards"]:
            with tarfile.open(shard["url"]) as tar:
                for member in tar.getmembers():
                    out.addfile(member, tar.extractfile(member))
    (tmp_path / "manifest.json").write_text(json.dumps(one))
    for split in ("val", "train"):
        got = []
        for rank in (0, 1):
            stream = ShardStream(YTTemporal(None, split=split, shards=str(tmp_path / "manifest.json"), **KW),
                                 rank=rank, world_size=2, batch_size=2, shuffle_buffer=3)
            part = [s["index"] for s in collect(stream, num_workers=2)]
            assert len(part) == len(stream) == 8
            got += part
        assert sorted(got) == list(range(16)), split


def test_uneven_shards_still_give_every_rank_the_same_number_of_batches(corpus, tmp_path):
    manifest = read_manifest(corpus["manifest"])
    manifest["splits"]["train"]["shards"] = manifest["splits"]["train"]["shards"][:3]  # 12 samples on 2 ranks
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    counts = []
    for rank in (0, 1):  # rank 0 holds 2 shards (8 samples), rank 1 one (4): both yield 6
        stream = ShardStream(YTTemporal(None, shards=str(path), **KW), rank=rank, world_size=2, batch_size=2)
        counts.append(len(collect(stream)))
    assert counts == [6, 6]


@pytest.mark.parametrize("workers", [0, 2])
def test_a_resumed_pass_gives_the_unseen_batches_in_the_uninterrupted_order(corpus, workers):
    """AlternatingLoader.iterate(start) (the trainer's resume) over a stream: batches start..end of the epoch, in
    the order of an uninterrupted pass (with workers too: worker i then plays reader (i + start) % workers), and
    the next pass is whole again."""
    from data_loader.loader import AlternatingLoader
    stream = ShardStream(YTTemporal(None, shards=corpus["manifest"], **KW), batch_size=2, shuffle_buffer=3)
    loader = AlternatingLoader([DataLoader(stream, batch_size=2, num_workers=workers, collate_fn=list)])
    loader.set_epoch(2)

    def indices(batches):
        return [[s["index"] for s in batch] for _, batch in batches]
    full = indices(loader.iterate())
    assert len(full) == 8 and sorted(sum(full, [])) == list(range(16))
    assert indices(loader.iterate(start=3)) == full[3:]
    assert indices(loader.iterate()) == full


def write_shard(path, members):
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_broken_members_are_counted_and_replaced_in_training_and_reported_in_evaluation(corpus, tmp_path):
    good = read_manifest(corpus["manifest"])["splits"]["train"]["shards"][0]["url"]
    with tarfile.open(good) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    broken = dict(files)
    broken["000000001.mp4"] = files["000000001.mp4"][:200]  # truncated video
    broken["000000002.annotation.json"] = b"{not json"
    del broken["000000002.aligned.json"]
    del broken["000000003.mp4"]  # a member without its video
    write_shard(tmp_path / "bad.tar", broken)
    manifest = {"splits": {split: {"shards": [{"url": "bad.tar", "samples": 4}]} for split in ("train", "val")}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    stream = ShardStream(YTTemporal(None, shards=str(tmp_path / "manifest.json"), **KW), batch_size=4,
                         drop_last=False)
    got = collect(stream, batch_size=4)
    assert len(got) == 4 and all(s["index"] == 0 for s in got)  # the one good member fills the quota
    # training passes over the shard until the quota is met: each pass meets the three broken members again
    reasons = sorted({r["reason"] for s in got for r in s["skipped"]})
    assert reasons == ["bad_annotation", "incomplete_member", "unreadable_video"]
    assert sum(len(s["skipped"]) for s in got) >= 9
    val = ShardStream(YTTemporal(None, split="val", shards=str(tmp_path / "manifest.json"), **KW), batch_size=4,
                      drop_last=False)
    items = collect(val, batch_size=4)
    assert sorted(i["failed"]["reason"] for i in items if "failed" in i) == reasons
    strict = ShardStream(YTTemporal(None, shards=str(tmp_path / "manifest.json"), loading="strict", **KW),
                         batch_size=4)
    with pytest.raises(Exception, match="shard member"):
        collect(strict, batch_size=4)


def test_video2dataset_shards_stream_as_webvid(tmp_path):
    """video2dataset's layout: `<key>.mp4`, `<key>.txt`, `<key>.json`, and `<shard>_stats.json` with the count."""
    folder = tmp_path / "v2d"
    folder.mkdir()
    video = write_noise_video(tmp_path / "a.mp4", n=12, size=(48, 40))
    data = open(video, "rb").read()
    write_shard(folder / "00000.tar", {f"{k:09d}.{ext}": payload for k in range(3) for ext, payload in (
        ("mp4", data), ("txt", f"caption {k}".encode()), ("json", json.dumps({"key": f"{k:09d}"}).encode()))})
    (folder / "00000_stats.json").write_text(json.dumps({"successes": 3}))
    describe_video2dataset(str(folder))
    stream = ShardStream(WebVid(None, shards=str(folder / "manifest.json"), **KW), batch_size=1)
    got = collect(stream, batch_size=1)
    assert sorted(s["text"][0] for s in got) == ["caption 0", "caption 1", "caption 2"]
    assert got[0]["video"].shape == (4, 3, 32, 32)


def shard_config(corpus, tmp_path, shards, **trainer):
    path = write_config(corpus, tmp_path, **trainer)
    cfg = json.load(open(path))
    args = cfg["data_loader"][0]["args"]
    if shards:
        for key in ("data_dir", "meta_dir"):
            args.pop(key)
        args["shards"] = corpus["manifest"]
    json.dump(cfg, open(path, "w"))
    return path


def test_training_from_shards_validates_like_the_files_and_resumes_exactly(corpus, tmp_path):
    """The untrained model's validation is identical on both layouts (the same samples); a shard run interrupted
    mid-epoch and resumed ends with the weights of the uninterrupted one."""
    for kind in ("files", "shards"):
        (tmp_path / kind).mkdir()
        train.main(["-c", shard_config(corpus, tmp_path / kind, kind == "shards"), "trainer.epochs=1"])
    first = [metrics(run_dir_of(tmp_path / kind))[0] for kind in ("files", "shards")]
    for key, value in first[0].items():
        if key.startswith("YTTemporal/"):
            assert first[1][key] == pytest.approx(value), key

    full, part = tmp_path / "full", tmp_path / "part"
    full.mkdir(), part.mkdir()
    train.main(["-c", shard_config(corpus, full, True, save_every_steps=1, init_val=False)])
    reference = load_training_checkpoint(os.path.join(run_dir_of(full), "checkpoint-epoch2.pth"))
    train.main(["-c", shard_config(corpus, part, True, save_every_steps=1, init_val=False), "trainer.epochs=1",
                "trainer.max_steps_per_epoch=3"])
    train.main(["-r", os.path.join(run_dir_of(part), "checkpoint-latest.pth"), "trainer.epochs=2",
                "trainer.max_steps_per_epoch=0"])
    resumed = load_training_checkpoint(os.path.join(run_dir_of(part), "checkpoint-epoch2.pth"))
    for name, value in reference["state_dict"].items():
        torch.testing.assert_close(resumed["state_dict"][name], value, rtol=1e-5, atol=1e-7, msg=name)


def test_webvid_packs_and_streams_its_captions_and_frames(tmp_path):
    data, meta = tmp_path / "WebVid", tmp_path / "meta"
    (data / "train" / "a").mkdir(parents=True)
    meta.mkdir()
    rows = [(f"a clip number {i}", f"a/{i}") for i in range(4)]
    for i, (_, path) in enumerate(rows):
        write_noise_video(data / "train" / f"{path}.mp4", n=16 + i, size=(48, 40), seed=i)
    table = "name\tpage_dir\n" + "".join(f"{c}\t{p}\n" for c, p in rows)
    (meta / "webvid_train.tsv").write_text(table)
    prepare_main(["shards", "--source", "webvid", "--data-dir", str(data), "--meta-dir", str(meta), "--out-dir",
                  str(tmp_path / "shards"), "--splits", "train", "--samples-per-shard", "2"])
    files = WebVid(str(data), meta_dir=str(meta), **KW)
    stream = ShardStream(WebVid(shards=str(tmp_path / "shards" / "manifest.json"), **KW), batch_size=2)
    got = collect(stream)
    assert sorted(s["index"] for s in got) == [0, 1, 2, 3]
    for sample in got:
        ref = files[sample["index"]]
        assert (sample["name"], sample["text"]) == (ref["name"], ref["text"])
        assert torch.equal(torch.as_tensor(sample["video"]), torch.as_tensor(ref["video"]))


def test_cc3m_packs_and_streams_its_images(tmp_path):
    from PIL import Image
    from data_loader.cc3m import ConceptualCaptions3M
    data, meta = tmp_path / "CC3M", tmp_path / "meta"
    (data / "training").mkdir(parents=True)
    meta.mkdir()
    for i in range(3):
        Image.new("RGB", (40, 36), (40 * i, 90, 200 - 50 * i)).save(data / "training" / f"{i}.jpg")
    (meta / "cc3m_train.tsv").write_text("caption\tfile\n" + "".join(f"picture {i}\t{i}.jpg\n" for i in range(3)))
    prepare_main(["shards", "--source", "cc3m", "--data-dir", str(data), "--meta-dir", str(meta), "--out-dir",
                  str(tmp_path / "shards"), "--splits", "train"])
    files = ConceptualCaptions3M(str(data), meta_dir=str(meta), input_res=32)
    got = collect(ShardStream(ConceptualCaptions3M(shards=str(tmp_path / "shards" / "manifest.json"), input_res=32),
                              batch_size=1))
    assert sorted(s["text"][0] for s in got) == ["picture 0", "picture 1", "picture 2"]
    for sample in got:
        assert torch.equal(torch.as_tensor(sample["video"]), torch.as_tensor(files[sample["index"]]["video"]))


def one_shard_manifest(corpus, tmp_path, count):
    """The first `count` val members of the corpus in one shard, as both splits."""
    source = read_manifest(corpus["manifest"])["splits"]["val"]["shards"]
    members = {}
    for shard in source:
        with tarfile.open(shard["url"]) as tar:
            members.update({m.name: tar.extractfile(m).read() for m in tar.getmembers()})
    keep = {name: data for name, data in members.items() if int(name.split(".")[0]) < count}
    write_shard(tmp_path / "one.tar", keep)
    manifest = {"splits": {s: {"shards": [{"url": "one.tar", "samples": count}]} for s in ("train", "val")}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return str(tmp_path / "manifest.json")


def test_the_member_split_follows_the_batches_and_tiny_sets_do_not_break_evaluation(corpus, tmp_path):
    path = one_shard_manifest(corpus, tmp_path, 16)
    train_stream = ShardStream(YTTemporal(None, shards=path, **KW), batch_size=3, shuffle_buffer=0)
    got = [s["index"] for s in collect(train_stream, num_workers=2, batch_size=3)]
    assert len(got) == len(set(got)) == 15  # 5 whole batches, no member twice
    small = tmp_path / "small"
    small.mkdir()
    path = one_shard_manifest(corpus, small, 3)  # fewer members than 2 ranks x 2 workers
    got = []
    for rank in (0, 1):
        val = ShardStream(YTTemporal(None, split="val", shards=path, **KW), rank=rank, world_size=2, batch_size=2)
        got += [s["index"] for s in collect(val, num_workers=2)]
    assert sorted(got) == [0, 1, 2]


def test_a_shard_of_only_broken_members_stops_with_an_error_and_a_truncated_tar_is_counted(corpus, tmp_path):
    write_shard(tmp_path / "bad.tar", {f"{k:09d}.meta.json": b"{broken" for k in range(3)})
    (tmp_path / "manifest.json").write_text(json.dumps({"splits": {"train": {"shards": [
        {"url": "bad.tar", "samples": 3}]}}}))
    with pytest.raises(RuntimeError, match="in a row failed"):
        collect(ShardStream(YTTemporal(None, shards=str(tmp_path / "manifest.json"), **KW), batch_size=1))
    good = read_manifest(corpus["manifest"])["splits"]["train"]["shards"][0]["url"]
    data = open(good, "rb").read()
    (tmp_path / "cut.tar").write_bytes(data[:len(data) // 2 + 100])  # ends inside a member
    (tmp_path / "manifest.json").write_text(json.dumps({"splits": {"train": {"shards": [
        {"url": "cut.tar", "samples": 4}, {"url": good, "samples": 4}]}}}))
    got = collect(ShardStream(YTTemporal(None, shards=str(tmp_path / "manifest.json"), **KW), batch_size=2))
    reasons = {r["reason"] for s in got for r in s["skipped"]}
    # the cut shard's tail is counted (and a member cut short of its files), and the pass goes on
    assert len(got) == 8 and "unreadable_shard" in reasons and reasons <= {"unreadable_shard", "incomplete_member"}
    # in evaluation (shard order kept) the cut shard comes after a whole one: its error still reaches the batches
    (tmp_path / "manifest.json").write_text(json.dumps({"splits": {"val": {"shards": [
        {"url": good, "samples": 4}, {"url": "cut.tar", "samples": 4}]}}}))
    items = collect(ShardStream(YTTemporal(None, split="val", shards=str(tmp_path / "manifest.json"), **KW),
                                batch_size=2))
    records = [r for i in items for r in ([i["failed"]] if "failed" in i else i["skipped"])]
    assert "unreadable_shard" in {r["reason"] for r in records}


def test_two_processes_with_two_workers_each_train_and_validate_from_shards(corpus, tmp_path):
    """torchrun, 2 gloo processes x 2 data workers: a whole epoch and both validations finish in step (4 shards:
    one per reader; the split itself is checked sample by sample above)."""
    import socket
    import subprocess
    import sys
    from conftest import ROOT
    path = shard_config(corpus, tmp_path, True, epochs=1)
    cfg = json.load(open(path))
    cfg["data_loader"][0]["args"]["num_workers"] = 2
    json.dump(cfg, open(path, "w"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ROOT}
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                          f"--master_port={port}", os.path.join(ROOT, "train.py"), "-c", path], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = metrics(run_dir_of(tmp_path))
    assert [m["epoch"] for m in lines] == [0, 1] and all(m["YTTemporal/val_clips"] == 16 for m in lines)
    assert load_training_checkpoint(os.path.join(run_dir_of(tmp_path), "checkpoint-epoch1.pth"))["step"] == 4


def test_packing_resumes_keeping_the_shards_already_written(corpus, tmp_path):
    """A rerun keeps complete shards (tar + its record) untouched and writes the missing ones again."""
    out = tmp_path / "shards"
    args = ["shards", "--source", "yttemporal", "--data-dir", corpus["data_dir"], "--meta-dir", corpus["meta_dir"],
            "--out-dir", str(out), "--splits", "train", "--samples-per-shard", "4"]
    prepare_main(args)
    first = json.loads((out / "manifest.json").read_text())
    kept = (out / "train-000000.tar").stat().st_mtime_ns
    os.remove(out / "train-000001.tar")  # as if interrupted while writing it
    prepare_main(args)
    assert (out / "train-000000.tar").stat().st_mtime_ns == kept
    assert (out / "train-000001.tar").is_file() and json.loads((out / "manifest.json").read_text()) == first
