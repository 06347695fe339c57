"""`scripts/demo.sh` end to end on a tiny corpus: corpus, checks, pretraining, downstream runs and both reports."""
import json
import os
import re
import subprocess

from conftest import ROOT


def test_demo_script_runs_every_stage_and_prints_both_reports(tmp_path):
    data, results = tmp_path / "synthetic", tmp_path / "results"
    env = {**os.environ, "DATA": str(data), "NUM_VIDEOS": "12", "NUM_CLIPS": "24", "PROBE_EPOCHS": "1"}
    done = subprocess.run(
        ["bash", os.path.join(ROOT, "scripts", "demo.sh"), "trainer.epochs=1", "trainer.val_every=1",
         f"trainer.save_dir={results}", "trainer.tensorboard=false",
         "data_loader.0.args.video_params.decoded_cache_mb=64"],
        env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "== making the synthetic corpus (shots) in " + str(data) in out
    assert re.search(r"\| YTTemporal sort accuracy per transcript \(%\) \| [\d.]+ \| [\d.]+ \| 25\.0 \|", out)
    assert re.search(r"^\| TVTS \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \|$", out, re.M)
    assert re.search(r"^\| untrained \| - \| [\d.]+ \| [\d.]+ \| [\d.]+ \|$", out, re.M)
    assert re.search(r"^TVTS vs untrained: zero-shot R@1 [+-][\d.]+ points \([\d.]+ -> [\d.]+\);.*linear-probe top-1 "
                     r"[+-][\d.]+ points", out, re.M)
    run = next(p for p in (results / "demo-cpu").iterdir())
    assert {"zero_tvts", "zero_untrained", "linear_tvts", "linear_untrained"} == set(os.listdir(run / "downstream"))
    # the pretrained runs loaded this run's checkpoint; the untrained ones none
    assert "checkpoint-epoch1.pth" in (run / "downstream" / "zero_tvts" / "run.log").read_text()
    assert "randomly initialised" in (run / "downstream" / "zero_untrained" / "run.log").read_text()
    # a second run reuses the corpus instead of making it again; --ablation adds the NCE-only baseline
    again = subprocess.run(
        ["bash", os.path.join(ROOT, "scripts", "demo.sh"), "--ablation", "trainer.epochs=1", f"trainer.save_dir={results}",
         "trainer.tensorboard=false", "trainer.init_val=false", "trainer.val_every=1",
         "data_loader.0.args.video_params.decoded_cache_mb=0"],
        env={**env, "SEED": "1"}, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "making the synthetic corpus" not in again.stdout
    assert re.search(r"^\| NCE only \| [\d.]+ \|", again.stdout, re.M)
    assert re.search(r"^NCE only vs untrained: zero-shot R@1", again.stdout, re.M)
    baseline = next((results / "demo-cpu-nce-only").iterdir())
    with open(baseline / "config.json") as f:
        config = json.load(f)
    assert config["loss"]["args"]["sort_weight"] == 0 and config["seed"] == 1
    second = max((results / "demo-cpu").iterdir())
    assert "checkpoint-epoch1.pth" in (second / "downstream" / "zero_nce_only" / "run.log").read_text()
    assert str(baseline) in (second / "downstream" / "zero_nce_only" / "run.log").read_text()


def test_demo_script_never_writes_into_a_folder_that_holds_something_else(tmp_path):
    (tmp_path / "mine.txt").write_text("not a synthetic corpus")
    done = subprocess.run(["bash", os.path.join(ROOT, "scripts", "demo.sh")], env={**os.environ, "DATA": str(tmp_path)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "holds no synthetic corpus" in done.stderr
    assert os.listdir(tmp_path) == ["mine.txt"]
