"""Fine-tuning for text-video retrieval: SimVTP's MSR-VTT protocol (the official `run_simvtp_finetuning.py`).

    python -m downstream.retrieval_finetune --config configs/simvtp-webvid.json --finetune <pretraining ckpt> \\
        --data_path data/MSRVTT --output_dir results/simvtp_msrvtt

The dual-tower model (`model.simvtp.SimVTPRetrieval`) starts both towers from one pretraining checkpoint and
trains NormSoftmax (temperature 0.05) over each process's batch of caption-clip pairs. Captions come from the
authors' split files (`train_9k_miech.json`, `test_1k_miech.json`: {video path: caption}); training clips are
VideoMAE's (16 frames over a 64-frame window, RandAugment, random-resized crop, flip, random erasing), test views
3 clips x 3 crops per video whose embeddings are averaged. Model selection: a validation split carved from the
training videos (`--val_videos`), or the official's best epoch on the test set (`--select_on test`). The last step
tests the selected checkpoint; `results.json` holds t2v and v2t R@1/5/10/50, MedR and MeanR.
"""
import argparse
import json
import logging
import math
import os
import time

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from data_loader.base import FailSafeDataset
from data_loader.readers import ReaderByFile, VideoReadError
from data_loader.tokenizers import build_tokenizer
from model.checkpoint import CheckpointError, load_state_dict_strict, read_checkpoint, strip_prefix
from model.loss import norm_softmax_loss, sim_matrix
from model.simvtp import SimVTPRetrieval, load_pretraining_weights
from utils.amp import OptimizerStep, autocast, autocast_dtype
from utils.config import load_config
from utils.distributed import cleanup, gather_objects, gather_with_grad, init_distributed
from utils.io import save_torch, write_json
from utils.retrieval import text_video_metrics
from utils.schedule import cosine_scheduler

from .common import setup_logging
from .datasets import dense_indices, dense_test_indices, long_side_crop, resize_short_side, to_normalized_tensor
from .engine import ShardSampler, report_failures
from .optim import build_optimizer, layer_id, param_groups, set_lr_wd
from .video_augment import TrainAugment

log = logging.getLogger("downstream")
SELECT_ON = ("val", "test")
LAYER_DECAY_RULES = ("official", "working")


