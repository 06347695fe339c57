"""SimVTP's MSR-VTT fine-tuning: the dual towers (sizes and names counted from the official modules), their start
from a pretraining checkpoint, the layer-decay rules, the split files and views, and the protocol end to end."""
import copy
import json
import os

import numpy as np
import pytest
import torch

from conftest import ROOT, TINY_SIMVTP_ARGS, tiny_simvtp
from downstream import retrieval_finetune as rf
from downstream.optim import param_groups
from media import write_noise_video, write_tokenizer
from model.checkpoint import CheckpointError
from model.simvtp import SimVTPRetrieval, load_pretraining_weights
from utils.config import load_config


def tiny_retrieval(**kw):
    torch.manual_seed(0)
    return SimVTPRetrieval.from_pretraining_args(copy.deepcopy(TINY_SIMVTP_ARGS), **kw)


def test_full_size_towers_have_the_official_count_and_names():
    args = load_config(os.path.join(ROOT, "configs", "simvtp-webvid.json"))["arch"]["args"]
    model = SimVTPRetrieval.from_pretraining_args(args)
    d, v = 768, 30522
    block = 2 * d + 3 * d * d + 2 * d + d * d + d + 2 * d + d * 4 * d + 4 * d + 4 * d * d + d
    tower = 3 * 2 * 16 * 16 * d + d + 12 * block + 2 * d + (v * d + 512 * d + 2 * d + 2 * d)  # ... + fc_norm + BERT
    assert sum(p.numel() for p in model.parameters()) == 2 * tower
    state = model.state_dict()
    for name in ("video_encoder.patch_embed.proj.weight", "video_encoder.blocks.11.attn.v_bias",
                 "video_encoder.fc_norm.weight", "text_encoder.text_embeddings.word_embeddings.weight",
                 "text_encoder.blocks.0.mlp.fc1.weight", "text_encoder.patch_embed.proj.bias"):
        assert name in state, name
    assert not any(".norm." in k for k in state) and {k.split(".")[0] for k in state} == {"video_encoder",
                                                                                        "text_encoder"}
    assert model.video_encoder.blocks[0].drop_path == 0.0 and model.video_encoder.blocks[11].drop_path == \
        pytest.approx(0.1)


def test_both_towers_start_from_the_pretraining_encoder(tmp_path):
    pretrained = tiny_simvtp(seed=3)
    path = tmp_path / "pt.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in pretrained.state_dict().items()}}, path)
    model = tiny_retrieval()
    report = load_pretraining_weights(model, path)
    assert {".".join(k.split(".")[:2]) if k.startswith("encoder.") else k.split(".")[0] for k in report["unused"]} \
        == {"decoder", "encoder.norm", "encoder_to_decoder", "mask_token", "text_cls", "vtm_head"}
    source = pretrained.state_dict()
    for tower in (model.video_encoder, model.text_encoder):
        for k, v in tower.state_dict().items():
            if k.startswith("fc_norm."):
                continue
            expected = source["encoder." + k] if not k.startswith("text_embeddings.") else source[k]
            assert torch.equal(v, expected), k
    # the towers' features before fc_norm are the pretraining encoder's blocks without its final norm
    model.eval()
    pretrained.eval()
    ids, att = torch.tensor([[2, 9, 10, 3, 0]]), torch.tensor([[1, 1, 1, 1, 0]])
    with torch.no_grad():
        words = pretrained.text_embeddings(input_ids=ids)
        x = words
        bias = (1 - att).float()[:, None, None] * -10000.0
        for blk in pretrained.encoder.blocks:
            x = blk(x, bias=bias)
        torch.testing.assert_close(model.text_encoder.encode_text(ids, att), model.text_encoder.fc_norm(x.mean(1)))
    for layout in ({"module": pretrained.state_dict()}, pretrained.state_dict()):  # DeepSpeed, bare
        torch.save(layout, path)
        assert load_pretraining_weights(tiny_retrieval(), path)["loaded"] == report["loaded"]
    torch.save({"model": {**pretrained.state_dict(), "head.weight": torch.zeros(2)}}, path)
    with pytest.raises(CheckpointError, match="unexpected: head.weight"):
        load_pretraining_weights(model, path)
    torch.save({"model": {k: v for k, v in pretrained.state_dict().items() if not k.startswith("encoder.blocks.1.")}},
               path)
    with pytest.raises(CheckpointError, match="missing: blocks.1"):
        load_pretraining_weights(model, path)


