"""Zero-shot SSV2 multiple choice (TVTSv2 Table 3): pick the true description of a clip among its options.

    python -m downstream.zero_ssv2_mc --config configs/tvtsv2-b16.json --checkpoint TVTSv2_B_16.pth \
        --data-dir data/SSV2 --meta-dir meta_data

Each record of the official `ssv2/mc/val.jsonl` (`clip_name`, `options`, `answer`) scores its options, used as they
are (no template), by the cosine of their text embeddings with the clip's video embedding; top-1 and top-5 of the
answer over the readable clips.
"""
import logging

import torch
import torch.nn.functional as F

from .metrics import accuracy
from .text_video import base_parser, cli, failure_summary, finish, start
from .zero_data import read_ssv2_mc

log = logging.getLogger("downstream")


def evaluate(encoder, records, env=None, batch_size=32, num_workers=4, reader="auto", loading="lax"):
    videos = encoder.encode_videos(encoder.video_dataset([r["path"] for r in records], reader, loading), env,
                                   batch_size, num_workers, desc="clips")
    if env is not None and not env.is_main:
        return None
    kept = videos["index"].tolist()
    if not kept:
        raise RuntimeError(f"none of the {len(records)} clips could be read")
    n_opt = len(records[0]["options"])
    text = F.normalize(encoder.encode_texts([o for i in kept for o in records[i]["options"]]).double(), dim=-1)
    feats = F.normalize(videos["embeddings"].double(), dim=-1)
    logits = 100.0 * torch.einsum("bd,bod->bo", feats, text.reshape(len(kept), n_opt, -1))
    answers = torch.tensor([records[i]["answer"] for i in kept])
    top1, top5 = accuracy(logits, answers, topk=(1, 5))
    return {"top1": top1, "top5": top5, "clips": len(kept), "clips_listed": len(records), "options": n_opt,
            **failure_summary(videos["failed"])}


def main(argv=None):
    p = base_parser(__doc__.splitlines()[0], {"ssv2_mc": None})
    p.set_defaults(batch_size=32)
    args = p.parse_args(argv)
    env, encoder = start(args, "zero_ssv2_mc")
    records = read_ssv2_mc(args.data_dir, args.meta_dir)
    log.info("ssv2_mc: %d clips, %d options each", len(records), len(records[0]["options"]))
    with torch.inference_mode():
        results = evaluate(encoder, records, env, args.batch_size, args.num_workers, args.reader, args.loading)
    if results is None:
        return None
    log.info("top-1 %.2f, top-5 %.2f over %d of %d clips", results["top1"], results["top5"], results["clips"],
             results["clips_listed"])
    return finish(args, results)


if __name__ == "__main__":
    cli(main)
