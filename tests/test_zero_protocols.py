"""Every out-of-the-box protocol end to end on the synthetic evaluation sets (official layouts, made by the project's
generator) with tiny towers: TVTSv2 from a released-format checkpoint, TVTS v1 untrained, unreadable videos counted,
two processes equal to one, the linear probe's feature cache."""
import json
import os
import shutil
import socket
import subprocess
import sys

import pytest
import torch

from conftest import ROOT
from data_loader.synthetic import generate_eval_sets, make_tokenizer
from downstream import linear_probe, zero_recognition, zero_retrieval, zero_ssv2_mc
from model import build_model
from utils import load_config

K = 12
V2_CONFIG = os.path.join(ROOT, "configs", "tvtsv2-demo-cpu.json")
V1_CONFIG = os.path.join(ROOT, "configs", "demo-cpu.json")


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval_sets")
    summary = generate_eval_sets(root, num_clips=K, seed=0, workers=2)
    config = load_config(V2_CONFIG)
    torch.manual_seed(0)
    net = build_model(config["arch"])
    release = root / "TVTSv2_tiny.pth"  # the released layout: module. prefix, no sort head
    torch.save({"state_dict": {"module." + k: v for k, v in net.state_dict().items()
                               if not k.startswith("pred_model.")}}, release)
    return {"data": summary["data_dir"], "meta": summary["meta_dir"], "ckpt": str(release), "root": root,
            "tokenizer": make_tokenizer(str(root))}


def flags(sets, dataset, out, *extra, checkpoint=True, data=None):
    model = ["--config", V2_CONFIG] + (["--checkpoint", sets["ckpt"]] if checkpoint else ["--random-init"])
    return [*model, "--dataset", dataset, "--data-dir", data or os.path.join(sets["data"], dataset), "--meta-dir",
            sets["meta"], "--output-dir", str(out), "--no-check-rows", "--num-workers", "0", "--device", "cpu",
            "--batch-size", "5", *extra]


def read_results(out):
    with open(os.path.join(out, "results.json")) as f:
        return json.load(f)


@pytest.mark.parametrize("dataset", ["msrvtt", "didemo", "lsmdc"])
def test_retrieval_runs_on_every_set_with_dsl_beside(sets, tmp_path, dataset):
    results = zero_retrieval.main(flags(sets, dataset, tmp_path, "--postprocess", "dsl"))
    assert results == read_results(tmp_path)
    assert (results["pairs"], results["videos_listed"], results["failed"]) == (K, K, 0)
    for block in (results, results["dsl"]):
        for direction in ("t2v", "v2t"):
            assert set(block[direction]) == {"R@1", "R@5", "R@10", "R@50", "MedR", "MeanR"}
            assert 1 <= block[direction]["MedR"] <= K and block[direction]["R@50"] == 100.0
    assert results["dsl"]["transductive"] is True and results["dsl"]["temperature"] == 0.01
    assert os.path.isfile(tmp_path / "run.log")


def test_unreadable_videos_are_left_out_and_counted(sets, tmp_path):
    data = tmp_path / "msrvtt"
    shutil.copytree(os.path.join(sets["data"], "msrvtt"), data)
    (data / "videos" / "all" / "video7012.mp4").write_bytes(b"broken")
    os.remove(data / "videos" / "all" / "video7015.mp4")
    results = zero_retrieval.main(flags(sets, "msrvtt", tmp_path / "out", data=str(data)))
    assert (results["pairs"], results["videos_listed"], results["failed"]) == (K - 2, K, 2)
    assert sorted(r.split(":")[0] for r in results["failed_videos"]) == \
        sorted(str(data / "videos" / "all" / f"video{i}.mp4") for i in (7012, 7015))
    with pytest.raises(RuntimeError, match="video7012.mp4"):
        zero_retrieval.main(flags(sets, "msrvtt", tmp_path / "strict", "--loading", "strict", data=str(data)))


def test_row_counts_are_checked_unless_told(sets, tmp_path):
    args = [a for a in flags(sets, "lsmdc", tmp_path) if a != "--no-check-rows"]
    with pytest.raises(ValueError, match="publictect.csv lists 12 entries, the official set has 1000"):
        zero_retrieval.main(args)


@pytest.mark.parametrize("dataset,split,listed", [("hmdb51", 1, K), ("ucf101", 2, 8), ("k400", 1, K)])
def test_recognition_runs_on_every_set(sets, tmp_path, dataset, split, listed):
    results = zero_recognition.main(flags(sets, dataset, tmp_path, "--split", str(split)))
    assert (results["videos"], results["classes"], results["failed"]) == (listed, 6, 0)
    assert results["templates"] == ["a person {}"] and 0 <= results["top1"] <= results["top5"] <= 100


