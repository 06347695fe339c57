"""A tiny TVTSv2 learns to sort transcripts on the synthetic corpus, on the CPU, in a few minutes: validation
sort accuracy rises well above chance (25% per transcript) on held-out narrated videos (docs/benchmarks.md)."""
import json
import os

import train
from conftest import ROOT
from data_loader.prepare import prepare_yttemporal
from data_loader.synthetic import generate_corpus


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
