"""Linear probe on frozen video embeddings (TVTSv2 Table 4: HMDB-51, UCF-101, Kinetics-400). There is no official
code for it; the protocol is ours (docs/faithfulness.md):

    python -m downstream.linear_probe --config configs/tvtsv2-b16.json --checkpoint TVTSv2_B_16.pth \
        --dataset ucf101 --data-dir data/ucf101 --meta-dir meta_data [--split 1]

* Features: the method's video embedding (TVTSv2: the projected CLS, the official feature) of one view per video,
  the zero-shot input (12 frames at bin middles, short side 268 nearest, centre crop 224), L2-normalised.
  Extracted once per part into `<output-dir>/features_{train,test}.npz` and reused when the listing is the same.
* Classifier: multinomial logistic regression (weights and bias), mean cross-entropy + lambda/2 ||W||^2, fitted
  full-batch by L-BFGS (float64, at most `--max-iter` iterations, strong Wolfe line search).
* lambda from `--l2-grid` by the top-1 on a seeded, stratified 10% of the training videos held out, then refit on
  all of them; top-1/top-5 on the test part (HMDB/UCF test split, K400 validation).

This is not `run_class_linear` (the TVTS v1 SSV2 recipe: a trained head on augmented clips).
"""
import json
import logging
import os

import numpy as np
import torch
import torch.nn.functional as F

from .metrics import accuracy
from utils.distributed import gather_objects

from .text_video import base_parser, cli, failure_summary, finish, start
from .zero_data import RECOGNITION_SETS

log = logging.getLogger("downstream")
DEFAULT_L2_GRID = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)


def get_args(argv=None):
    p = base_parser(__doc__.splitlines()[0], RECOGNITION_SETS)
    p.add_argument("--split", type=int, default=1, choices=[1, 2, 3], help="HMDB-51 / UCF-101 split")
    p.add_argument("--l2-grid", type=lambda text: [float(v) for v in text.split(",")],
                   default=list(DEFAULT_L2_GRID), help="comma-separated penalties to choose from")
    p.add_argument("--max-iter", type=int, default=500)
    p.add_argument("--seed", type=int, default=0, help="seed of the held-out draw")
    return p.parse_args(argv)


def fit_logistic(x, y, num_classes, l2, max_iter=500):
    """(W (C, D), b (C,)) minimising mean cross-entropy + l2 / 2 * ||W||^2 by full-batch L-BFGS, from zeros, on
    x's device and in x's precision."""
    x = torch.as_tensor(x)
    y = torch.as_tensor(y, dtype=torch.long, device=x.device)
    w = torch.zeros(num_classes, x.shape[1], dtype=x.dtype, device=x.device, requires_grad=True)
    b = torch.zeros(num_classes, dtype=x.dtype, device=x.device, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=max_iter, tolerance_grad=1e-9, tolerance_change=1e-12,
                            history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ w.T + b, y) + 0.5 * l2 * (w * w).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return w.detach(), b.detach()


def stratified_holdout(labels, fraction, seed):
    """Boolean mask of a seeded held-out share of each class (at least one per class with >= 2 videos)."""
    rng = np.random.default_rng(seed)
    held = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        if len(members) >= 2:
            held[members[:max(1, int(round(fraction * len(members))))]] = True
    return held


