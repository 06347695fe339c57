"""Model-step benchmark: forward + backward + AdamW step of a full-size model of the TVTS family, built from a
pretraining config's `arch` entry (default: TVTS at the paper configuration; no weights are read). TVTS and TVTSv2
step their video-text NCE + sort loss; SimVTP its four losses (MVM, MLM, VTC, VTM: four encoder passes).

Measures clips/s, peak memory and the model FLOPs utilisation (FLOPs of one step counted by PyTorch's
FlopCounterMode: matmuls, convolutions and attention, forward and backward; over the GPU's data-sheet peak) for fp32
vs bf16 autocast, SDPA vs plain attention, and with/without activation checkpointing. Each configuration runs in its own process so peak memory is its own (CUDA: peak
allocated; CPU: peak resident set size of the process). Prints a Markdown table and writes it to --out.

    python bench/bench_model.py --batch-size 2 --steps 3                                        # CPU, TVTS
    python bench/bench_model.py --batch-size 24 --device cuda                                   # the official batch
    python bench/bench_model.py --config configs/tvtsv2-b16.json --batch-size 12 --device cuda  # TVTSv2 B/16
    python bench/bench_model.py --config configs/simvtp-webvid.json --batch-size 16 --device cuda  # SimVTP
"""
import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from model import ARCHITECTURES, TVTSLoss, build_model  # noqa: E402
from model.simvtp import SimVTPLoss  # noqa: E402
from utils import load_config  # noqa: E402
from utils.hardware import describe_cpu  # noqa: E402

DEFAULT_FRAMES = {"TVTS": 16, "TVTSv2": 12}


def simvtp_batch(model, args, device):
    """Random SimVTP inputs: tube-masked clips (the config's ratio, VideoMAE's count), one caption of `seq_len`
    tokens per clip with 75% of them masked, VTM draws."""
    b, patches = args.batch_size, model.encoder.patches_per_frame
    keep = torch.stack([torch.randperm(patches)[int(args.mask_ratio * patches):].sort().values for _ in range(b)])
    ids = torch.randint(1, model.text_vocab_size - 1, (b, min(args.seq_len, model.text_context_length)), device=device)
    labels = torch.where(torch.rand(ids.shape, device=device) < 0.75, ids, -100)
    return {"video": torch.randn(b, args.frames, 3, args.res, args.res, device=device), "keep_ind": keep.to(device),
            "text": {"input_ids": ids, "attention_mask": torch.ones_like(ids)}, "mlm_labels": labels,
            "vtm_draws": torch.rand(b, device=device), "options": SimVTPLoss().model_options()}


