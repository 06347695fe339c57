"""CPD pretraining through train.py and across ranks: the frozen-text curriculum, the memory banks in the
checkpoint and on a resume, and the banks kept identical on every rank by the gathered update."""
import copy
import json
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

import train
from conftest import ROOT, TINY_CPD_ARGS, tiny_cpd
from data_loader import synthetic
from media import write_tokenizer, write_yt_corpus
from test_distributed import _free_port
from test_training import run_dir_of
from trainer.checkpointing import load_training_checkpoint
from trainer.task import build_task
from utils.distributed import cleanup

NUM_VIDEOS = 6


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("cpd_corpus")
    names = {f"subset_0/data/v{i}.mp4": 20 + i for i in range(NUM_VIDEOS)}
    data_dir, meta_dir = write_yt_corpus(str(root), names, fps=4)
    tok = write_tokenizer(str(root / "tok"), [f"s{i}" for i in range(40)])
    return {"data_dir": data_dir, "meta_dir": meta_dir, "tokenizer": tok, "root": root}


def write_config(corpus, tmp_path, freeze=1, epochs=2, **trainer):
    cfg = {
        "name": "tiny", "seed": 5, "arch": {"type": "CPD", "args": copy.deepcopy(TINY_CPD_ARGS)},
        "tokenizer": {"name": corpus["tokenizer"], "max_length": 12, "padding": "max_length", "truncation": "slice"},
        "data_loader": [{"type": "MultiDistTextVideoDataLoader", "args": {
            "dataset_name": "YTTemporal", "data_dir": corpus["data_dir"], "meta_dir": corpus["meta_dir"],
            "reader": "pyav", "num_workers": 0, "batch_size": 2, "split": "train", "masking": "none",
            "video_params": {"input_res": 32, "num_frames": 4, "n_trans": 1, "frame_sampling": "clip",
                             "clip_stride": 2, "augment": "slowfast_jitter", "jitter_range": [32, 40],
                             "loading": "lax"}}}],
        "optimizer": {"type": "SGD", "args": {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4}, "param_groups": [
            {"name": "text", "match": r"^textual_encoder\.", "lr": 0.01, "from_epoch": freeze + 1},
            {"name": "rest", "match": ""}]},
        "lr_scheduler": {"decay": "step", "milestones": []},
        "loss": {"type": "CPDLoss", "args": {"num_negatives": 4, "text_freeze_epochs": freeze}},
        "trainer": {"epochs": epochs, "save_dir": str(tmp_path / "runs"), "log_every": 1, "tensorboard": False,
                    "device": "cpu", "monitor": "max t2v_R1", **trainer},
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return str(path)


def group_lr(ckpt, name):
    """The learning rate a checkpoint's optimiser holds for the "text" group (the one with `from_epoch`) or
    the "rest"."""
    groups = ckpt["optimizer"]["param_groups"]
    assert len(groups) == 2 and "from_epoch" in groups[0] and "from_epoch" not in groups[1], groups
    return groups[0 if name == "text" else 1]["lr"]


def test_the_text_tower_stays_frozen_for_the_curriculum_then_trains(corpus, tmp_path):
    train.main(["-c", write_config(corpus, tmp_path, freeze=2, epochs=3, save_period=1)])
    run = run_dir_of(tmp_path)
    ckpts = [load_training_checkpoint(os.path.join(run, f"checkpoint-epoch{e}.pth")) for e in (1, 2, 3)]

    def part(ckpt, prefix):
        return {k: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix) and v.is_floating_point()}
    first, second, third = (part(c, "textual_encoder.") for c in ckpts)
    assert first and all(torch.equal(first[k], second[k]) for k in first)  # frozen through epochs 1-2
    assert any(not torch.equal(second[k], third[k]) for k in second)  # trained in epoch 3
    heads = [part(c, "text_emb.") for c in ckpts]
    assert any(not torch.equal(heads[0][k], heads[1][k]) for k in heads[0])  # the text head trains throughout
    assert group_lr(ckpts[1], "text") == 0.0 and group_lr(ckpts[2], "text") == pytest.approx(0.01)
    assert group_lr(ckpts[0], "rest") == pytest.approx(0.1)
    text_params = ckpts[1]["optimizer"]["param_groups"][0]["params"]
    assert not set(text_params) & set(ckpts[1]["optimizer"]["state"])  # no gradient ever reached them: no momentum
    assert set(text_params) <= set(ckpts[2]["optimizer"]["state"])

    memory = ckpts[2]["task"]["memory"]
    assert ckpts[2]["task"]["steps"] == 3 * NUM_VIDEOS // 2
    assert memory["vis_memory"].shape == memory["text_memory"].shape == (NUM_VIDEOS, TINY_CPD_ARGS["emb_dim"])
    torch.testing.assert_close(memory["vis_memory"].norm(dim=1), torch.ones(NUM_VIDEOS))  # every slot was updated
    assert memory["Z_v"].item() > 0 and memory["Z_t"].item() > 0
    with open(os.path.join(run, "metrics.jsonl")) as f:
        lines = [json.loads(line) for line in f]
    assert {"YTTemporal/t2v_R1", "YTTemporal/v2t_MedR"} <= set(lines[-1])


