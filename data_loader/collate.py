"""Batching in the data workers: stack tensors, tokenise the transcripts (transcript-major), gather skip records.

Tokenising here, not in the training loop, keeps the tokenizer off the training process's critical path.
"""
import os

import numpy as np
import torch
from transformers import AutoTokenizer


def load_tokenizer(name_or_dir, vocab_size=None):
    """A Hugging Face tokenizer by hub name or local directory, checked against the text model's vocabulary.

    The check catches tokenizers that load "successfully" with almost no vocabulary (transformers 5 builds a
    5-token tokenizer when a vocab file is passed by keyword) and tokenizers that do not match the model.
    """
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # workers tokenise; no nested thread pools
    tokenizer = AutoTokenizer.from_pretrained(name_or_dir)
    size = len(tokenizer)
    if size <= 5:
        raise ValueError(f"tokenizer {name_or_dir} has only {size} tokens: its vocabulary did not load")
    if vocab_size is not None and size > vocab_size:
        raise ValueError(f"tokenizer {name_or_dir} has {size} tokens but the text model's vocabulary has "
                         f"{vocab_size}: token ids would fall outside the embedding table")
    return tokenizer


class TextVideoCollator:
    """list of sample dicts -> batch dict for `TVTS.forward` plus bookkeeping.

    `text`: tokenizer output for the K*B strings ordered transcript-major (every clip's transcript 0, then every
    clip's transcript 1, ...) padded to the longest, truncated at `max_length` tokens (official: 50);
    `video` (B, T, 3, H, W); `keep_ind` (B, slots, n_keep); `label` (B, K); `name`, `index`; `skipped`: every
    record of a sample that failed and was replaced (train) or dropped (val/test).
    """

    def __init__(self, tokenizer, max_length=50):
        self.tokenizer, self.max_length = tokenizer, max_length

    def __call__(self, samples):
        skipped = [r for s in samples for r in ([s["failed"]] if "failed" in s else s["skipped"])]
        samples = [s for s in samples if "failed" not in s]
        batch = {"skipped": skipped, "name": [s["name"] for s in samples],
                 "index": torch.tensor([s["index"] for s in samples], dtype=torch.int64)}
        if not samples:
            return batch
        k = len(samples[0]["text"])
        if any(len(s["text"]) != k for s in samples):
            raise ValueError(f"samples in one batch carry different numbers of transcripts: "
                             f"{sorted({len(s['text']) for s in samples})}")
        texts = [s["text"][i] for i in range(k) for s in samples]
        tokens = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                                return_tensors="pt")
        batch["text"] = {"input_ids": tokens["input_ids"], "attention_mask": tokens["attention_mask"]}
        batch["video"] = torch.stack([torch.as_tensor(s["video"]) for s in samples])
        batch["keep_ind"] = torch.from_numpy(np.stack([s["keep_ind"] for s in samples]))
        batch["label"] = torch.from_numpy(np.stack([s["label"] for s in samples]))
        return batch
