"""End-to-end runs of the downstream entry points on tiny generated clips with a tiny encoder."""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import ROOT, TINY_ARGS, tiny_model
from downstream.args import get_args
from downstream.datasets import build_dataset, collate_clips
from downstream.encoder import VideoClassifier, encoder_args, load_pretrained_encoder
from downstream.extract_features import main as extract_main
from downstream.finetune import main as finetune_main
from downstream.metrics import video_retrieval_recall
from downstream.zero_shot import main as zero_main
from media import write_noise_video

CLASSES = 3


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """An SSV2-layout folder (9 train, 6 val clips of 3 classes), a tiny pretraining checkpoint and its config."""
    root = tmp_path_factory.mktemp("clips")
    (root / "videos").mkdir()
    train, val = [], []
    for i in range(15):
        write_noise_video(root / "videos" / f"{i}.mp4", n=18 + i, size=(48, 40), seed=i)
        (train if i < 9 else val).append(f"{i}.mp4 {i % CLASSES}")
    (root / "sthv2_train_list_videos.txt").write_text("\n".join(train) + "\n")
    (root / "sthv2_val_list_videos.txt").write_text("\n".join(val) + "\n")
    config = root / "tiny.json"
    config.write_text(json.dumps({"arch": {"args": TINY_ARGS}}))
    ckpt = root / "pretrained.pth"
    pre = tiny_model(seed=5)
    torch.save({"state_dict": {"module." + k: v for k, v in pre.state_dict().items()}}, ckpt)
    return root, config, ckpt, pre


def common_flags(root, config, ckpt, out):
    return ["--model", str(config), "--finetune", str(ckpt), "--data_set", "SSV2", "--data_path", str(root),
            "--nb_classes", str(CLASSES), "--input_size", "32", "--short_side_size", "32", "--batch_size", "4",
            "--num_workers", "0", "--output_dir", str(out), "--reader", "pyav", "--device", "cpu"]


def train_flags(epochs):
    return ["--epochs", str(epochs), "--warmup_epochs", "1", "--lr", "1e-2", "--aa", "rand-m7-n2-mstd0.5-inc1",
            "--test_num_segment", "2", "--test_num_crop", "2"]


def log_epochs(out):
    with open(out / "log.txt") as f:
        return [json.loads(line)["epoch"] for line in f]


def test_finetune_runs_tests_and_resumes(setup, tmp_path):
    root, config, ckpt, _ = setup
    out = tmp_path / "ft"
    finetune_main(get_args("finetune", common_flags(root, config, ckpt, out) + train_flags(2)))
    assert log_epochs(out) == [0, 1]
    results = json.loads((out / "results.json").read_text())
    assert results["videos"] == 6 and results["views"] == 6 * 2 * 2 and results["failed_views"] == 0
    assert 0 <= results["Final top-1"] <= 100
    assert {"checkpoint-last.pth", "checkpoint-1.pth", "args.json", "run.log"} <= set(os.listdir(out))
    first = torch.load(out / "checkpoint-last.pth", weights_only=True)["model"]
    # a longer run in the same folder resumes after the last finished epoch instead of starting over
    finetune_main(get_args("finetune", common_flags(root, config, ckpt, out) + train_flags(3)))
    assert log_epochs(out) == [0, 1, 2]
    assert "resumed from" in (out / "run.log").read_text()
    second = torch.load(out / "checkpoint-last.pth", weights_only=True)["model"]
    assert not torch.equal(first["head.weight"], second["head.weight"])
    # --eval re-tests a checkpoint: the last one gives the numbers the run reported
    final = json.loads((out / "results.json").read_text())
    finetune_main(get_args("finetune", common_flags(root, config, ckpt, out) + train_flags(3) + [
        "--eval", "--resume", str(out / "checkpoint-last.pth")]))
    again = json.loads((out / "results.json").read_text())
    assert (again["Final top-1"], again["Final Top-5"], again["videos"]) == \
        (final["Final top-1"], final["Final Top-5"], final["videos"])


def test_linear_probe_trains_only_the_head(setup, tmp_path):
    root, config, ckpt, pre = setup
    out = tmp_path / "linear"
    flags = common_flags(root, config, ckpt, out) + train_flags(1) + ["--opt", "sgd", "--weight_decay", "1e-9"]
    finetune_main(get_args("linear", flags))
    state = torch.load(out / "checkpoint-last.pth", weights_only=True)
    for k, v in pre.video_model.state_dict().items():
        assert torch.equal(state["model"][k], v), k
    assert "exp_avg" in next(iter(state["optimizer"]["state"].values()))  # official rule: AdamW despite --opt sgd
    fresh = VideoClassifier(CLASSES, **encoder_args(str(config), input_size=32))
    assert not torch.equal(state["model"]["head.weight"], fresh.head.weight)