def test_a_resumed_cpd_run_reproduces_the_uninterrupted_one(corpus, tmp_path):
    """Interrupted mid-epoch 1 and resumed: the network, the banks, the normalisers and the negatives drawn after
    the resume (seeded by the step) are those of the uninterrupted run, and the text tower unfreezes on time."""
    full, part = tmp_path / "full", tmp_path / "part"
    full.mkdir(), part.mkdir()
    train.main(["-c", write_config(corpus, full, save_every_steps=1, init_val=False)])
    reference = load_training_checkpoint(os.path.join(run_dir_of(full), "checkpoint-epoch2.pth"))
    train.main(["-c", write_config(corpus, part, save_every_steps=1, init_val=False), "trainer.epochs=1",
                "trainer.max_steps_per_epoch=2"])
    latest = os.path.join(run_dir_of(part), "checkpoint-latest.pth")
    assert load_training_checkpoint(latest)["task"]["steps"] == 2
    train.main(["-r", latest, "trainer.epochs=2", "trainer.max_steps_per_epoch=0"])
    resumed = load_training_checkpoint(os.path.join(run_dir_of(part), "checkpoint-epoch2.pth"))
    assert resumed["task"]["steps"] == reference["task"]["steps"] == 2 * NUM_VIDEOS // 2
    for name, value in reference["state_dict"].items():
        torch.testing.assert_close(resumed["state_dict"][name], value, rtol=1e-5, atol=1e-7, msg=name)
    for name, value in reference["task"]["memory"].items():
        torch.testing.assert_close(resumed["task"]["memory"][name], value, rtol=1e-5, atol=1e-7, msg=name)


def test_text_to_video_retrieval_on_synthetic_captions_rises_above_chance(tmp_path):
    """The demo recipe (configs/cpd-demo-cpu.json) on a small corpus made by the project's generator: after a short
    pretraining (40 epochs of batches of 8, the text tower frozen for 2) the captions of the training clips retrieve
    their own clip at twice chance or more, R@10 at 1.5x chance, and the median rank falls from the untrained
    model's (about n / 2) to 0.4 n or less (measured: R@1 7%, R@10 42%, median 11 of 43). Validated on the
    training clips: the objective is instance discrimination."""
    data = tmp_path / "synthetic"
    synthetic.generate_corpus(data, num_videos=48, num_labelled=5, seed=0, workers=1)
    meta = data / "meta_data"
    (meta / "yttemporal_val.csv").write_text((meta / "yttemporal_train.csv").read_text())
    n = len((meta / "yttemporal_train.csv").read_text().split()) - 1
    config = os.path.join(ROOT, "configs", "cpd-demo-cpu.json")
    train.main(["-c", config, f"trainer.save_dir=\"{tmp_path / 'runs'}\"", "trainer.epochs=40",
                "trainer.val_every=40", "trainer.tensorboard=false", "trainer.save_period=40",
                "data_loader.0.args.batch_size=8",
                f"tokenizer.name=\"{data / 'tokenizer'}\"", f"data_loader.0.args.data_dir=\"{data / 'YTTemporal'}\"",
                f"data_loader.0.args.meta_dir=\"{meta}\"", "loss.args.text_freeze_epochs=2",
                "optimizer.param_groups.0.from_epoch=3", "data_loader.0.args.video_params.decoded_cache_mb=256"])
    base = tmp_path / "runs" / "cpd-demo-cpu"
    with open(base / sorted(os.listdir(base))[-1] / "metrics.jsonl") as f:
        first, last = [json.loads(line) for line in f]
    chance = 100.0 / n  # R@1 of a random ranking (R@10: 10 / n); its median rank is about n / 2
    assert first["YTTemporal/t2v_MedR"] > 0.4 * n
    assert last["YTTemporal/t2v_R1"] >= 2 * chance - 1e-6, (n, last)
    assert last["YTTemporal/t2v_R10"] >= 1.5 * 10 * chance and last["YTTemporal/t2v_MedR"] <= 0.4 * n, (n, last)


def test_the_cpd_loader_drops_a_partial_last_training_batch(corpus):
    """Official CPD: every training step a full batch (6 clips, batches of 4: one step); validation keeps all."""
    from data_loader.loader import build_dataloader
    from data_loader.tokenizers import build_tokenizer
    args = json.loads(open(write_config(corpus, corpus["root"])).read())["data_loader"][0]["args"]
    tokenizer = build_tokenizer("huggingface", corpus["tokenizer"], 12)
    assert len(build_dataloader({**args, "batch_size": 4}, tokenizer)) == 2
    assert len(build_dataloader({**args, "batch_size": 4, "drop_last_batch": True}, tokenizer)) == 1
    with pytest.raises(ValueError, match="drop_last_batch must be true or false"):
        build_dataloader({**args, "drop_last_batch": "false"}, tokenizer)
    val = build_dataloader({**args, "batch_size": 4, "drop_last_batch": True}, tokenizer, split="val")
    assert sum(len(b["index"]) for b in val) == NUM_VIDEOS
    for name in ("cpd-ins300k", "cpd-webvid", "cpd-demo-cpu"):
        with open(os.path.join(ROOT, "configs", f"{name}.json")) as f:
            assert json.load(f)["data_loader"][0]["args"]["drop_last_batch"] is True, name


