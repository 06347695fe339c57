"""CPD's objective: noise-contrastive estimation against memory banks of every training instance, both ways.

Each training instance i has a slot in two banks (N x D, unit rows): the video bank M_v and the text bank M_t. A
batch's video embedding v_i is scored against K + 1 rows of the *text* bank (slot 0 its own caption's row, then K
rows drawn uniformly from all N, which may include its own), and its text embedding t_i against the same rows of
the video bank: s = exp(v . m / tau). The scores are divided by a normaliser Z, set on the first step to
N * mean(s) (averaged over ranks) and frozen after that, giving P; the NCE posterior against a uniform noise of K
draws is h(P) = P / (P + K/N + 1e-7), and each direction's loss is -(mean over the batch) of log h(P_pos) +
sum log(1 - h(P_neg)), with 1 - h computed as (K/N) / (P + K/N + 1e-7). The total is the sum of both directions'
positive and negative terms. After scoring, the banks' rows of the batch (gathered from every rank, so every
rank applies the same update) move to normalise(m * row + (1 - m) * feature).

The banks, the two normalisers and nothing else are this module's state (`state_dict`); the training task keeps
the module outside the network, so DDP never broadcasts the banks.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .loss import OBJECTIVES

EPS = 1e-7


def nce_terms(probs, num_instances):
    """(positive, negative) NCE losses of one direction; `probs` (B, K + 1) with the positive in column 0. Both
    are sums over the batch's samples divided by B, as the official criterion."""
    k = probs.shape[1] - 1
    noise = k / num_instances
    pos = torch.log(probs[:, 0] / (probs[:, 0] + noise + EPS))
    neg = torch.log(noise / (probs[:, 1:] + noise + EPS))
    batch = probs.shape[0]
    return -pos.sum() / batch, -neg.sum() / batch


def draw_slots(index, num_negatives, num_instances, generator, exclude_positive=False):
    """(B, K + 1) bank slots: each row's own `index` first, then K uniform draws from all N slots (official) or,
    with `exclude_positive`, from the N - 1 others."""
    batch = index.shape[0]
    high = num_instances - 1 if exclude_positive else num_instances
    negatives = torch.randint(high, (batch, num_negatives), generator=generator, device=generator.device)
    if exclude_positive:
        negatives += (negatives >= index[:, None]).long()
    return torch.cat([index[:, None], negatives.to(index.device)], dim=1)


def _forget_normalisers(module, _incompatible_keys):
    module._normalisers_set = False


@OBJECTIVES.register("CPDLoss")
class MemoryBankNCE(nn.Module):
    """`num_negatives` K (official default 16392), `temperature` tau (0.07), `momentum` m of the bank update (0.5),
    `exclude_positive` (false: the own slot may be drawn as a negative, official), `text_freeze_epochs` (the
    text tower gets no gradient in epochs 1..this, official 150 of 300; read by the training task).

    `reset(num_instances, dim, generator)` allocates the banks with the official uniform init in
    [-1/sqrt(dim/3), 1/sqrt(dim/3)] (rows not normalised) and the normalisers unset (-1)."""

    def __init__(self, num_negatives=16392, temperature=0.07, momentum=0.5, exclude_positive=False,
                 text_freeze_epochs=0):
        super().__init__()
        if num_negatives < 1 or temperature <= 0 or not 0 <= momentum < 1 or text_freeze_epochs < 0:
            raise ValueError(f"CPDLoss needs num_negatives >= 1, temperature > 0, 0 <= momentum < 1 and "
                             f"text_freeze_epochs >= 0; got {num_negatives}, {temperature}, {momentum}, "
                             f"{text_freeze_epochs}")
        self.num_negatives, self.temperature, self.momentum = num_negatives, temperature, momentum
        self.exclude_positive, self.text_freeze_epochs = exclude_positive, text_freeze_epochs
        self.register_buffer("Z_v", torch.tensor([-1.0]))
        self.register_buffer("Z_t", torch.tensor([-1.0]))
        self.register_buffer("vis_memory", torch.zeros(0, 0))
        self.register_buffer("text_memory", torch.zeros(0, 0))
        self._normalisers_set = False  # whether Z_v and Z_t hold estimates; re-read after a reset or a load
        self.register_load_state_dict_post_hook(_forget_normalisers)

    @property
    def num_instances(self):
        return self.vis_memory.shape[0]

    def reset(self, num_instances, dim, generator):
        if num_instances < 2:
            raise ValueError(f"CPD's memory banks need at least 2 training instances, got {num_instances}")
        bound = 1.0 / math.sqrt(dim / 3)
        device = self.Z_v.device
        for name in ("vis_memory", "text_memory"):
            bank = torch.rand(num_instances, dim, generator=generator).mul_(2 * bound).sub_(bound)
            setattr(self, name, bank.to(device))
        self.Z_v.fill_(-1.0)
        self.Z_t.fill_(-1.0)
        self._normalisers_set = False

    def probabilities(self, video, text, slots, reduce_mean=None):
        """(P_v, P_t), each (B, K + 1): the video embeddings scored against the text bank's `slots` and the text
        embeddings against the video bank's, divided by the normalisers. Unset normalisers are estimated from
        these scores (`reduce_mean` averages a float over ranks)."""
        b = video.shape[0]
        text_rows = self.text_memory.index_select(0, slots.reshape(-1)).view(b, -1, video.shape[1])
        video_rows = self.vis_memory.index_select(0, slots.reshape(-1)).view(b, -1, video.shape[1])
        s_v = torch.exp(torch.bmm(text_rows, video.unsqueeze(2)).squeeze(2) / self.temperature)
        s_t = torch.exp(torch.bmm(video_rows, text.unsqueeze(2)).squeeze(2) / self.temperature)
        if not self._normalisers_set:  # read the buffers once per run, not on every step (a device sync)
            with torch.no_grad():
                for z, s in ((self.Z_v, s_v), (self.Z_t, s_t)):
                    if z.item() < 0:
                        estimate = s.mean().item() * self.num_instances
                        z.fill_(reduce_mean(estimate) if reduce_mean else estimate)
            self._normalisers_set = True
        return s_v / self.Z_v, s_t / self.Z_t

    def forward(self, probs_v, probs_t):
        """The four loss terms and their sum."""
        vp, vn = nce_terms(probs_v, self.num_instances)
        tp, tn = nce_terms(probs_t, self.num_instances)
        return {"total": vp + vn + tp + tn, "video_pos": vp, "video_neg": vn, "text_pos": tp, "text_neg": tn}

    @torch.no_grad()
    def update(self, video, text, index):
        """Move the banks' rows `index` towards the features (every rank's batch, gathered by the caller)."""
        for bank, feats in ((self.vis_memory, video), (self.text_memory, text)):
            rows = bank.index_select(0, index).mul_(self.momentum).add_(feats.to(bank.dtype), alpha=1 - self.momentum)
            bank.index_copy_(0, index, F.normalize(rows, dim=1))
