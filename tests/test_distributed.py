"""Two gloo processes on CPU: the gathered contrastive loss's gradient in both modes against one process."""
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from conftest import make_batch, tiny_model
from model import TVTSLoss
from utils.distributed import cleanup, gather_rows, gather_with_grad

B = 2  # clips per process


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _split(batch, rank, world):
    """This rank's clips of a global batch (text rows are transcript-major)."""
    b = batch["video"].shape[0] // world
    clips = slice(rank * b, (rank + 1) * b)
    k = batch["text"]["input_ids"].shape[0] // batch["video"].shape[0]
    rows = torch.cat([torch.arange(j * batch["video"].shape[0], (j + 1) * batch["video"].shape[0])[clips]
                      for j in range(k)])
    return {"text": {n: t[rows] for n, t in batch["text"].items()}, "video": batch["video"][clips],
            "keep_ind": batch["keep_ind"][clips]}


def _worker(rank, world, port, mode, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    model = tiny_model(seed=0).eval()  # no dropout, so the processes see exactly the single-process features
    net = DistributedDataParallel(model)
    local = _split(make_batch(b=B * world, seed=1), rank, world)
    text, video, logits = net(local)
    loss = TVTSLoss()(gather_with_grad(video, mode), gather_with_grad(text, mode), logits)["total"]
    loss.backward()
    rows = gather_rows(video.detach())
    if rank == 0:
        torch.save({"grads": {n: p.grad for n, p in model.named_parameters() if p.grad is not None},
                    "rows": rows}, out)
    del net, text, video, logits, loss  # cleanup() collects the DDP wrapper before destroying the group
    cleanup()


def _single_process_grads(nce_scale):
    model = tiny_model(seed=0).eval()
    batch = make_batch(b=B * 2, seed=1)
    text, video, logits = model(batch)
    losses = TVTSLoss()(video, text, logits)
    (nce_scale * losses["nce"] + 2 * losses["sort"]).backward()
    return {n: p.grad for n, p in model.named_parameters() if p.grad is not None}, video.detach()


@pytest.mark.parametrize("mode, nce_scale", [("official", 0.5), ("exact", 1.0)])
def test_two_process_gradients_match_one_process_on_the_global_batch(tmp_path, mode, nce_scale):
    out = tmp_path / "grads.pt"
    mp.spawn(_worker, args=(2, _free_port(), mode, str(out)), nprocs=2, join=True)
    got = torch.load(out)
    expected, video = _single_process_grads(nce_scale)
    torch.testing.assert_close(got["rows"], video, rtol=1e-5, atol=1e-6)  # gathered in rank order
    assert got["grads"].keys() == expected.keys()
    largest = max(g.abs().max() for g in expected.values())
    for name, g in expected.items():  # gradients that are zero in theory (key biases) are compared to the largest
        err = ((got["grads"][name] - g).abs().max() / torch.maximum(g.abs().max(), 1e-4 * largest)).item()
        assert err < 1e-4, f"{name}: relative error {err:.1e}"
