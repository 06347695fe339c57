"""Diagnostic: pretrain with ideal transcript features for the sort head, to tell the video side from the text side.

    python bench/sort_oracle.py -c configs/demo-cpu.json trainer.epochs=10 [more train.py overrides]

Runs `train.py` unchanged except that the sort head's text input (normally the detached DistilBERT CLS features)
is a fixed random projection of each transcript's bag of token ids, standardised per transcript: a text side that
knows exactly which words each window holds from the first step. The contrastive loss still uses the real text
model. If sorting learns with this input and not without it, the text features are what holds it back; if it does
not learn even so, the video side (or the data) is. docs/benchmarks.md has the runs it was used for.
"""
import functools
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import train  # noqa: E402
from model.sort_transformer import SortTransformer  # noqa: E402
from model.tvts import TVTS  # noqa: E402


@functools.lru_cache(maxsize=None)
def _projection(vocab_size, dim, seed=123):
    return torch.randn(vocab_size, dim, generator=torch.Generator().manual_seed(seed))


def bag_features(input_ids, attention_mask, vocab_size, dim):
    """(N, L) token ids -> (N, dim): a fixed random projection of the set of non-special tokens, standardised."""
    bag = torch.zeros(input_ids.shape[0], vocab_size)
    bag.scatter_add_(1, input_ids, attention_mask.float())
    bag[:, :5] = 0  # [PAD] [UNK] [CLS] [SEP] [MASK]
    features = (bag > 0).float() @ _projection(vocab_size, dim)
    return (features - features.mean(1, keepdim=True)) / features.std(1, keepdim=True).clamp_min(1e-6)  # empty: 0


def patch_sort_input():
    """Make every TVTS.forward feed its sort head `bag_features` of the batch's transcripts instead of the text
    model's features; everything else is the unchanged forward."""
    tvts_forward, sort_forward = TVTS.forward, SortTransformer.forward

    def forward(self, batch):
        text = batch["text"]
        self.pred_model.oracle_bags = bag_features(text["input_ids"].cpu(), text["attention_mask"].cpu(),
                                                   self.text_model.config.vocab_size, self.pred_model.head.in_features)
        return tvts_forward(self, batch)

    def sort(self, text, video_tokens):
        b, k, d = text.shape  # the bags are transcript-major (K*B, D), as the tokenizer output
        return sort_forward(self, self.oracle_bags.to(text).reshape(k, b, d).transpose(0, 1), video_tokens)

    TVTS.forward, SortTransformer.forward = forward, sort


if __name__ == "__main__":
    patch_sort_input()
    train.main(sys.argv[1:])
