"""Zero-shot text-to-video retrieval (TVTSv2 Table 2): MSR-VTT 1k-A, DiDeMo paragraph-to-video, LSMDC16 public test.

    python -m downstream.zero_retrieval --config configs/tvtsv2-b16.json --checkpoint TVTSv2_B_16.pth \
        --dataset msrvtt --data-dir data/msrvtt --meta-dir meta_data [--postprocess dsl]

Every test video and its one text are embedded (the video input of the method, see downstream/zero_data.py), the
cosine similarities of all texts and videos ranked both ways: t2v with ties broken optimistically, v2t by averaging,
R@1/5/10/50, MedR and MeanR, as the official metric code. `--postprocess dsl` adds the dual-softmax re-ranked
numbers (the paper's † rows; transductive: each score uses every test query) beside the plain ones. Videos that
cannot be read are left out with their texts and counted; the metrics say over how many pairs they were computed.
"""
import logging

import torch

from model import sim_matrix
from utils.retrieval import text_video_metrics

from .text_video import base_parser, cli, failure_summary, finish, start
from .zero_data import RETRIEVAL_SETS

log = logging.getLogger("downstream")
POSTPROCESS = ("none", "dsl")


def get_args(argv=None):
    p = base_parser(__doc__.splitlines()[0], RETRIEVAL_SETS)
    p.add_argument("--postprocess", default="none", choices=POSTPROCESS,
                   help="dsl: also report dual-softmax re-ranked metrics (transductive)")
    p.add_argument("--dsl-temperature", type=float, default=0.01, help="softmax temperature of dual softmax")
    p.add_argument("--text-batch-size", type=int, default=256)
    return p.parse_args(argv)


def evaluate(encoder, records, env=None, batch_size=48, num_workers=4, postprocess="none", temperature=0.01,
             text_batch_size=256, reader="auto", loading="lax"):
    """Retrieval metrics over the readable records; None on ranks other than 0."""
    videos = encoder.encode_videos(encoder.video_dataset([r["path"] for r in records], reader, loading), env,
                                   batch_size, num_workers, desc="test videos")
    if env is not None and not env.is_main:
        return None
    kept = videos["index"].tolist()
    if len(kept) < 2:
        raise RuntimeError(f"only {len(kept)} of {len(records)} test videos could be read: nothing to rank")
    texts = encoder.encode_texts([records[i]["text"] for i in kept], text_batch_size)
    sims = sim_matrix(texts.double(), videos["embeddings"].double())  # norms clamped at 1e-8, as official
    results = {"pairs": len(kept), "videos_listed": len(records), **failure_summary(videos["failed"]),
               **text_video_metrics(sims)}
    if postprocess == "dsl":
        results["dsl"] = {"transductive": True, "temperature": temperature,
                          **text_video_metrics(sims, "dsl", temperature)}
    return results


def format_line(name, metrics):
    return f"{name}: " + ", ".join(f"{k} {v:.1f}" for k, v in metrics.items())


def main(argv=None):
    args = get_args(argv)
    env, encoder = start(args, "zero_retrieval")
    records = RETRIEVAL_SETS[args.dataset](args.data_dir, args.meta_dir, check_rows=args.check_rows,
                                           header=args.header)
    log.info("%s: %d test pairs", args.dataset, len(records))
    with torch.inference_mode():
        results = evaluate(encoder, records, env, args.batch_size, args.num_workers, args.postprocess,
                           args.dsl_temperature, args.text_batch_size, args.reader, args.loading)
    if results is None:
        return None
    log.info("over %d of %d pairs", results["pairs"], results["videos_listed"])
    for direction in ("t2v", "v2t"):
        log.info(format_line(direction, results[direction]))
        if "dsl" in results:
            log.info(format_line(direction + " (DSL, transductive)", results["dsl"][direction]))
    return finish(args, results)


if __name__ == "__main__":
    cli(main)
