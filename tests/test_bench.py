"""The prepared GPU check cannot rot: its dry run (tiny models, one short realistic video, on the CPU) goes
through every step and writes every table."""
import os
import subprocess

from conftest import ROOT


def test_gpu_check_dry_run_writes_every_table(tmp_path):
    out = tmp_path / "gpu_check"
    env = {**os.environ, "OUT": str(out), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(["bash", os.path.join(ROOT, "bench", "gpu_check.sh"), "--dry-run"], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    for name in ("demo-cpu", "tvtsv2-demo-cpu", "simvtp-demo-cpu"):
        table = (out / f"model_{name}.md").read_text()
        assert "| TFLOP/step | TFLOP/s | MFU |" in table and "CPU cores" in table
        rows = [line.split(" | ") for line in table.splitlines() if line.startswith(("| fp32 ", "| bf16 "))]
        assert [r[0] for r in rows] == ["| fp32", "| bf16"]
        assert all(float(r[3]) > 0 and float(r[6]) > 0 for r in rows)  # clips/s and counted FLOPs
    loader = (out / "loader.md").read_text()
    for label in ("| original | pyav | 0 |", "| original | pyav | 1 |", "| re-encoded 268, sampler | pyav | 1 |",
                  "| re-encoded 268, sampler | pyav | "):
        assert label in loader


def test_cpd_demo_table_reads_finished_runs_only(tmp_path):
    """bench/bench_cpd_demo.py's table: mean ± sd of the last validation over the finished seeds, the banks' spread
    from the last checkpoint; a seed without its final checkpoint is left out."""
    import json
    import sys

    import torch
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import bench_cpd_demo as bench
    for seed, r1 in ((0, 2.0), (1, 4.0), (2, 9.0)):
        run = tmp_path / "shipped" / f"seed{seed}" / "cpd-demo-cpu" / "20261203_000000"
        run.mkdir(parents=True)
        last = {f"YTTemporal/{k}": 10.0 for k in bench.FIGURES}
        last["YTTemporal/t2v_R1"] = r1
        (run / "metrics.jsonl").write_text(json.dumps({"epoch": 0}) + "\n" + json.dumps(last) + "\n")
        if seed < 2:
            bank = torch.eye(4) if seed == 0 else torch.ones(4, 4) / 2  # spread 0.5 / collapsed 0
            torch.save({"task": {"memory": {"vis_memory": bank, "text_memory": bank}}}, run / "checkpoint-epoch5.pth")
    table = bench.table(str(tmp_path), ["shipped", "sgd"], [0, 1, 2], epochs=5)
    rows = [line for line in table.splitlines() if line.startswith("| shipped")]
    assert len(rows) == 1 and "| sgd" not in table
    cells = rows[0].split(" | ")
    assert cells[1] == "3.0 ± 1.4 (2/4)" and cells[-1] == "0/1 |"
    assert cells[-2] == "0.250 / 0.250"


def test_shard_training_table_compares_the_last_validation_of_each_layout(tmp_path):
    """bench/bench_shard_training.py: each layout's config reads the corpus's files or its shards; the table is
    mean ± sd over the seeds of the validation at the final epoch (an unfinished run counts as not done)."""
    import json
    import sys
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import bench_shard_training as bench
    files = json.load(open(bench.layout_config("files", str(tmp_path), "/d", "/m.json")))["data_loader"][0]["args"]
    shards = json.load(open(bench.layout_config("shards", str(tmp_path), "/d", "/m.json")))["data_loader"][0]["args"]
    assert (files["data_dir"], files["meta_dir"], "shards" in files) == ("/d/YTTemporal", "/d/meta_data", False)
    assert shards["shards"] == "/m.json" and "data_dir" not in shards and "meta_dir" not in shards
    per_seed = {}
    for seed, base in ((0, 10.0), (1, 14.0)):
        per_seed[seed] = {}
        for layout, shift in (("files", 0.0), ("shards", 1.0)):
            run = tmp_path / f"seed{seed}" / layout / "demo-cpu" / "20261203_000000"
            run.mkdir(parents=True)
            rows = [{"epoch": e, **{key: base + shift + e for key, _ in bench.FIGURES}} for e in (0, 2)]
            (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
            assert bench.last_validation(str(run.parents[1]), 3) is None  # not at the final epoch yet
            per_seed[seed][layout] = bench.last_validation(str(run.parents[1]), 2)
    rows = {line.split(" | ")[0]: line.split(" | ") for line in bench.summary(per_seed).splitlines()[2:]}
    assert rows["| files"][1] == "14.0 ± 2.8 (12.0/16.0)" and rows["| shards"][1] == "15.0 ± 2.8 (13.0/17.0)"