def read_captions(path):
    """An authors' split file: a json object {video path: caption} -> list of (path, caption), in file order."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"caption file not found: {path}")
    with open(path, encoding="utf-8") as f:
        try:
            table = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid json: {e}") from None
    if not isinstance(table, dict) or not table:
        raise ValueError(f"{path} must be a non-empty json object {{video path: caption}}")
    bad = [k for k, v in table.items() if not isinstance(v, str)]
    if bad:
        raise ValueError(f"{path}: {len(bad)} videos have a caption that is not a string, e.g. {bad[0]!r}")
    return list(table.items())


def carve_validation(entries, count, seed):
    """(train, validation): `count` videos drawn with a seeded permutation become the validation split."""
    if not 0 < count < len(entries):
        raise ValueError(f"--val_videos must lie between 1 and {len(entries) - 1}, got {count}")
    order = np.random.default_rng(seed).permutation(len(entries))
    held = set(order[:count].tolist())
    return [e for i, e in enumerate(entries) if i not in held], [entries[i] for i in sorted(held)]


class CaptionedVideos(FailSafeDataset):
    """Items `{"video": (3, T, S, S) float32, "text": caption, "video_index", "chunk", "split"}`. Training: one
    augmented clip per video (`train_transform`). Evaluation: `test_num_segment` x `test_num_crop` views per video,
    ordered view-major as the official (temporal view, then crop, then video); frames every `sampling_rate`-th,
    short side resized to `short_side_size`, squares along the long side."""

    def __init__(self, entries, video_root, mode, num_frames=16, sampling_rate=4, short_side_size=224,
                 test_num_segment=3, test_num_crop=3, train_transform=None, reader="auto", loading="lax", seed=0):
        super().__init__("train" if mode == "train" else "test", loading=loading, seed=seed)
        if mode == "train" and not callable(train_transform):
            raise ValueError("training needs a train_transform")
        self.entries, self.mode, self.train_transform = list(entries), mode, train_transform
        self.paths = [p if os.path.isabs(p) else os.path.join(video_root, p) for p, _ in self.entries]
        self.num_frames, self.sampling_rate, self.short_side_size = num_frames, sampling_rate, short_side_size
        self.test_num_segment, self.test_num_crop = test_num_segment, test_num_crop
        self.views = 1 if mode == "train" else test_num_segment * test_num_crop
        self._names = [p for p, _ in self.entries] * self.views
        self._reader = ReaderByFile(reader)

    def view(self, index):
        videos = len(self.entries)
        return index % videos, index // (videos * self.test_num_crop), (index // videos) % self.test_num_crop

    def _load(self, index, rng):
        video_index, chunk, split = self.view(index)
        path = self.paths[video_index]
        with self._reader.open(path) as video:
            if video.num_frames < 1:
                raise VideoReadError(f"video has no frames: {path}")
            n = video.num_frames
            if self.mode == "train":
                frames = video.read(dense_indices(n, self.num_frames, self.sampling_rate, rng))
            else:
                frames = video.read(dense_test_indices(n, self.num_frames, self.sampling_rate, chunk,
                                                       self.test_num_segment))
        if self.mode == "train":
            clip = self.train_transform(frames, rng)
        else:
            clip = to_normalized_tensor(long_side_crop(resize_short_side(frames, self.short_side_size),
                                                       self.short_side_size, split, self.test_num_crop))
        return {"video": clip, "text": self.entries[video_index][1], "video_index": video_index, "chunk": chunk,
                "split": split}


class CaptionCollator:
    """Batch readable items, tokenising their captions (padded to the batch's longest); `failed` / `skipped` gather
    the records of unreadable items."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def __call__(self, items):
        ok = [item for item in items if "failed" not in item]
        batch = {"failed": [item["failed"] for item in items if "failed" in item],
                 "skipped": [r for item in ok for r in item.get("skipped", ())],
                 "video_index": torch.tensor([item["video_index"] for item in ok], dtype=torch.long)}
        if ok:
            batch["video"] = torch.stack([item["video"] for item in ok])
            batch["text"] = self.tokenizer([item["text"] for item in ok])
        return batch


def tower_layer_of(rule, num_layers):
    """The lr-decay bucket of a retrieval-model parameter. "official": VideoMAE's rule on the full name, which
    starts with `video_encoder.` / `text_encoder.` and so always falls in the top bucket (every scale 1: the
    official layer decay does nothing); "working": the same rule on the name inside its tower."""
    if rule == "official":
        return lambda name: layer_id(name, num_layers)
    return lambda name: layer_id(name.split(".", 1)[1], num_layers)


def retrieval_loss(video, text, temperature, gather):
    """NormSoftmax over the text x video cosine matrix of this process's pairs (official), or every process's."""
    if gather:
        video, text = gather_with_grad(video, "exact"), gather_with_grad(text, "exact")
    return norm_softmax_loss(sim_matrix(text.float(), video.float()), temperature)


@torch.no_grad()
def _sum_by_video(sums, counts, indices, embeddings):
    for i, e in zip(indices, embeddings):
        sums[i] = sums.get(i, 0) + e
        counts[i] = counts.get(i, 0) + 1


@torch.no_grad()
def embed_split(model, loader, data, tokenizer, *, device, dtype, batch_size, env, desc, captions="views"):
    """(text (N, D), video (N, D)) embeddings of every video of `data` with a readable view, and how many have
    none (left out, counted). Video: the mean over its views. Caption, `captions` "views" (official): embedded with
    each view, in that view's evaluation batch (padded to the batch's longest), and averaged like the video;
    "once": embedded once, in batches of `batch_size` captions."""
    model.eval()
    net = model.module if isinstance(model, DistributedDataParallel) else model
    acc = {"video": ({}, {}), "text": ({}, {})}
    failed = []
    for batch in tqdm(loader, desc=desc, disable=not env.is_main, dynamic_ncols=True, leave=False):
        failed.extend(batch["failed"])
        if "video" not in batch:
            continue
        index = batch["video_index"].tolist()
        with autocast(device, dtype):
            video = net.video_encoder.encode_video(batch["video"].to(device).transpose(1, 2)).float().cpu()
            _sum_by_video(*acc["video"], index, video)
            if captions == "views":
                tokens = {k: v.to(device) for k, v in batch["text"].items()}
                text = net.text_encoder.encode_text(tokens["input_ids"], tokens["attention_mask"]).float().cpu()
                _sum_by_video(*acc["text"], index, text)
    parts = gather_objects({"acc": acc, "failed": failed})
    merged = {kind: ({}, {}) for kind in acc}
    for part in parts:
        for kind, (sums, counts) in part["acc"].items():
            for i, e in sums.items():
                merged[kind][0][i] = merged[kind][0].get(i, 0) + e
                merged[kind][1][i] = merged[kind][1].get(i, 0) + counts[i]
    report_failures([r for p in parts for r in p["failed"]], f"{desc} views")
    keep = sorted(merged["video"][0])
    if not keep:
        raise RuntimeError(f"{desc}: no video of the {len(data.entries)} listed could be read (first: "
                           f"{data.paths[0]}); check --data_path / --video_root")

    def means(kind):
        sums, counts = merged[kind]
        return torch.stack([sums[i] / counts[i] for i in keep])
    if captions == "views":
        return means("text"), means("video"), len(data.entries) - len(keep)
    texts = [data.entries[i][1] for i in keep]
    mine, embedded = list(range(env.rank, len(texts), env.world_size)), {}
    for start in range(0, len(mine), batch_size):
        rows = mine[start:start + batch_size]
        tokens = {k: v.to(device) for k, v in tokenizer([texts[j] for j in rows]).items()}
        with autocast(device, dtype):
            emb = net.text_encoder.encode_text(tokens["input_ids"], tokens["attention_mask"]).float().cpu()
        embedded.update(zip(rows, emb))
    gathered = {}
    for part in gather_objects(embedded):
        gathered.update(part)
    return torch.stack([gathered[j] for j in range(len(texts))]), means("video"), len(data.entries) - len(keep)


def evaluate(model, loader, data, tokenizer, args, env, dtype, desc):
    text, video, missing = embed_split(model, loader, data, tokenizer, device=env.device, dtype=dtype,
                                       batch_size=args.eval_batch_size, env=env, desc=desc,
                                       captions=args.caption_embedding)
    metrics = text_video_metrics(sim_matrix(text, video))
    flat = {f"{d}_{k.replace('@', '')}": v for d, m in metrics.items() for k, v in m.items()}
    flat.update(videos=len(text), videos_missing=missing)
    return flat


def train_epoch(model, loader, amp, args, env, dtype, epoch, start_step, lr_values, wd_values, steps):
    model.train()
    losses, skipped = [], []
    start = time.perf_counter()
    bar = tqdm(loader, desc=f"epoch {epoch}", disable=not env.is_main, dynamic_ncols=True, leave=False)
    for i, batch in enumerate(bar):
        if i >= steps * args.update_freq:
            break
        if i % args.update_freq == 0:
            step = start_step + i // args.update_freq
            set_lr_wd(amp.optimizer, float(lr_values[min(step, len(lr_values) - 1)]),
                      float(wd_values[min(step, len(wd_values) - 1)]))
        skipped.extend(batch["skipped"])
        text = {k: v.to(env.device, non_blocking=True) for k, v in batch["text"].items()}
        with autocast(env.device, dtype):
            video_emb, text_emb = model(batch["video"].to(env.device, non_blocking=True).transpose(1, 2), text)
        loss = retrieval_loss(video_emb, text_emb, args.temperature, args.gather)
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"loss is {loss.item()} at epoch {epoch}, iteration {i}: stopping")
        amp.backward(loss / args.update_freq)
        if (i + 1) % args.update_freq == 0:
            amp.step(model.parameters())
        losses.append(loss.item())
        if env.is_main:
            bar.set_postfix(loss=f"{loss.item():.4f}", lr=f"{amp.optimizer.param_groups[0]['lr']:.2e}",
                            clips_s=f"{len(losses) * args.batch_size / (time.perf_counter() - start):.1f}")
    if skipped:
        log.warning("epoch %d: %d unreadable training videos were replaced", epoch, len(skipped))
    return {"train_loss": float(np.mean(losses)) if losses else float("nan"), "skipped": len(skipped)}


