"""A pretrained video-text network as a frozen encoder, for the zero-shot protocols: one loader for every method
whose checkpoint has a text tower (TVTS, TVTSv2 at every size), the video input its config implies, batched text and
video embeddings, and the command-line, logging and result-writing the protocols share.

    encoder = TextVideoEncoder.from_files("configs/tvtsv2-b16.json", "TVTSv2_B_16.pth")
    text = encoder.encode_texts(["a person dancing"])          # (1, 512), unnormalised, as the official
    videos = encoder.video_dataset(paths)                       # 12 frames, 268 nearest, crop 224 for TVTSv2
    out = encoder.encode_videos(videos, env, batch_size=48)     # {"embeddings", "index", "failed"}

Videos are sharded over the processes of a run (every video once, no padding duplicates) and gathered on every
rank; the metrics are computed on rank 0 over the videos that could be read, and say how many that was.
"""
import argparse
import logging
import os
import time

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from data_loader.tokenizers import model_tokenizer
from model import ARCHITECTURES, build_model, load_checkpoint
from model.checkpoint import CheckpointError
from trainer.config import evaluation_config
from utils.amp import autocast, autocast_dtype
from utils.config import ConfigError
from utils.distributed import cleanup, gather_objects, init_distributed
from utils.io import write_json

from .common import setup_logging
from .engine import ShardSampler, report_failures
from .zero_data import EvalVideos, MetadataError, collate_eval

log = logging.getLogger("downstream")


def _to(text, device):
    return {k: v.to(device) for k, v in text.items()} if isinstance(text, dict) else text.to(device)


def method_config(config_path, checkpoint, overrides=()):
    """The pretraining config to evaluate `checkpoint` with (see `trainer.config.evaluation_config`), for an
    architecture that has a text tower."""
    config, source = evaluation_config(config_path, checkpoint, overrides)
    if not hasattr(ARCHITECTURES.get(config["arch"]["type"]), "compute_text"):
        raise ConfigError(f"{source}: {config['arch']['type']} has no text tower; the zero-shot text protocols "
                          "need one")
    return config


def resize_interpolation(config):
    """The frame resize a pretraining config's first data loader uses (TVTSv2: nearest; TVTS: bilinear)."""
    loaders = config.get("data_loader") or [{}]
    return loaders[0].get("args", {}).get("video_params", {}).get("resize_interpolation", "bilinear")


def video_input(config, net):
    """(frames, crop, resize interpolation) the network was pretrained on: its tower's frame count (TVTS: the
    config's) and frame size, and the resize of its pretraining data."""
    tower = net.video_model
    frames = getattr(tower, "num_frames", None) or config["arch"]["args"]["video_params"]["num_frames"]
    crop = getattr(tower, "image_size", None) or tower.img_size
    return int(frames), int(crop), resize_interpolation(config)


def file_identity(path):
    """(path, size, modification time) of a file, or None: enough to tell two checkpoints apart."""
    if not path:
        return None
    stat = os.stat(path)
    return [os.path.abspath(path), stat.st_size, stat.st_mtime_ns]