def test_the_official_layer_decay_does_nothing_and_the_working_one_decays_by_block():
    model = tiny_retrieval()
    depth = len(model.video_encoder.blocks) + 1  # 2 blocks -> buckets 0..3
    official = param_groups(model, 0.05, 0.75, num_layers=depth, layer_of=rf.tower_layer_of("official", depth))
    assert {g["lr_scale"] for g in official} == {1.0}
    working = param_groups(model, 0.05, 0.75, num_layers=depth, layer_of=rf.tower_layer_of("working", depth))
    scale = {n: g["lr_scale"] for g in working for n in g["param_names"]}
    assert scale["video_encoder.patch_embed.proj.weight"] == pytest.approx(0.75 ** 3)
    assert scale["text_encoder.blocks.0.attn.qkv.weight"] == pytest.approx(0.75 ** 2)
    assert scale["video_encoder.blocks.1.mlp.fc1.weight"] == pytest.approx(0.75)
    assert scale["text_encoder.fc_norm.weight"] == scale["text_encoder.text_embeddings.word_embeddings.weight"] == 1
    decay = {n: g["weight_decay"] for g in working for n in g["param_names"]}
    assert decay["video_encoder.blocks.0.attn.q_bias"] == 0 and decay["video_encoder.blocks.0.attn.qkv.weight"] == 0.05


def test_split_files_and_the_carved_validation(tmp_path):
    path = tmp_path / "train.json"
    path.write_text(json.dumps({f"v{i}.mp4": f"caption {i}" for i in range(10)}))
    entries = rf.read_captions(str(path))
    assert entries[3] == ("v3.mp4", "caption 3")
    train, val = rf.carve_validation(entries, 3, seed=0)
    assert len(train) == 7 and len(val) == 3 and not set(train) & set(val) and set(train) | set(val) == set(entries)
    assert rf.carve_validation(entries, 3, seed=0) == (train, val) and rf.carve_validation(entries, 3, 1) != (train,
                                                                                                              val)
    path.write_text(json.dumps({"v.mp4": ["two", "captions"]}))
    with pytest.raises(ValueError, match="not a string"):
        rf.read_captions(str(path))
    with pytest.raises(FileNotFoundError, match="caption file"):
        rf.read_captions(str(tmp_path / "none.json"))


def test_test_views_are_ordered_view_major(tmp_path):
    data = rf.CaptionedVideos([(f"v{i}.mp4", "c") for i in range(4)], str(tmp_path), "test", test_num_segment=3,
                              test_num_crop=2)
    assert len(data) == 24
    assert [data.view(i) for i in (0, 3, 4, 8, 23)] == [(0, 0, 0), (3, 0, 0), (0, 0, 1), (0, 1, 0), (3, 2, 1)]


@pytest.fixture(scope="module")
def msrvtt(tmp_path_factory):
    root = tmp_path_factory.mktemp("msrvtt")
    os.makedirs(root / "videos")
    for i in range(8):
        write_noise_video(root / "videos" / f"video{i}.mp4", n=24, size=(48, 40), seed=i)
    words = [f"w{i}" for i in range(8)]
    (root / "train_9k_miech.json").write_text(json.dumps({f"videos/video{i}.mp4": f"w{i} w{i + 1}" for i in range(6)}))
    (root / "test_1k_miech.json").write_text(json.dumps({f"videos/video{i}.mp4": f"w{i}" for i in (6, 7)}))
    tok = write_tokenizer(str(root / "tok"), words)
    config = {"arch": {"type": "SimVTP", "args": copy.deepcopy(TINY_SIMVTP_ARGS)}, "tokenizer": {"name": tok}}
    (root / "config.json").write_text(json.dumps(config))
    return root


