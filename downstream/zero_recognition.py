"""Zero-shot action recognition (TVTSv2 Table 3): HMDB-51 and UCF-101 (test splits 1-3), Kinetics-400 validation.

    python -m downstream.zero_recognition --config configs/tvtsv2-b16.json --checkpoint TVTSv2_B_16.pth \
        --dataset hmdb51 --data-dir data/hmdb51 --meta-dir meta_data [--split 1]

Class names are the keys of the official `label2id.json`, in file order. Each class is the mean of its prompts'
L2-normalised text embeddings, normalised again; by default the official single template "a person {}", or a
prompt ensemble (`--template` repeated, or `--templates-file`, a JSON list or one template per line). A video is
classified by the cosine of its embedding with every class; top-1 and top-5 over the readable test videos.
"""
import json
import logging

import torch
import torch.nn.functional as F

from .metrics import accuracy
from .text_video import base_parser, cli, failure_summary, finish, start
from .zero_data import RECOGNITION_SETS

log = logging.getLogger("downstream")
OFFICIAL_TEMPLATES = ("a person {}",)


def read_templates(path):
    """Prompt templates from a JSON list or a text file (one per line); each must hold one '{}'."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        templates = json.loads(text)
    except json.JSONDecodeError:
        templates = [line.strip() for line in text.splitlines() if line.strip()]
    return check_templates(templates, path)


def check_templates(templates, source="--templates"):
    if not isinstance(templates, (list, tuple)) or not templates or not all(
            isinstance(t, str) and t.count("{}") == 1 for t in templates):
        raise ValueError(f"{source}: templates must be a non-empty list of strings, each with one '{{}}'")
    return list(templates)


def get_args(argv=None):
    p = base_parser(__doc__.splitlines()[0], RECOGNITION_SETS)
    p.add_argument("--split", type=int, default=1, choices=[1, 2, 3], help="HMDB-51 / UCF-101 test split")
    p.add_argument("--template", dest="templates", action="append", default=None,
                   help="a prompt template, repeated for an ensemble (default: the official 'a person {}')")
    p.add_argument("--templates-file", default=None, help="a JSON list of templates, or one per line")
    return p.parse_args(argv)


def class_weights(encoder, names, templates):
    """(C, P): per class, the normalised mean of the normalised embeddings of its prompts."""
    prompts = [t.format(name) for name in names for t in templates]
    emb = F.normalize(encoder.encode_texts(prompts).double().reshape(len(names), len(templates), -1), dim=-1)
    return F.normalize(emb.mean(dim=1), dim=-1)


def evaluate(encoder, records, names, templates=OFFICIAL_TEMPLATES, env=None, batch_size=48, num_workers=4,
             reader="auto", loading="lax"):
    """Top-1/top-5 over the readable records; None on ranks other than 0."""
    videos = encoder.encode_videos(encoder.video_dataset([r["path"] for r in records], reader, loading), env,
                                   batch_size, num_workers, desc="test videos")
    if env is not None and not env.is_main:
        return None
    if not len(videos["index"]):
        raise RuntimeError(f"none of the {len(records)} test videos could be read")
    weights = class_weights(encoder, names, check_templates(templates))
    logits = 100.0 * F.normalize(videos["embeddings"].double(), dim=-1) @ weights.T
    labels = torch.tensor([records[i]["label"] for i in videos["index"].tolist()])
    top1, top5 = accuracy(logits, labels, topk=(1, 5))
    return {"top1": top1, "top5": top5, "videos": len(labels), "videos_listed": len(records),
            "classes": len(names), "templates": list(templates), **failure_summary(videos["failed"])}


def main(argv=None):
    args = get_args(argv)
    templates = read_templates(args.templates_file) if args.templates_file else \
        check_templates(args.templates or OFFICIAL_TEMPLATES)
    env, encoder = start(args, "zero_recognition")
    records, names = RECOGNITION_SETS[args.dataset](args.data_dir, args.meta_dir, split=args.split,
                                                    check_rows=args.check_rows, header=args.header)
    log.info("%s (split %d): %d test videos, %d classes, %d template(s)", args.dataset, args.split, len(records),
             len(names), len(templates))
    with torch.inference_mode():
        results = evaluate(encoder, records, names, templates, env, args.batch_size, args.num_workers,
                           args.reader, args.loading)
    if results is None:
        return None
    log.info("top-1 %.2f, top-5 %.2f over %d of %d videos", results["top1"], results["top5"], results["videos"],
             results["videos_listed"])
    return finish(args, {**results, "split": args.split if args.dataset != "k400" else None})


if __name__ == "__main__":
    cli(main)