class TextVideoEncoder:
    """A frozen video-text network with its tokenizer and its evaluation input."""

    def __init__(self, net, tokenizer, num_frames, crop_size, interpolation, device="cpu", precision="fp32"):
        self.net = net.to(device).eval()
        self.tokenizer, self.device = tokenizer, torch.device(device)
        self.num_frames, self.crop_size, self.interpolation = num_frames, crop_size, interpolation
        self.dtype = autocast_dtype(precision, self.device)

    @classmethod
    def from_files(cls, config_path, checkpoint, device="cpu", precision=None, num_frames=None, overrides=()):
        """Build the config's network, load `checkpoint` strictly (None: keep the random init, e.g. as a
        chance-level baseline), and take the config's tokenizer and precision (`precision` overrides it)."""
        config = method_config(config_path, checkpoint, overrides)
        net = build_model(config["arch"])
        if checkpoint:
            report = load_checkpoint(net, checkpoint)
            log.info("loaded %s (%d tensors%s)", checkpoint, report["loaded"],
                     f"; absent: {report['absent']}" if report["absent"] else "")
        else:
            log.warning("no checkpoint: the network keeps its random initialisation")
        frames, crop, interpolation = video_input(config, net)
        tokenizer = model_tokenizer(config["tokenizer"], config["arch"]["args"], net)
        encoder = cls(net, tokenizer, num_frames or frames, crop, interpolation, device,
                      precision or config["trainer"]["precision"])
        encoder.config, encoder.source = config, {"config": config_path, "checkpoint": file_identity(checkpoint)}
        return encoder

    def fingerprint(self, **extra):
        """What determines the embeddings of a video: the weights (file, size, time), the input rule and the
        precision; cached features are reused only under the same fingerprint."""
        return {**getattr(self, "source", {}), "num_frames": self.num_frames, "crop": self.crop_size,
                "interpolation": self.interpolation, "dtype": str(self.dtype), **extra}

    @torch.no_grad()
    def encode_texts(self, texts, batch_size=256):
        """(N, P) float32 text embeddings (projected, unnormalised), in input order."""
        out = []
        for start in range(0, len(texts), batch_size):
            tokens = _to(self.tokenizer(texts[start:start + batch_size]), self.device)
            with autocast(self.device, self.dtype):
                out.append(self.net.compute_text(tokens)[1].float().cpu())
        return torch.cat(out) if out else torch.zeros(0, 0)

    def video_dataset(self, paths, reader="auto", loading="lax"):
        return EvalVideos(paths, self.num_frames, self.crop_size, self.interpolation, reader, loading)

    @torch.no_grad()
    def embed_video(self, video):
        """(B, T, 3, S, S) normalised clips -> (B, P) float32 video embeddings (projected CLS, unnormalised)."""
        with autocast(self.device, self.dtype):
            return self.net.compute_video(video.to(self.device, non_blocking=True), None)[1].float()

    def encode_videos(self, dataset, env=None, batch_size=48, num_workers=4, desc="videos"):
        """Embeddings of every readable video of `dataset`, this rank's share computed here and all ranks'
        gathered: `embeddings` (N_ok, P) ordered by dataset index, `index` (N_ok,), `failed` records."""
        rank, world = (env.rank, env.world_size) if env is not None else (0, 1)
        loader = DataLoader(dataset, batch_size=batch_size, sampler=ShardSampler(len(dataset), rank, world),
                            num_workers=num_workers, collate_fn=collate_eval,
                            pin_memory=self.device.type == "cuda")
        index, parts, failed = [], [], []
        started = time.perf_counter()
        for batch in tqdm(loader, desc=desc, disable=rank != 0, dynamic_ncols=True):
            failed.extend(batch["failed"])
            if batch["video"] is not None:
                parts.append(self.embed_video(batch["video"]).cpu().numpy())
                index.extend(batch["index"].tolist())
        gathered = gather_objects({"index": index, "parts": parts, "failed": failed})
        index = np.asarray([i for g in gathered for i in g["index"]], dtype=np.int64)
        arrays = [a for g in gathered for a in g["parts"]]
        embeddings = np.concatenate(arrays) if arrays else np.zeros((0, 0), np.float32)
        order = np.argsort(index, kind="stable")
        failed = sorted((r for g in gathered for r in g["failed"]), key=lambda r: r["name"])
        if rank == 0:
            log.info("%d videos embedded, %d unreadable, in %.0f s", len(index), len(failed),
                     time.perf_counter() - started)
            report_failures(failed, "videos")
        return {"embeddings": torch.from_numpy(embeddings[order]), "index": index[order], "failed": failed}


# ------------------------------------------------------------------------------------ shared command line