def run(msrvtt, out, *extra):
    return rf.main(["--config", str(msrvtt / "config.json"), "--data_path", str(msrvtt), "--output_dir", str(out),
                    "--batch_size", "2", "--epochs", "2", "--num_frames", "4", "--sampling_rate", "2",
                    "--input_size", "32", "--short_side_size", "32", "--test_num_segment", "2", "--test_num_crop",
                    "2", "--precision", "fp32", "--num_workers", "0", "--val_videos", "2", "--device", "cpu",
                    "--warmup_epochs", "1", "--reader", "pyav", *extra])


def test_fine_tuning_selects_on_the_carved_split_and_tests_the_selection(msrvtt, tmp_path):
    pretrained = tiny_simvtp(seed=1)
    torch.save({"state_dict": pretrained.state_dict()}, tmp_path / "pt.pth")
    result = run(msrvtt, tmp_path / "run", "--finetune", str(tmp_path / "pt.pth"))
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["select_on"] == "val" and saved["selected"]["videos"] == 2 and saved["test"]["videos"] == 2
    assert saved["test"] == pytest.approx(result) and {"t2v_R1", "t2v_R5", "v2t_R1", "t2v_MedR"} <= set(result)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert len(log) == 2 and all(np.isfinite(e["train_loss"]) for e in log) and "val_t2v_R1" in log[0]
    assert saved["pretraining"]["loaded"] > 0
    again = rf.main(["--config", str(msrvtt / "config.json"), "--data_path", str(msrvtt), "--output_dir",
                     str(tmp_path / "eval"), "--eval", str(tmp_path / "run" / "checkpoint-best.pth"),
                     "--num_frames", "4", "--sampling_rate", "2", "--input_size", "32", "--short_side_size", "32",
                     "--test_num_segment", "2", "--test_num_crop", "2", "--precision", "fp32", "--num_workers", "0",
                     "--device", "cpu", "--batch_size", "2", "--reader", "pyav"])
    assert again == pytest.approx(result)
    best = torch.load(tmp_path / "run" / "checkpoint-best.pth", weights_only=True)
    torch.save({"module": {"module." + k: v for k, v in best["model"].items()}}, tmp_path / "deepspeed.pt")
    model = tiny_retrieval()
    rf.load_finetuned(model, str(tmp_path / "deepspeed.pt"))  # the official DeepSpeed layout
    assert torch.equal(model.text_encoder.fc_norm.weight, best["model"]["text_encoder.fc_norm.weight"])
    with pytest.raises(RuntimeError, match="no video of the 2 listed could be read.*--video_root"):
        run(msrvtt, tmp_path / "none", "--video_root", str(tmp_path / "nowhere"), "--eval",
            str(tmp_path / "run" / "checkpoint-best.pth"))


def test_selecting_on_the_test_set_is_the_official_rule(msrvtt, tmp_path):
    run(msrvtt, tmp_path / "run", "--select_on", "test", "--epochs", "1")
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert saved["select_on"] == "test" and log[0]["test_t2v_R1"] == saved["test"]["t2v_R1"]