def test_linear_probe_as_given_uses_sgd(setup, tmp_path):
    root, config, ckpt, _ = setup
    out = tmp_path / "linear_sgd"
    flags = common_flags(root, config, ckpt, out) + train_flags(1) + ["--opt", "sgd", "--linear_optimizer",
                                                                      "as_given", "--disable_eval_during_finetuning",
                                                                      "--log_dir", str(tmp_path / "tb")]
    finetune_main(get_args("linear", flags))
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(tmp_path / "tb"))
    state = torch.load(out / "checkpoint-last.pth", weights_only=True)
    assert "momentum_buffer" in next(iter(state["optimizer"]["state"].values()))


def manual_recall(root, config, ckpt):
    """Zero-shot R@K recomputed outside the entry point: features by hand, ranks by a full argsort."""
    model = VideoClassifier(0, **encoder_args(str(config), input_size=32)).eval()
    load_pretrained_encoder(model, ckpt)
    data = build_dataset("SSV2", "validation", data_path=str(root), nb_classes=CLASSES, input_size=32,
                         short_side_size=32, reader="pyav", val_sampling="center")
    batch = collate_clips([data[i] for i in range(len(data))])
    with torch.no_grad():
        feats = torch.nn.functional.normalize(model.forward_features(batch["video"]), dim=-1)
    sim = feats @ feats.T
    sim.fill_diagonal_(-1000)
    order = torch.argsort(sim, dim=1, descending=True)
    hits = batch["label"][order] == batch["label"][:, None]
    first = torch.where(hits.any(1), hits.float().argmax(1), torch.full_like(batch["label"], 10**6))
    return {k: 100.0 * float((first < k).float().mean()) for k in (1, 5, 10)}


def test_zero_shot_retrieval_matches_a_direct_computation(setup, tmp_path):
    root, config, ckpt, _ = setup
    out = tmp_path / "zero"
    zero_main(get_args("zero", common_flags(root, config, ckpt, out) + ["--val_sampling", "center",
                                                                        "--save_features"]))
    results = json.loads((out / "results.json").read_text())
    expected = manual_recall(root, config, ckpt)
    for k in (1, 5, 10):
        assert results[f"R@{k}"] == pytest.approx(expected[k])
    saved = np.load(out / "features.npz")
    assert saved["features"].shape == (6, TINY_ARGS["video_params"]["embed_dim"])
    direct = video_retrieval_recall(torch.from_numpy(saved["features"]), torch.from_numpy(saved["labels"]))
    assert direct["R1"] == pytest.approx(results["R@1"])


def test_zero_shot_counts_unreadable_videos_instead_of_replacing_them(setup, tmp_path):
    root, config, ckpt, _ = setup
    broken = tmp_path / "broken"
    (broken / "videos").mkdir(parents=True)
    for name in os.listdir(root / "videos"):
        os.symlink(root / "videos" / name, broken / "videos" / name)
    (broken / "videos" / "bad.mp4").write_bytes(b"not a video")
    (broken / "sthv2_val_list_videos.txt").write_text((root / "sthv2_val_list_videos.txt").read_text() + "bad.mp4 0\n")
    zero_main(get_args("zero", common_flags(broken, config, ckpt, tmp_path / "zero")))
    results = json.loads((tmp_path / "zero" / "results.json").read_text())
    assert (results["videos"], results["failed"], results["failed_videos"]) == (6, 1, ["bad.mp4"])


def test_zero_shot_over_two_processes_equals_one(setup, tmp_path):
    root, config, ckpt, _ = setup
    flags = common_flags(root, config, ckpt, tmp_path / "one") + ["--val_sampling", "center"]
    zero_main(get_args("zero", flags))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    two = common_flags(root, config, ckpt, tmp_path / "two") + ["--val_sampling", "center"]
    env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}",
                    "-m", "downstream.run_class_zero", *two], check=True, cwd=ROOT, env=env, capture_output=True)
    one_res = json.loads((tmp_path / "one" / "results.json").read_text())
    two_res = json.loads((tmp_path / "two" / "results.json").read_text())
    assert two_res["videos"] == 6
    for k in ("R@1", "R@5", "R@10"):
        assert two_res[k] == pytest.approx(one_res[k])