def build_parser():
    p = argparse.ArgumentParser("SimVTP text-video retrieval fine-tuning (MSR-VTT)")
    p.add_argument("--config", default="configs/simvtp-webvid.json", help="the SimVTP pretraining config")
    p.add_argument("--finetune", default="", help="SimVTP pretraining checkpoint (ours or the official)")
    p.add_argument("--eval", default="", help="only test this fine-tuned checkpoint (checkpoint-best.pth)")
    p.add_argument("--data_path", required=True, help="folder of train_9k_miech.json and test_1k_miech.json")
    p.add_argument("--train_json", default="train_9k_miech.json")
    p.add_argument("--test_json", default="test_1k_miech.json")
    p.add_argument("--video_root", default=None, help="the json paths are relative to it (default data_path)")
    p.add_argument("--tokenizer", default=None, help="default: the config's tokenizer.name or bert-base-uncased")
    p.add_argument("--output_dir", required=True)
    p.add_argument("--select_on", default="val", choices=SELECT_ON,
                   help="val: a held-out part of train (ours); test: the best epoch on the test set (official)")
    p.add_argument("--val_videos", type=int, default=1000)
    p.add_argument("--batch_size", type=int, default=8, help="per process (official 8 x 8 GPUs)")
    p.add_argument("--eval_batch_size", type=int, default=12, help="per process (official: 1.5 x 8)")
    p.add_argument("--caption_embedding", default="views", choices=("views", "once"),
                   help="views: embed each caption with every test view in its batch and average (official); "
                        "once: one embedding per caption")
    p.add_argument("--update_freq", type=int, default=1)
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--max_steps_per_epoch", type=int, default=0)
    p.add_argument("--lr", type=float, default=3e-4, help="per 256 pairs (x global batch / 256)")
    p.add_argument("--min_lr", type=float, default=1e-6, help="per 256 pairs")
    p.add_argument("--warmup_epochs", type=int, default=5)
    p.add_argument("--weight_decay", type=float, default=0.05)
    p.add_argument("--betas", type=float, nargs=2, default=(0.9, 0.999))
    p.add_argument("--eps", type=float, default=1e-8)
    p.add_argument("--layer_decay", type=float, default=0.75)
    p.add_argument("--layer_decay_rule", default="official", choices=LAYER_DECAY_RULES)
    p.add_argument("--drop_path", type=float, default=0.1)
    p.add_argument("--temperature", type=float, default=0.05)
    p.add_argument("--gather", action="store_true", help="contrast over every process's pairs (not official)")
    p.add_argument("--pool", default=None, choices=("mean", "masked_mean"), help="default: the config's")
    p.add_argument("--num_frames", type=int, default=16)
    p.add_argument("--sampling_rate", type=int, default=4)
    p.add_argument("--input_size", type=int, default=224)
    p.add_argument("--short_side_size", type=int, default=224)
    p.add_argument("--test_num_segment", type=int, default=3)
    p.add_argument("--test_num_crop", type=int, default=3)
    p.add_argument("--aa", default="rand-m7-n4-mstd0.5-inc1")
    p.add_argument("--train_interpolation", default="bicubic")
    p.add_argument("--reprob", type=float, default=0.25)
    p.add_argument("--precision", default="fp16", choices=("fp16", "bf16", "fp32"),
                   help="official: DeepSpeed fp16")
    p.add_argument("--reader", default="auto")
    p.add_argument("--loading", default="lax", choices=("lax", "strict"))
    p.add_argument("--num_workers", type=int, default=8)
    p.add_argument("--save_ckpt_freq", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None)
    return p


