"""Training checkpoints: the official layout plus everything needed to resume exactly, written atomically.

`state_dict` keys carry the `module.` prefix exactly as the official DDP checkpoints (so tools written for the
released files load ours); `config` is plain JSON data (the official pickled its config object). Files are written
to a temporary name and renamed, so a crash while saving never leaves a half-written checkpoint behind.
"""
import os
import random

import numpy as np
import torch

from model.checkpoint import read_checkpoint, strip_prefix


def rng_state():
    """Global RNG states as tensors and plain numbers, so the weights-only loader reads them back."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    numpy = {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
             "has_gauss": int(has_gauss), "cached": float(cached)}
    state = {"python": random.getstate(), "numpy": numpy, "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state):
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path, model, optimizer, scaler, epoch, step, epoch_step, config, best=None):
    """Write a checkpoint atomically. `epoch` is 1-based (the epoch being run or just finished), `step` counts
    optimiser steps over the run, `epoch_step` the iterations already done in `epoch` (0 when it finished)."""
    state = {
        "arch": "TVTS",
        "state_dict": {"module." + k: v for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "epoch": epoch,
        "step": step,
        "epoch_step": epoch_step,
        "monitor_best": best,
        "rng": rng_state(),
        "config": config,
    }
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_training_checkpoint(path):
    """A checkpoint written by `save_checkpoint` (read without running pickled code), prefix removed."""
    ckpt = read_checkpoint(path)
    ckpt["state_dict"] = strip_prefix(ckpt["state_dict"])
    return ckpt