def base_parser(description, datasets):
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--config", help="the method's pretraining config (default: the one stored in our checkpoints)")
    p.add_argument("--checkpoint", help="checkpoint to evaluate (ours or an official release); omit with "
                   "--random-init for a chance-level baseline")
    p.add_argument("--random-init", action="store_true", help="evaluate the untrained network (no checkpoint)")
    if len(datasets) > 1:
        p.add_argument("--dataset", required=True, choices=sorted(datasets))
    else:
        p.add_argument("--dataset", default=next(iter(datasets)), choices=list(datasets))
    p.add_argument("--data-dir", required=True, help="the dataset's video folder (official: data/<dataset>)")
    p.add_argument("--meta-dir", default="meta_data", help="the authors' meta_data folder")
    p.add_argument("--output-dir", default=None, help="results.json and run.log go here "
                   "(default: results/<protocol>/<dataset>[_split<k>]/<checkpoint name>)")
    p.add_argument("--num-frames", type=int, default=None, help="default: the network's (TVTSv2 12, TVTS 16)")
    p.add_argument("--batch-size", type=int, default=48)
    p.add_argument("--num-workers", type=int, default=8)
    p.add_argument("--reader", default="auto", help="auto (PyAV for .avi, decord otherwise), decord, pyav or cv2")
    p.add_argument("--loading", default="lax", choices=["lax", "strict"],
                   help="lax: leave unreadable videos out and count them; strict: stop at the first one")
    p.add_argument("--no-check-rows", dest="check_rows", action="store_false",
                   help="accept metadata whose row count differs from the official set (a subset)")
    p.add_argument("--header", default="auto", choices=["auto", "first_row"],
                   help="auto: a first row that is data is kept; first_row: always dropped (official pandas read)")
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument("--precision", default=None, choices=["fp32", "fp16", "bf16"],
                   help="autocast; default: the config's trainer.precision (H/14: fp16, as official)")
    p.add_argument("overrides", nargs="*", help="dotted config overrides, e.g. tokenizer.max_length=32")
    return p


def default_output_dir(args, protocol):
    """results/<protocol>/<dataset>[_split<k>]/<checkpoint name, or config name + _random>: runs of other
    protocols, splits or checkpoints never share a folder."""
    dataset = args.dataset
    if getattr(args, "split", None) and dataset in ("hmdb51", "ucf101"):
        dataset += f"_split{args.split}"
    if args.random_init:
        name = os.path.splitext(os.path.basename(args.config))[0] + "_random"
    else:
        name = os.path.splitext(os.path.basename(args.checkpoint))[0]
    return os.path.join("results", protocol, dataset, name)


def start(args, protocol):
    """Process group, output folder, logging and the encoder of a protocol run (`protocol`: the module name)."""
    if not args.checkpoint and not args.random_init:
        raise SystemExit("--checkpoint is required (or --random-init for an untrained baseline)")
    if not args.config and not args.checkpoint:
        raise SystemExit("--config is required with --random-init")
    env = init_distributed(args.device)
    args.output_dir = args.output_dir or default_output_dir(args, protocol)
    setup_logging(args.output_dir, env.is_main)
    encoder = TextVideoEncoder.from_files(args.config, None if args.random_init else args.checkpoint, env.device,
                                          args.precision, args.num_frames, args.overrides)
    log.info("%s on %s with %s (%d process(es)): %d frames, crop %d, %s resize; output in %s", protocol,
             args.dataset, args.checkpoint or args.config, env.world_size, encoder.num_frames, encoder.crop_size,
             encoder.interpolation, args.output_dir)
    return env, encoder


def finish(args, results):
    """Write results.json (with the run's settings) and return the results."""
    results = {**results, "dataset": args.dataset, "config": args.config, "checkpoint": args.checkpoint,
               "random_init": args.random_init}
    write_json(os.path.join(args.output_dir, "results.json"), results)
    log.info("results written to %s", os.path.join(args.output_dir, "results.json"))
    return results


def cli(main):
    """Run a protocol's `main` from the command line: a bad input (a file that is not a checkpoint, wrong
    metadata, a config error) ends with one line naming it instead of a traceback."""
    try:
        main()
    except (CheckpointError, MetadataError, ConfigError, FileNotFoundError, ValueError) as e:
        raise SystemExit(f"error: {e}") from None
    finally:
        cleanup()


def failure_summary(failed):
    return {"failed": len(failed), "failed_videos": [f"{r['name']}: {r['error']}" for r in failed]}