def load_finetuned(model, path):
    """Strictly load a fine-tuned retrieval checkpoint: ours (`model`) or the official DeepSpeed file (`module`)."""
    ckpt = read_checkpoint(path)
    state = next((ckpt[k] for k in ("model", "module") if isinstance(ckpt, dict) and k in ckpt), None)
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds neither 'model' nor 'module' (a fine-tuned SimVTP retrieval checkpoint)")
    load_state_dict_strict(model, strip_prefix(state), str(path))


def checkpoint_state(model, optimizer, amp, epoch, best, args):
    net = model.module if isinstance(model, DistributedDataParallel) else model
    return {"model": net.state_dict(), "optimizer": optimizer.state_dict(), "scaler": amp.state_dict(),
            "epoch": epoch, "best": best, "args": vars(args)}


def main(argv=None):
    args = build_parser().parse_args(argv)
    env = init_distributed(args.device)
    torch.manual_seed(args.seed + env.rank)
    np.random.seed(args.seed + env.rank)
    setup_logging(args.output_dir, env.is_main)
    config = load_config(args.config)
    if config["arch"]["type"] != "SimVTP":
        raise ValueError(f"{args.config} is a {config['arch']['type']} config; this protocol fine-tunes SimVTP")
    tok_cfg = config.get("tokenizer") or {}
    tokenizer = build_tokenizer("huggingface", args.tokenizer or tok_cfg.get("name") or "bert-base-uncased",
                                max_length=512)
    dtype = autocast_dtype(args.precision, env.device)
    root = args.video_root or args.data_path
    test_entries = read_captions(os.path.join(args.data_path, args.test_json))
    views = dict(num_frames=args.num_frames, sampling_rate=args.sampling_rate, short_side_size=args.short_side_size,
                 test_num_segment=args.test_num_segment, test_num_crop=args.test_num_crop, reader=args.reader,
                 loading=args.loading, seed=args.seed)
    collate = CaptionCollator(tokenizer)

    def eval_loader(entries, mode):
        data = CaptionedVideos(entries, root, mode, **views)
        return data, DataLoader(data, batch_size=args.eval_batch_size, sampler=ShardSampler(len(data), env.rank,
                                                                                            env.world_size),
                                num_workers=args.num_workers, collate_fn=collate)

    model = SimVTPRetrieval.from_pretraining_args(config["arch"]["args"], args.drop_path, args.pool).to(env.device)
    test_data, test_loader = eval_loader(test_entries, "test")
    if args.eval:
        load_finetuned(model, args.eval)
        result = evaluate(model, test_loader, test_data, tokenizer, args, env, dtype, "test")
        if env.is_main:
            write_json(os.path.join(args.output_dir, "results.json"), {"test": result, "checkpoint": args.eval})
            log.info("test: %s", json.dumps(result))
        cleanup()
        return result
    train_entries, val_entries = read_captions(os.path.join(args.data_path, args.train_json)), test_entries
    if args.select_on == "val":
        train_entries, val_entries = carve_validation(train_entries, args.val_videos, args.seed)
    report = load_pretraining_weights(model, args.finetune) if args.finetune else None
    if report is None:
        log.warning("no --finetune checkpoint: both towers start from random weights")
    train_data = CaptionedVideos(train_entries, root, "train",
                                 train_transform=TrainAugment(args.input_size, args.aa, args.train_interpolation,
                                                              flip=True, reprob=args.reprob), **views)
    sampler = DistributedSampler(train_data, num_replicas=env.world_size, rank=env.rank, shuffle=True, seed=args.seed)
    train_loader = DataLoader(train_data, batch_size=args.batch_size, sampler=sampler, num_workers=args.num_workers,
                              drop_last=True, collate_fn=collate)
    val_data, val_loader = (test_data, test_loader) if args.select_on == "test" else eval_loader(val_entries, "test")
    total_batch = args.batch_size * args.update_freq * env.world_size
    steps = len(train_data) // total_batch
    if args.max_steps_per_epoch:
        steps = min(steps, args.max_steps_per_epoch)
    if steps < 1:
        raise ValueError(f"{len(train_data)} training videos make no step of {total_batch} pairs")
    lr, min_lr = args.lr * total_batch / 256, args.min_lr * total_batch / 256
    depth = len(model.video_encoder.blocks) + 1
    groups = param_groups(model, args.weight_decay, args.layer_decay, num_layers=depth,
                          layer_of=tower_layer_of(args.layer_decay_rule, depth))
    optimizer = build_optimizer([{k: v for k, v in g.items() if k != "param_names"} for g in groups], opt="adamw",
                                lr=lr, betas=args.betas, eps=args.eps)
    amp = OptimizerStep(optimizer, env.device, scale_loss=args.precision == "fp16")
    lr_values = cosine_scheduler(lr, min_lr, args.epochs, steps, args.warmup_epochs)
    wd_values = np.full(args.epochs * steps, args.weight_decay)
    net = model
    if env.distributed:  # each tower has an embedding it never uses
        net = DistributedDataParallel(model, device_ids=[env.device.index] if env.device.type == "cuda" else None,
                                      find_unused_parameters=True)
    log.info("%d training videos (%d steps of %d pairs an epoch), %d validation (%s), %d test; lr %.3g",
             len(train_data), steps, total_batch, len(val_entries), args.select_on, len(test_entries), lr)
    best, log_path = None, os.path.join(args.output_dir, "log.jsonl")
    if env.is_main and os.path.exists(log_path):
        os.remove(log_path)  # a new run's log; checkpoints are overwritten the same way
    for epoch in range(1, args.epochs + 1):
        sampler.set_epoch(epoch)
        train_data.set_epoch(epoch)
        stats = train_epoch(net, train_loader, amp, args, env, dtype, epoch, (epoch - 1) * steps, lr_values,
                            wd_values, steps)
        val = evaluate(net, val_loader, val_data, tokenizer, args, env, dtype, f"{args.select_on} {epoch}")
        improved = best is None or val["t2v_R1"] > best["t2v_R1"]
        if improved:
            best = {**val, "epoch": epoch}
        if env.is_main:
            with open(log_path, "a") as f:
                f.write(json.dumps({"epoch": epoch, **stats, **{f"{args.select_on}_{k}": v for k, v in val.items()}})
                        + "\n")
            log.info("epoch %d: loss %.4f, %s t2v R@1/5/10 %.1f/%.1f/%.1f%s", epoch, stats["train_loss"],
                     args.select_on, val["t2v_R1"], val["t2v_R5"], val["t2v_R10"], " (best)" if improved else "")
            state = checkpoint_state(net, optimizer, amp, epoch, best, args)
            if improved:
                save_torch(state, os.path.join(args.output_dir, "checkpoint-best.pth"))
            if epoch % args.save_ckpt_freq == 0 or epoch == args.epochs:
                save_torch(state, os.path.join(args.output_dir, f"checkpoint-{epoch}.pth"))
    if env.distributed:
        torch.distributed.barrier()
    load_finetuned(model, os.path.join(args.output_dir, "checkpoint-best.pth"))
    result = evaluate(model, test_loader, test_data, tokenizer, args, env, dtype, "test")
    if env.is_main:
        write_json(os.path.join(args.output_dir, "results.json"),
                   {"test": result, "selected": best, "select_on": args.select_on, "pretraining": report})
        log.info("test of the epoch-%d checkpoint: t2v R@1/5/10 %.1f/%.1f/%.1f MdR %.1f, v2t R@1 %.1f",
                 best["epoch"], result["t2v_R1"], result["t2v_R5"], result["t2v_R10"], result["t2v_MedR"],
                 result["v2t_R1"])
    cleanup()
    return result


if __name__ == "__main__":
    main()
