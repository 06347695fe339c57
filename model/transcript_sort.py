"""What TVTS v1 and TVTSv2 share: a video tower, a text tower, a transcript-sort head, and one forward.

`forward(batch)` takes `text` (K*B transcripts, transcript-major: every clip's transcript 0, then every clip's
transcript 1, ...; tokenizer output, or a token-id tensor), `video` (B, T, 3, H, W) and `keep_ind`, and returns
the text embeddings (B, P) (the mean of the K transcript embeddings), the video embeddings (B, P) and the sort
logits (B, K, n_trans), or None when K == 1 (single captions). The sort head sees the *detached* transcript
features, so the sort loss trains the video tower and the head only (`sort_params.stop_gradient: false` lets it
reach the transcript encoder: the paper's Table 2 rows without "sg"). A head that sorts video segments
(`model.segment_sort`, the paper's Table 1) is given the clip's K segments, each encoded alone, instead of its
tokens; the contrastive embeddings still come from the whole clip.
"""
import inspect
import logging

import torch.nn as nn

from .blocks import ATTENTION_IMPLS
from .registry import HEADS

log = logging.getLogger(__name__)

SORT_PARAM_KEYS = ("head", "stop_gradient", "depth", "num_heads", "mlp_ratio", "hidden", "dropout")


def build_sort_head(embed_dim, num_classes, attention, grad_checkpointing, defaults, sort_params,
                    video_segments=False):
    """The sort head `sort_params["head"]` names (HEADS: "sort_transformer", the official K-way head, by default)
    and whether the sort loss is stopped from reaching the transcript encoder (`stop_gradient`, official: true).

    `defaults` and the remaining `sort_params` go to the head's constructor where it takes them (a head without a
    joint transformer, VCOP's, reads no `depth` / `num_heads` / `mlp_ratio`: a recipe's values are logged as
    unused); `video_segments`: whether the model can encode its clips' segments for a head that sorts them."""
    params = {**defaults, **(sort_params or {})}
    head, stop_gradient = params.pop("head", "sort_transformer"), params.pop("stop_gradient", True)
    if not isinstance(stop_gradient, bool):
        raise ValueError(f"arch.args.sort_params.stop_gradient must be true or false, got {stop_gradient!r}")
    cls = HEADS.get(head)
    if getattr(cls, "sorts_video_segments", False) and not video_segments:
        raise ValueError(f"arch.args.sort_params.head {head!r} sorts video segments, which this architecture does "
                         "not encode (TVTS v1 does)")
    takes = inspect.signature(cls).parameters
    given = {k for k in (sort_params or {}) if k not in ("head", "stop_gradient")}
    refused = sorted(given - set(takes) - set(defaults))
    if refused:
        raise ValueError(f"arch.args.sort_params {refused} are not arguments of the {head!r} head")
    unused = sorted(given - set(takes))
    if unused:
        log.info("arch.args.sort_params %s are not read by the %r head", unused, head)
    params.update(attention=attention, grad_checkpointing=grad_checkpointing)
    return cls(embed_dim=embed_dim, num_classes=num_classes,
               **{k: v for k, v in params.items() if k in takes}), stop_gradient


def check_keys(params, allowed, name):
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(f"unknown key(s) in arch.args.{name}: {unknown}; allowed: {list(allowed)}")


def check_attention(attention):
    if attention not in ATTENTION_IMPLS:
        raise ValueError(f"arch.args.attention must be one of {ATTENTION_IMPLS}, got {attention!r}")


def token_ids(text):
    """The (N, L) id tensor of tokenizer output (a dict holding `input_ids`) or of a plain id tensor."""
    return text["input_ids"] if isinstance(text, dict) else text


class TranscriptSortModel(nn.Module):
    """Subclasses define `compute_text(text) -> (sort features (N, D), embeddings (N, P))` and
    `compute_video(video, keep_ind) -> (sort tokens (B, M, D), embeddings (B, P))`, and set `n_trans`.

    Class attributes tell the rest of the project what the network reads: `tokenizer` (the tokenizer family of
    its text tower), `masking` (the `keep_ind` layout its video tower takes) and `optional_checkpoint_prefixes`
    (parts a released checkpoint may leave out; see `model.checkpoint.load_checkpoint`).
    """

    tokenizer = None
    masking = None
    optional_checkpoint_prefixes = ()
    sort_stop_gradient = True

    @staticmethod
    def default_tokenizer_name(args):
        """The tokenizer to load when the config's `tokenizer.name` is empty ("" = the tokenizer kind's own)."""
        return ""

    def forward(self, batch):
        video = batch["video"]
        b = video.shape[0]
        n_text = token_ids(batch["text"]).shape[0]
        if n_text % b:
            raise ValueError(f"text holds {n_text} transcripts for {b} clips: expected K * {b} (transcript-major)")
        k = n_text // b
        if k not in (1, self.n_trans):
            raise ValueError(f"got K={k} transcripts per clip; this model sorts n_trans={self.n_trans} (or takes 1)")
        text_features, text_embeddings = self.compute_text(batch["text"])
        text_embeddings = text_embeddings.reshape(k, b, -1).mean(0)
        video_tokens, video_embeddings = self.compute_video(video, batch.get("keep_ind"))
        sort_logits = None
        if k > 1:
            sort_text = text_features.reshape(k, b, -1).transpose(0, 1)
            if self.sort_stop_gradient:
                sort_text = sort_text.detach()
            if getattr(self.pred_model, "sorts_video_segments", False):
                sort_logits = self.pred_model(sort_text, self.segment_features(video, batch.get("keep_ind"), k))
            else:
                sort_logits = self.pred_model(sort_text, video_tokens)
        return text_embeddings, video_embeddings, sort_logits

    def segment_features(self, video, keep_ind, k):
        """(B, K, D) features of the clip's K segments, each encoded alone (for the heads of model.segment_sort)."""
        raise NotImplementedError(f"{type(self).__name__} does not encode video segments")