def synthetic_batch(model, args, device):
    """Random inputs of the shapes the model reads: K*B transcripts of `seq_len` tokens, `frames` frames, the
    masker layout its video tower takes."""
    b, k, t = args.batch_size, args.n_trans, args.frames
    patches = model.video_model.patches_per_frame
    n_keep = int(patches * (1 - args.mask_ratio))
    seq_len = min(args.seq_len, model.text_context_length)
    ids = torch.randint(1, model.text_vocab_size - 1, (k * b, seq_len), device=device)
    if model.tokenizer == "clip":
        ids[:, -1] = model.text_vocab_size - 1  # CLIP pools at the highest id (its end-of-text token)
    if model.masking == "tube":
        keep = torch.stack([torch.randperm(patches)[:n_keep] for _ in range(b)])
    else:
        keep = torch.stack([torch.randperm(patches)[:n_keep] for _ in range(b * t // 2)]).reshape(b, t // 2, -1)
    return {"text": {"input_ids": ids, "attention_mask": torch.ones_like(ids)},
            "video": torch.randn(b, t, 3, args.res, args.res, device=device), "keep_ind": keep}


def run_one(args, precision, attention, checkpointing):
    device = torch.device(args.device)
    torch.manual_seed(0)
    arch = load_config(args.config)["arch"]
    net_args = ARCHITECTURES.get(arch["type"]).architecture_only(arch["args"])
    layers = {"attention": attention, "grad_checkpointing": checkpointing}
    simvtp = arch["type"] == "SimVTP"
    if simvtp:  # the encoder's and decoder's own settings
        net_args = {**net_args, "video_params": {**net_args.get("video_params", {}), **layers},
                    "decoder_params": {**net_args.get("decoder_params", {}), **layers}}
    else:
        net_args = {**net_args, **layers}
    model = build_model({"type": arch["type"], "args": net_args}).to(device)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, eps=1e-6, weight_decay=0)
    loss_fn = SimVTPLoss() if simvtp else TVTSLoss()
    batch = simvtp_batch(model, args, device) if simvtp else synthetic_batch(model, args, device)
    b = args.batch_size
    dtype = torch.bfloat16 if precision == "bf16" else None

    def step():
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            if simvtp:
                loss = loss_fn(model(batch))["total"]
            else:
                text, video, logits = model(batch)
                loss = loss_fn(video.float(), text.float(), logits.float())["total"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    with FlopCounterMode(display=False) as counter:  # one more untimed step, counted
        step()
    flops = counter.get_total_flops()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() / 2**30
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB on Linux
    elapsed = time.perf_counter() - start
    achieved = flops * args.steps / elapsed
    peak_flops = args.peak_tflops * 1e12 if args.peak_tflops else device_peak_flops(device, precision)
    return {"clips_per_s": b * args.steps / elapsed, "s_per_step": elapsed / args.steps, "peak_gib": peak,
            "tflop_per_step": flops / 1e12, "tflops": achieved / 1e12,
            "mfu": achieved / peak_flops if peak_flops else None}


# Dense peak FLOP/s of the GPUs this may run on (vendor data sheets; fp32 without TF32, which PyTorch leaves off
# for matmuls by default): MFU = counted model FLOPs per second / this.
PEAK_TFLOPS = {"H200": {"bf16": 989.5, "fp32": 66.9}, "H100 80GB HBM3": {"bf16": 989.5, "fp32": 66.9},
               "H100 PCIe": {"bf16": 756.0, "fp32": 51.2}, "A100": {"bf16": 312.0, "fp32": 19.5}}


def device_peak_flops(device, precision):
    """The data-sheet peak of a known GPU for `precision`, else None (CPUs and unknown GPUs: no MFU)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, peaks in PEAK_TFLOPS.items():
        if key in name:
            return peaks[precision] * 1e12
    return None


def machine(device):
    if device.startswith("cuda"):
        return torch.cuda.get_device_name()
    return f"{describe_cpu()}, torch {torch.__version__}"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=os.path.join(ROOT, "configs", "dist-yt-pt.json"),
                   help="pretraining config whose arch entry is measured")
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--frames", type=int, default=None, help="default: the method's (TVTS 16, TVTSv2 12; SimVTP: its config's)")
    p.add_argument("--res", type=int, default=224)
    p.add_argument("--mask-ratio", type=float, default=None, help="default: the config's first loader's")
    p.add_argument("--n-trans", type=int, default=4)
    p.add_argument("--seq-len", type=int, default=32, help="tokens per transcript (the official cap is 50)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    p.add_argument("--attention", nargs="+", default=["sdpa", "plain"], choices=["sdpa", "plain"])
    p.add_argument("--checkpointing", nargs="+", default=["off", "on"], choices=["off", "on"])
    p.add_argument("--peak-tflops", type=float, default=0,
                   help="the device's peak TFLOP/s for MFU (default: the table for known GPUs, none on CPU)")
    p.add_argument("--out", default=None, help="Markdown file for the table (default bench/results/model_<device>.md)")
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one configuration and print JSON
    args = p.parse_args()
    cfg = load_config(args.config)
    if args.frames is None:  # SimVTP's fixed position table sets its frame count
        video = (cfg["arch"]["args"] or {}).get("video_params") or {}
        args.frames = video.get("num_frames", 16) if cfg["arch"]["type"] == "SimVTP" else \
            DEFAULT_FRAMES.get(cfg["arch"]["type"], 16)
    if args.mask_ratio is None:
        loader = cfg["data_loader"][0]["args"]
        loader = {**loader, **loader.get("video_params", {})}
        args.mask_ratio = 0.0 if loader.get("masking") == "none" else loader.get("mask_ratio", 0.75)

    if args.one:
        precision, attention, ckpt = args.one.split(",")
        print(json.dumps(run_one(args, precision, attention, ckpt == "on")))
        return

    header = (f"{cfg['arch']['type']} model step ({os.path.basename(args.config)}; forward + backward + AdamW), "
              f"batch {args.batch_size}, {args.frames} frames at "
              f"{args.res}px, mask {args.mask_ratio}, "
              f"{'one caption' if cfg['arch']['type'] == 'SimVTP' else f'K={args.n_trans}'} of {args.seq_len} tokens; "
              f"{machine(args.device)}")
    rows = ["| precision | attention | checkpointing | clips/s | s/step | peak memory (GiB) | TFLOP/step | TFLOP/s | "
            "MFU |", "|---|---|---|---|---|---|---|---|---|"]
    print(header, flush=True)
    passthrough = [a for a in sys.argv[1:]]
    for precision, attention, ckpt in itertools.product(args.precision, args.attention, args.checkpointing):
        cmd = [sys.executable, __file__, *passthrough, "--one", f"{precision},{attention},{ckpt}"]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode:
            sys.exit(f"configuration {precision}/{attention}/{ckpt} failed:\n{out.stderr}")
        r = json.loads(out.stdout.strip().splitlines()[-1])
        mfu = "-" if r["mfu"] is None else f"{100 * r['mfu']:.1f}%"
        rows.append(f"| {precision} | {attention} | {ckpt} | {r['clips_per_s']:.3f} | {r['s_per_step']:.2f} | "
                    f"{r['peak_gib']:.2f} | {r['tflop_per_step']:.3g} | {r['tflops']:.3g} | {mfu} |")
        print(rows[-1], flush=True)
    out_path = args.out or os.path.join(ROOT, "bench", "results", f"model_{args.device.split(':')[0]}.md")
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path, "w") as f:
        f.write(header + "\n\n" + "\n".join(rows) + "\n")
    print(f"table written to {out_path}")


if __name__ == "__main__":
    main()
