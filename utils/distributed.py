"""Process-group set-up from the environment and the cross-rank collectives every entry point uses.

Works under `torchrun` (RANK, WORLD_SIZE, LOCAL_RANK), under SLURM `srun` (SLURM_PROCID, SLURM_NTASKS,
SLURM_LOCALID, with MASTER_ADDR/MASTER_PORT set by the job script), or as one plain process. NCCL on GPUs,
gloo on CPU. Only global rank 0 writes files.
"""
import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

GATHER_MODES = ("official", "exact")


@dataclass
class DistEnv:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self):
        return self.rank == 0

    @property
    def distributed(self):
        return self.world_size > 1


def _env_int(*names):
    for name in names:
        if name in os.environ:
            return int(os.environ[name])
    return None


def init_distributed(device=None):
    """Join the process group described by the environment (or none for a single process) and pick the device."""
    rank = _env_int("RANK", "SLURM_PROCID") or 0
    world_size = _env_int("WORLD_SIZE", "SLURM_NTASKS") or 1
    local_rank = _env_int("LOCAL_RANK", "SLURM_LOCALID") or 0
    if device is None:
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:  # "cuda": this process's GPU
        device = torch.device("cuda", local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world_size > 1 and not dist.is_initialized():
        for var in ("MASTER_ADDR", "MASTER_PORT"):
            if var not in os.environ:
                raise RuntimeError(f"{world_size} processes but {var} is not set: launch with torchrun, or export "
                                   "MASTER_ADDR and MASTER_PORT in the SLURM job script")
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world_size)
    return DistEnv(rank, world_size, local_rank, device)


def is_distributed():
    """True inside a process group of more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size():
    """Processes in the group (1 outside one)."""
    return dist.get_world_size() if is_distributed() else 1


def rank():
    """This process's rank (0 outside a group)."""
    return dist.get_rank() if is_distributed() else 0


def cleanup():
    """Leave the process group together: a rank tearing down while another still talks aborts the job (gloo).

    Unreachable DDP wrappers are collected first: each keeps the group's C++ object alive, and one destroyed later,
    during interpreter shutdown, aborts the process ("terminate called without an active exception")."""
    if dist.is_initialized():
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()


class _GatherWithGrad(torch.autograd.Function):
    """All-gather rows in rank order. Backward: `official` passes back only this rank's rows of the incoming
    gradient (so after DDP's averaging the contrastive gradient is 1/world_size of the global one, as in the
    official code); `exact` first sums the gradient over ranks, giving the gradient of the global loss."""

    @staticmethod
    def forward(ctx, x, mode):
        ctx.mode, ctx.rows = mode, x.shape[0]
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad):
        if ctx.mode == "exact":
            grad = grad.contiguous()
            dist.all_reduce(grad)
        start = dist.get_rank() * ctx.rows
        return grad[start:start + ctx.rows], None


def gather_with_grad(x, mode="official"):
    """Rows of `x` from every rank, concatenated in rank order, differentiable as described above."""
    if mode not in GATHER_MODES:
        raise ValueError(f"gather mode must be one of {GATHER_MODES}, got {mode!r}")
    if not is_distributed():
        return x
    return _GatherWithGrad.apply(x, mode)


@torch.no_grad()
def gather_rows(x):
    """All-gather of possibly uneven row counts (validation), without gradient."""
    if not is_distributed():
        return x
    n = torch.tensor([x.shape[0]], device=x.device)
    counts = [torch.zeros_like(n) for _ in range(dist.get_world_size())]
    dist.all_gather(counts, n)
    most = int(max(c.item() for c in counts))
    padded = torch.zeros((most,) + tuple(x.shape[1:]), dtype=x.dtype, device=x.device)
    padded[:x.shape[0]] = x
    parts = [torch.empty_like(padded) for _ in counts]
    dist.all_gather(parts, padded)
    return torch.cat([p[:int(c.item())] for p, c in zip(parts, counts)])


def all_reduce_sum(values, device):
    """Sum a list of numbers over ranks (for counters such as skipped samples)."""
    t = torch.tensor(values, dtype=torch.float64, device=device)
    if is_distributed():
        dist.all_reduce(t)
    return t.tolist()


def gather_objects(obj):
    """A list with every rank's picklable `obj`, in rank order (just `[obj]` in one process)."""
    if not is_distributed():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out
