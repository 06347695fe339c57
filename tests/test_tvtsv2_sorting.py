"""A tiny TVTSv2 learns to sort transcripts on the synthetic corpus, on the CPU, in a few minutes: validation
sort accuracy rises well above chance (25% per transcript) on held-out narrated videos (docs/benchmarks.md); and
the out-of-the-box protocols tell that model from an untrained one: zero-shot retrieval and recognition on the
synthetic evaluation sets are well above chance for it and at chance for the untrained network."""
import json
import os

import train
from conftest import ROOT
from data_loader.prepare import prepare_yttemporal
from data_loader.synthetic import generate_corpus, generate_eval_sets
from downstream import zero_recognition, zero_retrieval

CLIPS = 36


def test_tiny_tvtsv2_sort_accuracy_rises_on_held_out_videos(tmp_path):
    data = tmp_path / "synthetic"
    generate_corpus(data, num_videos=200, num_labelled=5, seed=1, workers=2)
    prepare_yttemporal(str(data / "YTTemporal"), str(data / "meta_data"), val_fraction=0.2, seed=0, workers=2)
    train.main(["-c", os.path.join(ROOT, "configs", "tvtsv2-demo-cpu.json"),
                f"data_loader.0.args.data_dir={data / 'YTTemporal'}", f"data_loader.0.args.meta_dir={data / 'meta_data'}",
                "data_loader.0.args.video_params.decoded_cache_mb=1024", "trainer.epochs=30", "trainer.val_every=30",
                f"trainer.save_dir={tmp_path / 'runs'}", "trainer.tensorboard=false", "trainer.save_period=30"])
    base = tmp_path / "runs" / "tvtsv2-demo-cpu"
    run = base / os.listdir(base)[0]
    first, last = [json.loads(line) for line in open(run / "metrics.jsonl")]
    assert (first["epoch"], last["epoch"]) == (0, 30) and last["YTTemporal/val_clips"] == 40
    assert first["YTTemporal/sort_acc"] < 30
    assert last["YTTemporal/sort_acc"] >= 35 and last["YTTemporal/sort_acc"] - first["YTTemporal/sort_acc"] >= 10
    assert last["YTTemporal/t2v_R10"] > first["YTTemporal/t2v_R10"]

    sets = generate_eval_sets(tmp_path / "eval", num_clips=CLIPS, seed=0, workers=2)
    config = os.path.join(ROOT, "configs", "tvtsv2-demo-cpu.json")
    common = ["--meta-dir", sets["meta_dir"], "--no-check-rows", "--num-workers", "0", "--device", "cpu"]
    found = {}
    for name, model in (("trained", ["--checkpoint", str(run / "checkpoint-epoch30.pth")]),
                        ("untrained", ["--config", config, "--random-init"])):
        retrieval = zero_retrieval.main([*model, *common, "--dataset", "msrvtt", "--data-dir",
                                         os.path.join(sets["data_dir"], "msrvtt"), "--output-dir",
                                         str(tmp_path / name / "msrvtt")])
        recognition = zero_recognition.main([*model, *common, "--dataset", "hmdb51", "--data-dir",
                                             os.path.join(sets["data_dir"], "hmdb51"), "--output-dir",
                                             str(tmp_path / name / "hmdb51")])
        found[name] = (retrieval["t2v"], recognition["top1"])
    # chance: R@1 100/36 = 2.8%, mean rank (36 + 1) / 2 = 18.5; top-1 over 6 classes 16.7% (3 sigma at 36 videos:
    # R@1 <= 11%, top-1 <= 35%, mean rank within 5.3 of 18.5)
    (trained_t2v, trained_top1), (random_t2v, random_top1) = found["trained"], found["untrained"]
    assert trained_t2v["R@1"] >= 20 and trained_t2v["MeanR"] <= 8, found
    assert random_t2v["R@1"] <= 11 and abs(random_t2v["MeanR"] - 18.5) <= 5.3, found
    assert trained_top1 >= 45 and random_top1 <= 35, found
