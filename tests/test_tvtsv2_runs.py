"""TVTSv2 through the entry points: train.py (YT-Temporal and WebVid alternating, tube masks, the CLIP tokenizer,
the official parameter groups), test.py and feature extraction, switched from TVTS by the config alone."""
import json
import os

import av
import numpy as np
import pytest
import torch
from PIL import Image

import test as evaluate_script
import train
from conftest import ROOT, tiny_v2_args
from downstream.extract_features import main as extract_main
from media import frame_index, write_indexed_video, write_yt_corpus
from model import build_model, load_checkpoint
from trainer.checkpointing import load_training_checkpoint
from utils import load_config

FPS = 4


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("v2_corpus")
    data_dir, meta_dir = write_yt_corpus(str(root), {f"subset_0/data/v{i}.mp4": 26 + i for i in range(4)}, fps=FPS)
    (root / "WebVid" / "train" / "p").mkdir(parents=True)
    (root / "WebVid" / "val" / "p").mkdir(parents=True)
    rows = []
    for i in range(6):
        for split in ("train", "val"):
            write_indexed_video(root / "WebVid" / split / "p" / f"w{i}.mp4", n=26 + i, fps=FPS)
        rows.append(f"a person waves {i}\tp/w{i}")
    for split in ("train", "val"):
        (root / "meta_data" / f"webvid_{split}.tsv").write_text("name\tpage_dir\n" + "\n".join(rows) + "\n")
    return {"root": root, "data_dir": data_dir, "meta_dir": meta_dir}


def v2_config(corpus, tmp_path, **trainer):
    """configs/tvtsv2-b16.json with tiny towers and the test corpus: the recipe's rules, the tiny sizes."""
    cfg = load_config(os.path.join(ROOT, "configs", "tvtsv2-b16.json"))
    args = tiny_v2_args(clip_checkpoint="", text_params={"vocab_size": 49408, "context_length": 77})
    cfg["arch"]["args"] = args
    cfg["name"] = "tiny-v2"
    for entry, data_dir in zip(cfg["data_loader"], (corpus["data_dir"], str(corpus["root"] / "WebVid"))):
        entry["args"].update(data_dir=data_dir, meta_dir=corpus["meta_dir"], reader="pyav", num_workers=0,
                             batch_size=2, patch_size=8)
        entry["args"]["video_params"]["input_res"] = 32
    cfg["trainer"].update(epochs=2, save_dir=str(tmp_path / "runs"), log_every=1, tensorboard=False, device="cpu",
                          save_every_steps=0, **trainer)
    cfg["lr_scheduler"]["milestones"] = [1]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return str(path)


def test_tvtsv2_trains_and_evaluates_from_its_config(corpus, tmp_path):
    train.main(["-c", v2_config(corpus, tmp_path)])
    base = tmp_path / "runs" / "tiny-v2"
    run = base / sorted(os.listdir(base))[-1]
    lines = [json.loads(line) for line in open(run / "metrics.jsonl")]
    assert [m["epoch"] for m in lines] == [0, 1, 2]
    assert {"YTTemporal/sort_order_acc", "YTTemporal/t2v_R1", "WebVid/t2v_R1"} <= set(lines[-1])
    assert "WebVid/sort_acc" not in lines[-1]  # one caption per clip: nothing to sort
    ckpt = load_training_checkpoint(str(run / "checkpoint-epoch2.pth"))
    assert ckpt["arch"] == "TVTSv2" and ckpt["task"] == {}
    # an epoch is one pass over YT-Temporal (4 clips / 2 = 2 iterations), each with a YT and a WebVid step
    assert ckpt["step"] == 2 * 2 * 2
    groups = ckpt["optimizer"]["param_groups"]
    assert [g["lr"] for g in groups] == pytest.approx([1e-5, 1e-5, 1e-8, 1e-8])  # after milestone 1: x 0.1
    assert [g["weight_decay"] for g in groups] == [0.05, 0.0, 0.05, 0.0]
    out = tmp_path / "eval.json"
    evaluate_script.main(["-r", str(run / "checkpoint-epoch2.pth"), "--out", str(out)])
    result = json.load(open(out))["results"]
    assert result["YTTemporal"]["t2v_R1"] == pytest.approx(lines[-1]["YTTemporal/t2v_R1"])
    assert result["YTTemporal"]["sort_acc"] == pytest.approx(lines[-1]["YTTemporal/sort_acc"])
    # the frozen text blocks did not move; the tuned one did
    state = ckpt["state_dict"]
    start = load_training_checkpoint(str(run / "checkpoint-epoch1.pth"))["state_dict"]
    assert torch.equal(state["text_model.resblocks.0.mlp.c_fc.weight"], start["text_model.resblocks.0.mlp.c_fc.weight"])
    assert not torch.equal(state["text_model.resblocks.2.mlp.c_fc.weight"],
                           start["text_model.resblocks.2.mlp.c_fc.weight"])