def test_prompt_ensemble_averages_normalised_prompts(sets, tmp_path):
    """The class weight is the normalised mean of the normalised prompt embeddings: restated by hand."""
    templates = tmp_path / "prompts.json"
    templates.write_text(json.dumps(["a person {}", "a video of {}"]))
    results = zero_recognition.main(flags(sets, "hmdb51", tmp_path, "--templates-file", str(templates)))
    assert results["templates"] == ["a person {}", "a video of {}"]
    from downstream.text_video import TextVideoEncoder
    encoder = TextVideoEncoder.from_files(V2_CONFIG, sets["ckpt"])
    names = ["red circle", "blue bar"]
    weights = zero_recognition.class_weights(encoder, names, ["a person {}", "a video of {}"])
    for c, name in enumerate(names):
        a, b = encoder.encode_texts([f"a person {name}", f"a video of {name}"]).double()
        mean = (a / a.norm() + b / b.norm()) / 2
        torch.testing.assert_close(weights[c], mean / mean.norm())


def test_ssv2_multiple_choice_runs(sets, tmp_path):
    results = zero_ssv2_mc.main(flags(sets, "ssv2_mc", tmp_path, data=os.path.join(sets["data"], "SSV2")))
    assert (results["clips"], results["options"], results["failed"]) == (K, 5, 0)
    assert results["top5"] == 100.0  # 5 options: the answer is always among the top 5


def test_linear_probe_extracts_once_then_fits(sets, tmp_path):
    args = flags(sets, "ucf101", tmp_path, "--l2-grid", "1e-4,1e-2")
    first = linear_probe.main(args)
    assert (first["videos"], first["train_videos"], first["classes"]) == (K, K, 6)
    assert first["l2"] in (1e-4, 1e-2) and set(first["heldout_top1"]) == {"0.0001", "0.01"}
    stamp = os.stat(tmp_path / "features_train.npz").st_mtime_ns
    second = linear_probe.main(args)
    assert os.stat(tmp_path / "features_train.npz").st_mtime_ns == stamp  # reused, not extracted again
    assert second["top1"] == first["top1"]
    other = flags(sets, "ucf101", tmp_path, "--l2-grid", "1e-4,1e-2", checkpoint=False)  # other weights
    linear_probe.main(other)
    assert os.stat(tmp_path / "features_train.npz").st_mtime_ns != stamp  # the cache does not fit: extracted again


def test_tvts_v1_checkpoints_run_the_text_protocols(sets, tmp_path):
    args = ["--config", V1_CONFIG, "--random-init", "--dataset", "msrvtt", "--data-dir",
            os.path.join(sets["data"], "msrvtt"), "--meta-dir", sets["meta"], "--output-dir", str(tmp_path),
            "--no-check-rows", "--num-workers", "0", "--device", "cpu", f"tokenizer.name={sets['tokenizer']}"]
    results = zero_retrieval.main(args)
    assert results["pairs"] == K


def test_simvtp_pretraining_checkpoints_run_zero_shot_retrieval(sets, tmp_path):
    """SimVTP's mean-pooled unimodal passes as the retrieval embeddings, from one of its training checkpoints."""
    config = os.path.join(ROOT, "configs", "simvtp-demo-cpu.json")
    torch.manual_seed(0)
    net = build_model(load_config(config)["arch"])
    torch.save({"state_dict": net.state_dict()}, tmp_path / "simvtp.pth")
    args = ["--config", config, "--checkpoint", str(tmp_path / "simvtp.pth"), "--dataset", "msrvtt", "--data-dir",
            os.path.join(sets["data"], "msrvtt"), "--meta-dir", sets["meta"], "--output-dir", str(tmp_path / "out"),
            "--no-check-rows", "--num-workers", "0", "--device", "cpu", f"tokenizer.name={sets['tokenizer']}"]
    results = zero_retrieval.main(args)
    assert results["pairs"] == K and results["failed"] == 0 and 1 <= results["t2v"]["MedR"] <= K


def test_two_processes_equal_one(sets, tmp_path):
    one = zero_retrieval.main(flags(sets, "didemo", tmp_path / "one"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}",
                    "-m", "downstream.zero_retrieval", *flags(sets, "didemo", tmp_path / "two")],
                   check=True, cwd=ROOT, env=env, capture_output=True)
    two = read_results(tmp_path / "two")
    assert two["pairs"] == K
    for direction in ("t2v", "v2t"):
        assert two[direction] == pytest.approx(one[direction])