def test_extract_features_writes_one_vector_per_readable_video(setup, tmp_path):
    root, config, ckpt, _ = setup
    folder = tmp_path / "mine"
    (folder / "sub").mkdir(parents=True)
    write_noise_video(folder / "sub" / "a.mp4", n=30, size=(64, 48))  # decord rejects 48-px-wide frames
    (folder / "broken.mp4").write_bytes(b"")
    (folder / "notes.txt").write_text("not a video")
    out = tmp_path / "feats.npz"
    rc = extract_main(["--input", str(folder), "--output", str(out), "--finetune", str(ckpt), "--model", str(config),
                       "--input_size", "32", "--short_side_size", "32", "--num_workers", "0", "--device", "cpu"])
    saved = np.load(out)
    assert rc == 0 and list(saved["paths"]) == [str(folder / "sub" / "a.mp4")]
    assert len(saved["failed"]) == 1 and "broken.mp4" in saved["failed"][0]
    model = VideoClassifier(0, **encoder_args(str(config), input_size=32)).eval()
    load_pretrained_encoder(model, ckpt)
    from downstream.extract_features import VideoFiles
    with torch.no_grad():
        expected = model.forward_features(VideoFiles([str(folder / "sub" / "a.mp4")], input_size=32,
                                                     short_side_size=32)[0]["video"][None].transpose(1, 2))
    np.testing.assert_allclose(saved["features"], expected.numpy(), rtol=1e-5, atol=1e-5)


def test_arguments_are_checked(setup, tmp_path):
    root, config, ckpt, _ = setup
    with pytest.raises(SystemExit, match="--finetune is required"):
        get_args("finetune", ["--output_dir", str(tmp_path)])
    with pytest.raises(SystemExit, match="--output_dir is required"):
        get_args("zero", ["--finetune", str(ckpt)])
    flags = common_flags(root, config, ckpt, tmp_path / "odd") + train_flags(1)
    flags[flags.index("--batch_size") + 1] = "3"
    with pytest.raises(ValueError, match="--batch_size must be even"):
        finetune_main(get_args("finetune", flags))