def fit_probe(train_x, train_y, num_classes, l2_grid=DEFAULT_L2_GRID, seed=0, max_iter=500, device="cpu"):
    """Choose lambda on a 10% held-out share, refit on everything; returns (W, b, lambda, {lambda: held top-1}).
    Fitted in float64 on the CPU, in float32 on a GPU (Kinetics-size feature sets)."""
    device = torch.device(device)
    dtype = torch.float32 if device.type == "cuda" else torch.float64
    train_x = torch.as_tensor(train_x).to(device, dtype)
    train_y = torch.as_tensor(train_y).cpu()
    held = torch.from_numpy(stratified_holdout(train_y.numpy(), 0.1, seed)).to(device)
    train_y = train_y.to(device)
    scores = {}
    if held.any() and (~held).any():
        for l2 in l2_grid:
            w, b = fit_logistic(train_x[~held], train_y[~held], num_classes, l2, max_iter)
            scores[l2] = accuracy(train_x[held] @ w.T + b, train_y[held], topk=(1,))[0]
        best = max(l2_grid, key=lambda l2: (scores[l2], l2))  # ties go to the stronger penalty
    else:
        best = l2_grid[len(l2_grid) // 2]
    w, b = fit_logistic(train_x, train_y, num_classes, best, max_iter)
    return w, b, best, scores


def read_cache(path, ids, fingerprint):
    """(features, labels, failed names) of a cache file holding the same listing under the same fingerprint, else
    None (a stale or unreadable cache is extracted again, with a log line saying why)."""
    if not os.path.isfile(path):
        return None
    try:
        saved = np.load(path)
        same = np.array_equal(saved["listed"], ids) and json.loads(str(saved["fingerprint"])) == fingerprint
        if same:
            return saved["features"], saved["labels"], [str(n) for n in saved["failed"]]
        log.info("%s was made from other videos, weights or input settings: extracting again", path)
    except (OSError, ValueError, KeyError) as e:
        log.warning("cannot read the feature cache %s (%s): extracting again", path, e)
    return None


def features(encoder, records, part, args, env):
    """L2-normalised embeddings and labels of the readable records of a part, cached in the output folder. Rank 0
    decides whether the cache holds them and tells the others, so every rank takes the same path."""
    cache = os.path.join(args.output_dir, f"features_{part}.npz")
    ids = np.asarray([r["id"] for r in records], dtype=str)
    fingerprint = json.loads(json.dumps(encoder.fingerprint(reader=args.reader, dataset=args.dataset, part=part)))
    cached = read_cache(cache, ids, fingerprint) if env.is_main else None
    if gather_objects(cached is not None)[0]:
        if not env.is_main:
            return None, None, []
        log.info("%s features reused from %s", part, cache)
        feats, labels, failed = cached
        return torch.from_numpy(feats), torch.from_numpy(labels), [{"name": n, "error": "cached"} for n in failed]
    out = encoder.encode_videos(encoder.video_dataset([r["path"] for r in records], args.reader, args.loading), env,
                                args.batch_size, args.num_workers, desc=f"{part} videos")
    feats = F.normalize(out["embeddings"].double(), dim=1).float()
    labels = torch.tensor([records[i]["label"] for i in out["index"].tolist()], dtype=torch.long)
    if env.is_main:
        np.savez(cache, features=feats.numpy(), labels=labels.numpy(), listed=ids,
                 failed=np.asarray([r["name"] for r in out["failed"]], dtype=str),
                 fingerprint=np.asarray(json.dumps(fingerprint)))
    return feats, labels, out["failed"]


def main(argv=None):
    args = get_args(argv)
    env, encoder = start(args, "linear_probe")
    read = RECOGNITION_SETS[args.dataset]
    opts = {"split": args.split, "check_rows": args.check_rows, "header": args.header}
    (train, names), (test, _) = read(args.data_dir, args.meta_dir, part="train", **opts), \
        read(args.data_dir, args.meta_dir, part="test", **opts)
    log.info("%s: %d training and %d test videos, %d classes", args.dataset, len(train), len(test), len(names))
    with torch.no_grad():  # not inference mode: the features are fitted with autograd afterwards
        train_x, train_y, train_failed = features(encoder, train, "train", args, env)
        test_x, test_y, test_failed = features(encoder, test, "test", args, env)
    if not env.is_main:
        return None
    w, b, l2, scores = fit_probe(train_x, train_y, len(names), args.l2_grid, args.seed, args.max_iter, env.device)
    top1, top5 = accuracy(test_x.to(w) @ w.T + b, test_y, topk=(1, 5))
    log.info("lambda %.0e (held-out top-1 %s); test top-1 %.2f, top-5 %.2f over %d videos", l2,
             ", ".join(f"{k:.0e}: {v:.1f}" for k, v in scores.items()), top1, top5, len(test_y))
    return finish(args, {"top1": top1, "top5": top5, "videos": len(test_y), "train_videos": len(train_y),
                         "classes": len(names), "l2": l2, "heldout_top1": {str(k): v for k, v in scores.items()},
                         "train_failed": len(train_failed), **failure_summary(test_failed),
                         "split": args.split if args.dataset != "k400" else None})


if __name__ == "__main__":
    cli(main)
