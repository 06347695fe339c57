"""train.py and test.py end to end on a tiny corpus: config checks, losses, checkpoints, resume, evaluation."""
import json
import os
import socket
import subprocess
import sys

import pytest
import torch

import train
import test as evaluate_script
from conftest import ROOT, TINY_ARGS
from media import write_tokenizer, write_yt_corpus
from trainer.checkpointing import load_training_checkpoint, save_checkpoint
from utils.config import ConfigError

FPS = 4


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_corpus")
    names = {f"subset_0/data/v{i}.mp4": 26 + i for i in range(6)}
    data_dir, meta_dir = write_yt_corpus(str(root), names, fps=FPS)
    tok = write_tokenizer(str(root / "tok"), [f"s{i}" for i in range(40)])
    return {"data_dir": data_dir, "meta_dir": meta_dir, "tokenizer": tok, "root": root}


def write_config(corpus, tmp_path, **trainer):
    args = json.loads(json.dumps(TINY_ARGS))
    args["video_params"]["mae_checkpoint"] = ""
    cfg = {
        "name": "tiny", "seed": 3, "arch": {"type": "TVTS", "args": args},
        "tokenizer": {"name": corpus["tokenizer"], "max_length": 16},
        "data_loader": [{"type": "MultiDistTextVideoDataLoader", "args": {
            "dataset_name": "YTTemporal", "data_dir": corpus["data_dir"], "meta_dir": corpus["meta_dir"],
            "reader": "pyav", "num_workers": 0, "batch_size": 2, "split": "train", "patch_size": 8,
            "video_params": {"input_res": 32, "num_frames": 4, "loading": "lax"}}}],
        "optimizer": {"type": "AdamW", "args": {"lr": 1e-3}},
        "lr_scheduler": {"milestones": [1]},
        "trainer": {"epochs": 2, "save_dir": str(tmp_path / "runs"), "log_every": 1, "tensorboard": False,
                    "device": "cpu", **trainer},
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return str(path)


def run_dir_of(tmp_path):
    base = tmp_path / "runs" / "tiny"
    return str(base / sorted(os.listdir(base))[-1])


def metrics(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def test_training_run_writes_checkpoints_metrics_and_resolved_config(corpus, tmp_path):
    train.main(["-c", write_config(corpus, tmp_path)])
    run = run_dir_of(tmp_path)
    assert sorted(f for f in os.listdir(run) if f.endswith(".pth")) == [
        "checkpoint-epoch1.pth", "checkpoint-epoch2.pth", "model_best.pth"]
    lines = metrics(run)
    assert [m["epoch"] for m in lines] == [0, 1, 2]  # the untrained model, then every epoch
    assert {"YTTemporal/t2v_R1", "YTTemporal/v2t_MedR", "YTTemporal/sort_acc", "YTTemporal/sort_order_acc"} <= set(
        lines[0])
    resolved = json.load(open(os.path.join(run, "config.json")))
    assert resolved["trainer"]["gather"] == "official" and resolved["tokenizer"]["max_length"] == 16
    ckpt = load_training_checkpoint(os.path.join(run, "checkpoint-epoch2.pth"))
    assert ckpt["epoch"] == 2 and ckpt["step"] == 6 and isinstance(ckpt["config"], dict)
    raw = torch.load(os.path.join(run, "checkpoint-epoch2.pth"), weights_only=True)
    assert all(k.startswith("module.") for k in raw["state_dict"])  # official key layout
    assert abs(ckpt["optimizer"]["param_groups"][0]["lr"] - 1e-4) < 1e-12  # epoch 2 runs at 0.1x after milestone 1

    out = tmp_path / "eval.json"
    evaluate_script.main(["-r", os.path.join(run, "checkpoint-epoch2.pth"), "--out", str(out)])
    result = json.load(open(out))["results"]["YTTemporal"]
    final = lines[-1]
    assert result["sort_acc"] == pytest.approx(final["YTTemporal/sort_acc"])
    assert result["t2v_R1"] == pytest.approx(final["YTTemporal/t2v_R1"])


def test_a_resumed_run_reproduces_the_uninterrupted_one(corpus, tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    full.mkdir(), part.mkdir()
    train.main(["-c", write_config(corpus, full, save_every_steps=1, init_val=False)])
    reference = load_training_checkpoint(os.path.join(run_dir_of(full), "checkpoint-epoch2.pth"))
    # an interrupted run: stop after epoch 1's second iteration, resume from its latest checkpoint
    train.main(["-c", write_config(corpus, part, save_every_steps=1, init_val=False), "trainer.epochs=1",
                "trainer.max_steps_per_epoch=2"])
    latest = os.path.join(run_dir_of(part), "checkpoint-latest.pth")
    ckpt = load_training_checkpoint(latest)
    assert (ckpt["epoch"], ckpt["epoch_step"], ckpt["step"]) == (1, 2, 2)
    train.main(["-r", latest, "trainer.epochs=2", "trainer.max_steps_per_epoch=0"])
    resumed = load_training_checkpoint(os.path.join(run_dir_of(part), "checkpoint-epoch2.pth"))
    for name, value in reference["state_dict"].items():
        torch.testing.assert_close(resumed["state_dict"][name], value, rtol=1e-5, atol=1e-7, msg=name)


def test_save_is_atomic_under_a_crash(tmp_path, monkeypatch):
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    path = tmp_path / "ckpt.pth"
    save_checkpoint(path, model, opt, None, 1, 1, 0, {"a": 1})
    before = path.read_bytes()

    def crash(obj, f, *args, **kwargs):
        with open(f, "wb") as handle:
            handle.write(b"partial")
        raise OSError("disk full")
    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model, opt, None, 2, 2, 0, {"a": 2})
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["ckpt.pth"]


@pytest.mark.parametrize("override, message", [
    ("trainer.epoch=3", "trainer.epoch"),
    ("trainer.epochs=\"three\"", "trainer.epochs must be int"),
    ("trainer.gather=\"allreduce\"", "trainer.gather"),
    ("data_loader.0.args.data_dir=\"/nowhere\"", "data_dir not found"),
    ("arch.args.video_params.mae_checkpoint=\"/nowhere/mae.pth\"", "mae_checkpoint file not found"),
    ("optimizer.args.momentum=0.9", "momentum"),
])
def test_config_errors_name_the_key_before_any_work(corpus, tmp_path, override, message):
    args = train.parse_args(["-c", write_config(corpus, tmp_path), override])
    with pytest.raises((ConfigError, KeyError), match=message):
        train.resolve_config(args)
    assert not (tmp_path / "runs").exists()


def test_two_processes_train_with_torchrun(corpus, tmp_path):
    config = write_config(corpus, tmp_path, epochs=1, init_val=False)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ROOT}
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}",
           os.path.join(ROOT, "train.py"), "-c", config, "trainer.max_steps_per_epoch=1"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    run = run_dir_of(tmp_path)
    assert os.path.exists(os.path.join(run, "checkpoint-epoch1.pth"))
    assert "2 process(es)" in (out.stdout + out.stderr)


