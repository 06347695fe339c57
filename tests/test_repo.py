"""Repository contracts: CI runs exactly the README's test command; the pretraining scripts launch their configs."""
import os
import re

import pytest

from conftest import ROOT


def _read(*parts):
    with open(os.path.join(ROOT, *parts)) as f:
        return f.read()


def test_ci_runs_the_readme_test_command():
    blocks = re.findall(r"```bash\n(.*?)\n```", _read("README.md"), re.S)
    test_command = next(b for b in blocks if "pytest" in b).strip()
    ci_lines = [line.strip() for line in _read(".ci", "run").splitlines()]
    assert test_command in ci_lines


@pytest.mark.parametrize("script, config", [("train_yt.sh", "configs/dist-yt-pt.json"),
                                            ("train_cc_web.sh", "configs/dist-cc-web-pt.json"),
                                            ("train_tvtsv2.sh", "configs/tvtsv2-b16.json"),
                                            ("train_cpd.sh", "configs/cpd-ins300k.json"),
                                            ("train_simvtp.sh", "configs/simvtp-webvid.json")])
def test_pretraining_scripts_launch_train_py_with_their_config(script, config, tmp_path):
    """Each script reaches the shared torchrun launch with its config, the layout variables and the extra
    arguments (torchrun replaced by a stand-in that records its command line)."""
    import subprocess
    (tmp_path / "torchrun").write_text('#!/usr/bin/env bash\necho "$@" > "$RECORD"\n')
    os.chmod(tmp_path / "torchrun", 0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "RECORD": str(tmp_path / "args"),
           "NPROC_PER_NODE": "4", "NNODES": "2", "NODE_RANK": "1"}
    subprocess.run(["bash", os.path.join(ROOT, "scripts", script), "trainer.epochs=3"], env=env, check=True)
    assert (tmp_path / "args").read_text().split() == [
        "--nnodes=2", "--node_rank=1", "--nproc_per_node=4", "--master_addr=127.0.0.1", "--master_port=29500",
        "train.py", "-c", config, "trainer.epochs=3"]
