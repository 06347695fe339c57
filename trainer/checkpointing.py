"""Training checkpoints: the official layout plus everything needed to resume exactly, written atomically.

`state_dict` keys carry the `module.` prefix exactly as the official DDP checkpoints (so tools written for the
released files load ours); `config` is plain JSON data (the official pickled its config object). Files are written
to a temporary name and renamed, so a crash while saving never leaves a half-written checkpoint behind.
"""
from model.checkpoint import read_checkpoint, strip_prefix
from utils.io import save_torch
from utils.rng import rng_state


def save_checkpoint(path, model, optimizer, scaler_state, epoch, step, epoch_step, config, best=None, task=None):
    """Write a checkpoint atomically. `epoch` is 1-based (the epoch being run or just finished), `step` counts
    optimiser steps over the run, `epoch_step` the iterations already done in `epoch` (0 when it finished);
    `task` is the task's own state."""
    state = {
        "arch": type(model).__name__,
        "state_dict": {"module." + k: v for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scaler": scaler_state,
        "epoch": epoch,
        "step": step,
        "epoch_step": epoch_step,
        "monitor_best": best,
        "rng": rng_state(),
        "config": config,
        "task": task or {},
    }
    save_torch(state, path)


def load_training_checkpoint(path):
    """A checkpoint written by `save_checkpoint` (read without running pickled code), prefix removed."""
    ckpt = read_checkpoint(path)
    ckpt["state_dict"] = strip_prefix(ckpt["state_dict"])
    return ckpt