def test_the_launch_script_passes_the_official_recipe(tmp_path):
    """scripts/ft_msrvtt_simvtp.sh through a stand-in torchrun: the flags parse with the protocol's parser and carry
    the official values."""
    import subprocess
    (tmp_path / "torchrun").write_text('#!/usr/bin/env bash\necho "$@" > "$RECORD"\n')
    os.chmod(tmp_path / "torchrun", 0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "RECORD": str(tmp_path / "args"),
           "NPROC_PER_NODE": "8"}
    subprocess.run(["bash", os.path.join(ROOT, "scripts", "ft_msrvtt_simvtp.sh"), "--select_on", "test"], env=env,
                   check=True)
    words = (tmp_path / "args").read_text().split()
    assert words[:6] == ["--nnodes=1", "--node_rank=0", "--nproc_per_node=8", "--master_addr=127.0.0.1",
                         "--master_port=29501", "-m"] and words[6] == "downstream.retrieval_finetune"
    args = rf.build_parser().parse_args(words[7:])
    assert (args.batch_size, args.lr, args.min_lr, args.warmup_epochs, args.epochs) == (8, 3e-4, 1e-6, 5, 100)
    assert (args.layer_decay, args.layer_decay_rule, args.drop_path, args.precision) == (0.75, "official", 0.1, "fp16")
    assert (args.test_num_segment, args.test_num_crop, args.select_on, args.temperature) == (3, 3, "test", 0.05)
    assert (args.aa, args.reprob, args.gather) == ("rand-m7-n4-mstd0.5-inc1", 0.25, False)


def test_features_of_a_simvtp_checkpoint_follow_its_config(msrvtt, tmp_path):
    """Feature extraction from a SimVTP pretraining checkpoint: the config's frame count and size, the unit-norm
    mean of the encoder's tokens over the whole clip."""
    from downstream.extract_features import Extractor
    from model import build_model
    torch.manual_seed(0)
    net = build_model({"type": "SimVTP", "args": copy.deepcopy(TINY_SIMVTP_ARGS)}).eval()
    torch.save({"state_dict": net.state_dict()}, tmp_path / "pt.pth")
    paths = [str(msrvtt / "videos" / f"video{i}.mp4") for i in range(3)]
    extractor = Extractor(str(tmp_path / "pt.pth"), model=str(msrvtt / "config.json"), device="cpu", reader="pyav")
    features = extractor(paths)
    assert (extractor.num_frames, extractor.input_size) == (4, 32) and features.shape == (3, 32)
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1, atol=1e-5)
    clip = extractor.dataset(paths)[1]["video"][None]
    with torch.no_grad():
        tokens = net.encoder(net.encoder.embed(clip))
    np.testing.assert_allclose(features[1], torch.nn.functional.normalize(tokens.mean(1), dim=1)[0].numpy(),
                               atol=1e-5)


@pytest.mark.parametrize("pool", ["mean", "masked_mean"])
def test_caption_embeddings_per_view_depend_on_padding_only_with_the_official_mean(msrvtt, pool):
    """The official embeds a caption with each of its views, in that view's batch (padded to the batch's longest),
    and averages the copies; with mean pooling over padding that differs from one embedding per caption, with a
    masked mean it does not."""
    from torch.utils.data import DataLoader
    from data_loader.tokenizers import build_tokenizer
    from downstream.engine import ShardSampler
    from utils.distributed import DistEnv
    tokenizer = build_tokenizer("huggingface", str(msrvtt / "tok"), max_length=512)
    entries = [(f"videos/video{i}.mp4", " ".join(f"w{j}" for j in range(i + 1))) for i in range(4)]  # lengths differ
    data = rf.CaptionedVideos(entries, str(msrvtt), "test", num_frames=4, sampling_rate=2, short_side_size=32,
                              test_num_segment=2, test_num_crop=1, reader="pyav")
    loader = DataLoader(data, batch_size=3, sampler=ShardSampler(len(data)), collate_fn=rf.CaptionCollator(tokenizer))
    model = tiny_retrieval(pool=pool)
    out = {mode: rf.embed_split(model, loader, data, tokenizer, device=torch.device("cpu"), dtype=None, batch_size=4,
                                env=DistEnv(), desc="test", captions=mode) for mode in ("views", "once")}
    torch.testing.assert_close(out["views"][1], out["once"][1])  # the videos are the same either way
    assert torch.allclose(out["views"][0], out["once"][0], atol=1e-5) == (pool == "masked_mean")
