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
    for name in ("demo-cpu", "tvtsv2-demo-cpu"):
        table = (out / f"model_{name}.md").read_text()
        assert "| TFLOP/step | TFLOP/s | MFU |" in table and "CPU cores" in table
        rows = [line.split(" | ") for line in table.splitlines() if line.startswith(("| fp32 ", "| bf16 "))]
        assert [r[0] for r in rows] == ["| fp32", "| bf16"]
        assert all(float(r[3]) > 0 and float(r[6]) > 0 for r in rows)  # clips/s and counted FLOPs
    loader = (out / "loader.md").read_text()
    for label in ("| original | pyav | 0 |", "| original | pyav | 1 |", "| re-encoded 268, sampler | pyav | 1 |",
                  "| re-encoded 268, sampler | pyav | "):
        assert label in loader
