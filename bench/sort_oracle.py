"""Diagnostic: pretrain with ideal transcript features for the sort head, to tell the video side from the text side.

    python bench/sort_oracle.py -c configs/demo-cpu.json trainer.epochs=10 [more train.py overrides]

Runs `train.py` unchanged except that the sort head's text input (normally the detached DistilBERT CLS features)
is a fixed random projection of each transcript's bag of token ids, standardised per transcript: a text side that
knows exactly which words each window holds from the first step. The contrastive loss still uses the real text
model. If sorting learns with this input and not without it, the text features are what holds it back; if it does
not learn even so, the video side (or the data) is. docs/benchmarks.md has the runs it was used for.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import train  # noqa: E402
from model.tvts import TVTS  # noqa: E402


def bag_features(input_ids, attention_mask, vocab_size, dim, seed=123):
    """(N, L) token ids -> (N, dim): a fixed random projection of the set of non-special tokens, standardised."""
    projection = torch.randn(vocab_size, dim, generator=torch.Generator().manual_seed(seed))
    bag = torch.zeros(input_ids.shape[0], vocab_size)
    bag.scatter_add_(1, input_ids, attention_mask.float())
    bag[:, :5] = 0  # [PAD] [UNK] [CLS] [SEP] [MASK]
    features = (bag > 0).float() @ projection
    return (features - features.mean(1, keepdim=True)) / features.std(1, keepdim=True)


def oracle_forward(self, batch):
    """TVTS.forward with the sort head's text input replaced by `bag_features`."""
    video = batch["video"]
    b = video.shape[0]
    k = batch["text"]["input_ids"].shape[0] // b
    _, text_embeddings = self.compute_text(batch["text"])
    video_tokens, video_embeddings = self.compute_video(video, batch.get("keep_ind"))
    if k == 1:
        return text_embeddings, video_embeddings, None
    bags = bag_features(batch["text"]["input_ids"].cpu(), batch["text"]["attention_mask"].cpu(),
                        self.text_model.config.vocab_size, video_tokens.shape[-1])
    sort_text = bags.to(video_tokens).reshape(k, b, -1).transpose(0, 1)
    return text_embeddings.reshape(k, b, -1).mean(0), video_embeddings, self.pred_model(sort_text, video_tokens)


if __name__ == "__main__":
    TVTS.forward = oracle_forward
    train.main(sys.argv[1:])