def test_report_table_lists_each_run(tmp_path, capsys):
    from downstream.report import main as report_main
    (tmp_path / "z").mkdir()
    (tmp_path / "z" / "results.json").write_text(json.dumps({"R@1": 12.5, "R@5": 40, "R@10": 60, "videos": 8}))
    (tmp_path / "l").mkdir()
    (tmp_path / "l" / "results.json").write_text(json.dumps({"Final top-1": 37.5, "Final Top-5": 100.0,
                                                             "videos": 8}))
    report_main([f"zero={tmp_path / 'z'}", f"linear={tmp_path / 'l'}"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| run | videos | R@1 | R@5 | R@10 | top-1 | top-5 |"
    assert lines[2] == "| zero | 8 | 12.5 | 40.0 | 60.0 | - | - |"
    assert lines[3] == "| linear | 8 | - | - | - | 37.5 | 100.0 |"
    with pytest.raises(FileNotFoundError, match="no results.json"):
        report_main([f"missing={tmp_path / 'nowhere'}"])


def test_compare_table_and_sentences_of_the_demo(tmp_path, capsys):
    from downstream.compare import main as compare_main
    down = tmp_path / "downstream"
    figures = {"tvts": (30.0, 55.0, 40.0), "nce_only": (20.0, 45.0, 35.0), "untrained": (12.5, 40.0, 15.0)}
    for slug, (r1, r5, top1) in figures.items():
        for kind, results in (("zero", {"R@1": r1, "R@5": r5, "videos": 8}), ("linear", {"Final top-1": top1})):
            (down / f"{kind}_{slug}").mkdir(parents=True)
            (down / f"{kind}_{slug}" / "results.json").write_text(json.dumps(results))
    for name, acc in (("tvts_run", 61.25), ("nce_run", 25.5)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.jsonl").write_text(
            json.dumps({"epoch": 0, "YTTemporal/sort_acc": 25.0}) + "\n"
            + json.dumps({"epoch": 30, "YTTemporal/sort_acc": acc}) + "\n")
    compare_main([f"TVTS={tmp_path / 'tvts_run'}", f"NCE only={tmp_path / 'nce_run'}", "untrained=-",
                  "--downstream-dir", str(down), "--baseline", "untrained"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ("| encoder | sort accuracy (%) | zero-shot R@1 (%) | zero-shot R@5 (%) | "
                        "linear-probe top-1 (%) |")
    assert lines[2:5] == ["| TVTS | 61.2 | 30.0 | 55.0 | 40.0 |", "| NCE only | 25.5 | 20.0 | 45.0 | 35.0 |",
                          "| untrained | - | 12.5 | 40.0 | 15.0 |"]
    assert lines[6] == ("TVTS vs untrained: zero-shot R@1 +17.5 points (12.5 -> 30.0); zero-shot R@5 +15.0 points "
                        "(40.0 -> 55.0); linear-probe top-1 +25.0 points (15.0 -> 40.0).")
    assert lines[7].startswith("NCE only vs untrained: zero-shot R@1 +7.5 points (12.5 -> 20.0)")
    with pytest.raises(SystemExit):
        compare_main(["TVTS=-", "--downstream-dir", str(down), "--baseline", "nobody"])


@pytest.mark.parametrize("script", ["ft_ssv2.sh", "linear_ssv2.sh", "zero_ssv2.sh", "ft_k400.sh", "ft_ucf101.sh",
                                    "ft_hmdb51.sh"])
def test_recipe_scripts_pass_flags_the_entry_points_accept(tmp_path, script):
    """Each script runs with a stand-in launcher that parses its flags with the real argument parser."""
    (tmp_path / script).write_text(open(os.path.join(ROOT, "scripts", script)).read())
    (tmp_path / "downstream_launch.sh").write_text(
        f'#!/usr/bin/env bash\nexec {sys.executable} -c "import sys, json; from downstream.args import get_args; '
        "proto = {'run_class_finetuning': 'finetune', 'run_class_linear': 'linear', 'run_class_zero': 'zero'}"
        '[sys.argv[1]]; print(json.dumps(vars(get_args(proto, sys.argv[2:]))))" "$@"\n')
    os.chmod(tmp_path / "downstream_launch.sh", 0o755)
    env = {**os.environ, "PYTHONPATH": ROOT, "OUT": str(tmp_path / "out")}
    done = subprocess.run(["bash", str(tmp_path / script), "--seed", "7"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    args = json.loads(done.stdout)
    assert args["seed"] == 7 and args["output_dir"] == str(tmp_path / "out")  # extra flags pass through
    if script == "linear_ssv2.sh":
        assert (args["opt"], args["lr"], args["weight_decay"], args["epochs"]) == ("sgd", 0.1, 1e-9, 100)
    if script == "ft_ssv2.sh":
        assert (args["batch_size"], args["lr"], args["epochs"], args["test_num_segment"]) == (12, 1e-3, 50, 2)


def test_extract_features_to_a_folder_resumes_and_takes_the_config_input(setup, tmp_path):
    """No --input_size for a 32-px config (the config sets it); a folder output gets one .npy per video and a rerun
    skips the done ones; .txt lists are inputs; the Python API gives the same vectors."""
    from downstream.extract_features import Extractor, extract
    root, config, ckpt, _ = setup
    videos = [root / "videos" / f"{i}.mp4" for i in range(3)]
    listing = tmp_path / "list.txt"
    listing.write_text(f"{videos[1]}\n{videos[2]}\n")
    out = tmp_path / "feats"
    flags = ["--finetune", str(ckpt), "--model", str(config), "--num_workers", "0", "--device", "cpu",
             "--reader", "pyav"]  # decord rejects these 48-px-wide frames
    assert extract_main(["--input", str(videos[0]), "--output", str(out), *flags]) == 0
    first = out / "0.mp4.npy"
    stamp = first.stat().st_mtime_ns
    assert extract_main(["--input", str(videos[0]), str(listing), "--output", str(out), *flags]) == 0
    assert first.stat().st_mtime_ns == stamp  # done before: skipped
    with pytest.raises(ValueError, match="holds features made with other settings \\(sampling differ"):
        extract_main(["--input", str(videos[0]), "--output", str(out), "--sampling", "linspace", *flags])
    saved = np.stack([np.load(out / f"{i}.mp4.npy") for i in range(3)])
    api = Extractor(str(ckpt), model=str(config), device="cpu", reader="pyav")([str(v) for v in videos])
    assert api.shape == (3, 64)
    np.testing.assert_allclose(saved, api, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(extract([str(videos[2])], str(ckpt), str(config), device="cpu", reader="pyav"),
                                  api[2:])
    (tmp_path / "bad.mp4").write_bytes(b"")
    with pytest.raises(Exception, match="bad.mp4"):
        Extractor(str(ckpt), model=str(config), device="cpu", reader="pyav")([str(tmp_path / "bad.mp4")])


def test_a_file_that_is_not_a_checkpoint_is_one_line(setup, tmp_path):
    root, config, _, _ = setup
    env = {**os.environ, "PYTHONPATH": ROOT}
    done = subprocess.run([sys.executable, "-m", "downstream.extract_features", "--input", str(root / "videos"),
                           "--output", str(tmp_path / "f.npz"), "--finetune", str(config), "--model", str(config),
                           "--device", "cpu"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == \
        f"error: {config} is not a PyTorch checkpoint: it looks like a JSON file (a config?)"
    assert "Traceback" not in done.stderr


@pytest.fixture(scope="module")
def cpd_checkpoint(setup):
    """A tiny CPD pretraining checkpoint (official key layout, banks included as a release has them) and its
    config."""
    from conftest import tiny_cpd, tiny_cpd_args
    root = setup[0]
    config = root / "tiny_cpd.json"
    config.write_text(json.dumps({"arch": {"type": "CPD", "args": tiny_cpd_args()}}))
    net = tiny_cpd(seed=3).eval()
    state = {"module." + k: v for k, v in net.state_dict().items()}
    state["module.vis_memory"] = torch.zeros(4, 16)
    ckpt = root / "cpd.pth"
    torch.save({"state_dict": state}, ckpt)
    return config, ckpt, net


def test_cpd_encoder_runs_zero_shot_retrieval_and_feature_extraction(setup, cpd_checkpoint, tmp_path):
    """The CPD config's 3D ResNet through the generic protocols: zero-shot video-to-video retrieval on its pooled
    feature (2048-d at full size), and feature extraction equal to the pretraining tower run on the same frames
    under CPD's own normalisation."""
    from downstream.encoder import R3DClassifier, build_classifier
    from downstream.extract_features import VideoFiles
    root = setup[0]
    config, ckpt, net = cpd_checkpoint
    out = tmp_path / "zero"
    zero_main(get_args("zero", common_flags(root, config, ckpt, out) + ["--val_sampling", "center",
                                                                        "--save_features", "--num_frames", "4"]))
    results = json.loads((out / "results.json").read_text())
    saved = np.load(out / "features.npz")
    assert saved["features"].shape == (6, net.visual_encoder.feature_dim) and results["videos"] == 6
    direct = video_retrieval_recall(torch.from_numpy(saved["features"]), torch.from_numpy(saved["labels"]))
    assert direct["R1"] == pytest.approx(results["R@1"])

    video = tmp_path / "a.mp4"
    write_noise_video(video, n=30, size=(64, 48))
    feats = tmp_path / "feats.npz"
    assert extract_main(["--input", str(video), "--output", str(feats), "--finetune", str(ckpt), "--model",
                         str(config), "--input_size", "32", "--short_side_size", "32", "--num_workers", "0",
                         "--device", "cpu"]) == 0
    clip = VideoFiles([str(video)], num_frames=8, input_size=32, short_side_size=32)[0]["video"]  # ImageNet-normalised
    raw = clip * torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) + torch.tensor([0.485, 0.456, 0.406]).view(
        1, 3, 1, 1)
    with torch.no_grad():
        expected = net.visual_encoder(((raw - 0.45) / 0.225)[None])  # CPD's normalisation, (B, T, 3, H, W)
    np.testing.assert_allclose(np.load(feats)["features"], expected.numpy(), rtol=1e-4, atol=1e-5)
    assert isinstance(build_classifier(str(config), 5), R3DClassifier)


def test_cpd_classifier_loads_only_a_cpd_video_tower(setup, cpd_checkpoint, tmp_path):
    from model.checkpoint import CheckpointError
    from downstream.encoder import R3DClassifier, build_classifier
    root, tvts_config, tvts_ckpt, _ = setup
    config, ckpt, net = cpd_checkpoint
    clf = build_classifier(str(config), 7)
    report = load_pretrained_encoder(clf, ckpt)
    assert report["new"] == ["head.bias", "head.weight"] and {"textual_encoder", "vis_memory"} <= set(
        report["dropped"])
    for k, v in net.visual_encoder.state_dict().items():
        assert torch.equal(clf.visual_encoder.state_dict()[k], v)
    with pytest.raises(CheckpointError, match="visual_encoder"):
        load_pretrained_encoder(R3DClassifier(7, depth=10, width=4), tvts_ckpt)
    with pytest.raises(CheckpointError, match="video_model"):
        load_pretrained_encoder(build_classifier(str(tvts_config), 7, input_size=32), ckpt)
    vit_cpd = tmp_path / "cpd_vit.json"
    vit_cpd.write_text(json.dumps({"arch": {"type": "CPD", "args": {"video_params": {"model": "tubelet_vit"}}}}))
    with pytest.raises(ValueError, match="3D ResNet"):
        build_classifier(str(vit_cpd), 7)
