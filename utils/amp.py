"""Mixed precision in one place: the precision names, their autocast dtypes, and the optimiser step that goes
with them (loss scaling, unscaling before clipping, the scaler update), shared by pretraining and downstream."""
import functools
import logging

import torch

from .hardware import BF16_CPU_FLAGS, cpu_model, cpu_native_bf16

log = logging.getLogger(__name__)

AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
PRECISIONS = tuple(AUTOCAST_DTYPES)


def autocast_dtype(precision, device=None):
    """The autocast dtype of a precision name; `auto` is fp16 on a GPU and fp32 elsewhere. bf16 on a CPU without
    native bf16 logs a warning (once): it is emulated there, which can be many times slower than fp32."""
    if precision == "auto":
        precision = "fp16" if device is not None and torch.device(device).type == "cuda" else "fp32"
    if precision not in AUTOCAST_DTYPES:
        raise ValueError(f"precision must be one of {PRECISIONS} (or auto), got {precision!r}")
    if precision == "bf16" and device is not None and torch.device(device).type == "cpu" and \
            cpu_native_bf16() is False:
        _warn_emulated_bf16()
    return AUTOCAST_DTYPES[precision]


@functools.lru_cache(maxsize=None)
def _warn_emulated_bf16():
    log.warning("bf16 was asked for on a CPU without native bf16 (%s: no %s flag): PyTorch emulates it, which can "
                "be many times slower than fp32 (docs/benchmarks.md); fp32 is the faster choice here", cpu_model(),
                "/".join(BF16_CPU_FLAGS))


def autocast(device, dtype):
    """Autocast to `dtype` on `device`'s type; dtype None (fp32) switches autocast off, an enclosing one too."""
    device = torch.device(device)
    if dtype is None:
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=dtype)


class OptimizerStep:
    """backward() and step() for one optimiser, with an optional grad scaler and gradient-norm clipping.

    `scale_loss=True` (fp16) multiplies the loss by a dynamic scale before backward and unscales the gradients
    before clipping; steps whose gradients overflow are skipped by the scaler. `clip` <= 0 disables clipping.
    """

    def __init__(self, optimizer, device, scale_loss=False, clip=0.0):
        self.optimizer, self.clip = optimizer, clip
        self.scaler = torch.amp.GradScaler(torch.device(device).type) if scale_loss else None

    def backward(self, loss):
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def step(self, parameters):
        """Clip (after unscaling), step, update the scale, and zero the gradients."""
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        if self.clip and self.clip > 0:
            torch.nn.utils.clip_grad_norm_(parameters, self.clip)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def state_dict(self):
        return self.scaler.state_dict() if self.scaler is not None else None

    def load_state_dict(self, state):
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)