def test_report_compares_first_and_last_validation(tmp_path):
    from trainer.report import compare
    lines = [{"epoch": 0, "YTTemporal/sort_acc": 25.0, "YTTemporal/t2v_R1": 3.0, "YTTemporal/val_clips": 30},
             {"epoch": 9, "YTTemporal/sort_acc": 80.0, "YTTemporal/t2v_R1": 50.0, "YTTemporal/val_clips": 30}]
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(m) for m in lines) + "\n")
    table = compare(str(tmp_path))
    assert "| YTTemporal sort accuracy per transcript (%) | 25.0 | 80.0 | 25.0 |" in table
    assert "| YTTemporal text-to-video R@1 (%) | 3.0 | 50.0 | 3.3 |" in table
    with pytest.raises(FileNotFoundError, match="metrics.jsonl"):
        compare(str(tmp_path / "missing"))


@pytest.mark.parametrize("row", ["table2_sort_nosg", "table3_pairwise", "table3_factorial", "table1_vcop",
                                 "table1_merlot_like"])
def test_ablation_rows_train_on_any_base_config(corpus, tmp_path, row):
    """`train.py -c configs/ablations/<row>.json --base <config>` applies the row onto another recipe."""
    base = write_config(corpus, tmp_path, epochs=1)
    train.main(["-c", os.path.join(ROOT, "configs", "ablations", f"{row}.json"), "--base", base])
    name = "ablation-" + row.replace("_", "-")
    run = tmp_path / "runs" / name / os.listdir(tmp_path / "runs" / name)[0]
    saved = json.loads((run / "config.json").read_text())
    assert saved["arch"]["args"]["video_params"]["img_size"] == 32  # the tiny base, not the full-size recipe
    last = metrics(str(run))[-1]
    assert 0 <= last["YTTemporal/sort_acc"] <= 100


def test_an_ablation_table_runs_every_row_and_prints_the_paper_layout(corpus, tmp_path, capsys):
    from trainer import ablations
    base = write_config(corpus, tmp_path, epochs=1, max_steps_per_epoch=1)
    fake_eval = (f"{sys.executable} -c \"import json, os, sys; os.makedirs(sys.argv[1]); "
                 f"json.dump(dict([('R@1', len(sys.argv[2]))]), open(os.path.join(sys.argv[1], 'results.json'), 'w'))\" "
                 "{out} {checkpoint}")
    argv = ["--table", "table3", "--base", base, "--seeds", "0", "--out", str(tmp_path / "abl"),
            "--evaluate", fake_eval]
    measured = ablations.main(argv)
    assert sorted(measured) == ["table2_base.json", "table2_ours.json", "table3_factorial.json",
                                "table3_pairwise.json"]
    for down, pre in measured.values():
        assert len(down) == len(pre) == 1 and 0 <= pre[0] <= 100
    text = (tmp_path / "abl" / "table3.md").read_text()
    assert "| Pairwise | `table3_pairwise.json` |" in text and "| 67.4 / 78.1 |" in text
    runs = sorted(os.listdir(tmp_path / "abl" / "runs"))
    assert runs == ["table2_base-seed0", "table2_ours-seed0", "table3_factorial-seed0", "table3_pairwise-seed0"]
    ablations.main(argv)  # done runs are reused: nothing trains again
    assert all(len(os.listdir(tmp_path / "abl" / "runs" / r)) == 1 for r in runs)