def test_a_checkpoint_of_another_training_set_is_refused(corpus, tmp_path):
    cfg = {"loss": {"type": "CPDLoss", "args": {"num_negatives": 4}}, "trainer": {"precision": "fp32"}, "seed": 0}
    task = build_task(cfg, "cpu")
    task.attach(tiny_cpd(), [FakeDataset(10)])
    state = build_task(cfg, "cpu")
    state.attach(tiny_cpd(), [FakeDataset(12)])
    with pytest.raises(ValueError, match="memory banks"):
        task.load_state_dict(state.state_dict())
    with pytest.raises(ValueError, match="'memory' and 'steps'"):
        task.load_state_dict({})
    with pytest.raises(ValueError, match="one caption"):
        task.attach(tiny_cpd(), [FakeDataset(10, texts_per_sample=4)])


class FakeDataset:
    def __init__(self, n, texts_per_sample=1):
        self.n, self.texts_per_sample = n, texts_per_sample

    def __len__(self):
        return self.n


# --------------------------------------------------------------------------------------------- two ranks
B, N, STEPS = 2, 8, 2


def _global_batch(step):
    g = torch.Generator().manual_seed(100 + step)
    ids = torch.randint(5, 100, (2 * B, 6), generator=g)
    return {"text": {"input_ids": ids, "attention_mask": torch.ones_like(ids)},
            "video": torch.randn(2 * B, 4, 3, 32, 32, generator=g), "index": torch.randperm(N, generator=g)[:2 * B]}


def _rank_batch(batch, rank):
    rows = slice(rank * B, (rank + 1) * B)
    return {"text": {k: v[rows] for k, v in batch["text"].items()}, "video": batch["video"][rows],
            "index": batch["index"][rows]}


def _cpd_worker(rank, world, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    cfg = {"loss": {"type": "CPDLoss", "args": {"num_negatives": 3, "text_freeze_epochs": 1}},
           "trainer": {"precision": "fp32"}, "seed": 0}
    model = tiny_cpd(seed=0).eval()  # no dropout: the ranks' features are those of one process
    task = build_task(cfg, "cpu")
    task.attach(model, [FakeDataset(N)])
    task.set_epoch(1)
    initial = {k: v.clone() for k, v in task.loss.state_dict().items()}
    net = DistributedDataParallel(model, find_unused_parameters=True)
    grads = []
    for step in range(STEPS):
        net.zero_grad()
        task.training_losses(net, _rank_batch(_global_batch(step), rank))["total"].backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    torch.save({"initial": initial, "memory": task.loss.state_dict(), "grads": grads,
                "text_grads": [p.grad for p in model.textual_encoder.parameters()]}, f"{out}.{rank}")
    del net
    cleanup()


def test_two_ranks_keep_identical_banks_updated_with_the_global_batch(tmp_path):
    out = str(tmp_path / "cpd")
    mp.spawn(_cpd_worker, args=(2, _free_port(), out), nprocs=2, join=True)
    ranks = [torch.load(f"{out}.{r}") for r in range(2)]
    for key, value in ranks[0]["memory"].items():
        assert torch.equal(value, ranks[1]["memory"][key]), key  # every rank holds the same banks
    assert all(g is None for r in ranks for g in r["text_grads"])  # frozen text tower: no gradient at all
    for a, b in zip(ranks[0]["grads"], ranks[1]["grads"]):  # DDP averaged the video tower's gradients
        assert a.keys() == b.keys() and any(k.startswith("visual_encoder.") for k in a)
        for name in a:
            torch.testing.assert_close(a[name], b[name], msg=name)

    # the banks restated: each step moves the global batch's rows to normalise(0.5 * row + 0.5 * feature)
    model = tiny_cpd(seed=0).eval()
    banks = {k: ranks[0]["initial"][k].clone() for k in ("vis_memory", "text_memory")}
    with torch.no_grad():
        for step in range(STEPS):
            batch = _global_batch(step)
            text, video = model({"text": batch["text"], "video": batch["video"], "text_grad": False})
            for name, feats in (("vis_memory", video), ("text_memory", text)):
                rows = batch["index"]
                banks[name][rows] = F.normalize(0.5 * banks[name][rows] + 0.5 * feats, dim=1)
    for name, bank in banks.items():
        torch.testing.assert_close(ranks[0]["memory"][name], bank, rtol=1e-5, atol=1e-6, msg=name)
    assert ranks[0]["memory"]["Z_v"].item() > 0