def test_tvtsv2_config_errors_name_what_does_not_fit(corpus, tmp_path):
    from trainer.config import validate_config
    from utils.config import ConfigError
    cfg = load_config(v2_config(corpus, tmp_path))
    with pytest.raises(ConfigError, match="tokenizer.type 'huggingface' does not fit TVTSv2"):
        validate_config({**cfg, "tokenizer": {"type": "huggingface"}}, "v2")
    bad = json.loads(json.dumps(cfg))
    bad["data_loader"][0]["args"]["masking"] = "per_slot"
    with pytest.raises(ConfigError, match="masking 'per_slot' does not fit TVTSv2"):
        validate_config(bad, "v2")
    bad = json.loads(json.dumps(cfg))
    bad["arch"]["args"]["clip_checkpoint"] = "/nowhere/ViT-B-16.pt"
    with pytest.raises(ConfigError, match="clip_checkpoint file not found"):
        validate_config(bad, "v2")
    bad = json.loads(json.dumps(cfg))
    del bad["data_loader"][1]["args"]["patch_size"]  # the masker would draw from 4 patches of 16 px, the tower has 16
    with pytest.raises(ConfigError, match="draws from 4 patches per frame.*has 16"):
        validate_config(bad, "v2")
    bad = json.loads(json.dumps(cfg))
    bad["data_loader"][0]["args"]["patches_per_frame"] = 196  # the official key, disagreeing with 32 px / 8
    with pytest.raises(ConfigError, match="patches_per_frame 196 does not match"):
        validate_config(bad, "v2")
    with pytest.raises(ConfigError, match="arch.type 'TVTSv3' is unknown"):
        validate_config({**cfg, "arch": {"type": "TVTSv3", "args": {}}}, "v2")


def test_tvtsv2_features_follow_the_official_extraction_rule(tmp_path):
    args = tiny_v2_args()
    config = tmp_path / "tiny-v2.json"
    config.write_text(json.dumps({"arch": {"type": "TVTSv2", "args": args}}))
    torch.manual_seed(3)
    net = build_model({"type": "TVTSv2", "args": args}).eval()
    release = tmp_path / "release.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in net.state_dict().items()
                               if not k.startswith("pred_model.")}}, release)
    video = write_indexed_video(tmp_path / "v.mp4", n=37, size=(64, 48))
    out = tmp_path / "feats.npz"
    assert extract_main(["--input", str(video), "--output", str(out), "--finetune", str(release), "--model",
                         str(config), "--num_workers", "0", "--device", "cpu"]) == 0
    saved = np.load(out)
    assert saved["features"].shape == (1, 24)
    # the official rule, restated: 12 frames at linspace(0, n - 1, 12), each squashed to 32x32 (PIL bilinear)
    with av.open(str(video)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    picks = np.linspace(0, len(decoded) - 1, 12).astype(int)
    assert [frame_index(decoded[i]) for i in picks] == picks.tolist()
    frames = np.stack([np.asarray(Image.fromarray(decoded[i]).resize((32, 32), Image.BILINEAR)) for i in picks])
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
    x = (x - torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    fresh = build_model({"type": "TVTSv2", "args": args}).eval()
    assert load_checkpoint(fresh, release)["absent"] == {"pred_model": 29}
    with torch.no_grad():
        expected = fresh.compute_video(x[None], None)[1]
    np.testing.assert_allclose(saved["features"], expected.numpy(), rtol=0, atol=1e-4)


def test_a_tokenizer_longer_than_the_text_context_is_refused(corpus, tmp_path):
    with pytest.raises(ValueError, match="tokenizer.max_length 78 exceeds the text tower's context of 77"):
        train.main(["-c", v2_config(corpus, tmp_path), "tokenizer.max_length=78"])
