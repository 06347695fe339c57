"""VideoMAE's per-iteration cosine schedule, shared by VideoMAE-style fine-tuning and SimVTP pretraining."""
import math

import numpy as np


def cosine_scheduler(base_value, final_value, epochs, niter_per_ep, warmup_epochs=0, start_warmup_value=0,
                     warmup_steps=-1):
    """One value per iteration: linear warmup from `start_warmup_value` to `base_value` (both ends included),
    then half-cosine from `base_value` towards `final_value`, which the last step approaches but does not reach.

    Warmup length is `warmup_epochs * niter_per_ep`, or `warmup_steps` when that is > 0 (VideoMAE's rule).
    """
    total = epochs * niter_per_ep
    warmup_iters = warmup_steps if warmup_steps > 0 else warmup_epochs * niter_per_ep
    if warmup_iters > total:
        raise ValueError(f"warmup of {warmup_iters} iterations is longer than the run ({epochs} epochs x "
                         f"{niter_per_ep} iterations = {total})")
    warmup = np.linspace(start_warmup_value, base_value, warmup_iters) if warmup_iters > 0 else np.array([])
    decay_iters = total - warmup_iters
    decay = [final_value + 0.5 * (base_value - final_value) * (1 + math.cos(math.pi * i / decay_iters))
             for i in range(decay_iters)]
    return np.concatenate((warmup, np.array(decay)))
