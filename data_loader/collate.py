"""Batching in the data workers: stack tensors, tokenise the transcripts (transcript-major), gather skip records.

Tokenising here, not in the training loop, keeps the tokenizer off the training process's critical path.
"""
import numpy as np
import torch


class TextVideoCollator:
    """list of sample dicts -> batch dict for the networks' `forward` plus bookkeeping.

    `text`: the tokenizer's output (see `data_loader.tokenizers`) for the K*B strings ordered transcript-major
    (every clip's transcript 0, then every clip's transcript 1, ...); `video` (B, T, 3, H, W); `keep_ind`
    (B, ...) when the samples carry one (a masker is configured); `label` (B, K); `name`, `index`; `skipped`:
    every record of a sample that failed and was replaced (train) or dropped (val/test).
    """

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

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
        batch["text"] = self.tokenizer([s["text"][i] for i in range(k) for s in samples])
        batch["video"] = torch.stack([torch.as_tensor(s["video"]) for s in samples])
        if "keep_ind" in samples[0]:
            batch["keep_ind"] = torch.from_numpy(np.stack([s["keep_ind"] for s in samples]))
        batch["label"] = torch.from_numpy(np.stack([s["label"] for s in samples]))
        return batch
