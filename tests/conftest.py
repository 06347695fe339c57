"""Tiny TVTS, TVTSv2 and CPD configurations and synthetic batches shared by the tests."""
import copy
import os
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from model import TVTS, build_model  # noqa: E402

def overridden(base, overrides):
    """A deep copy of a tiny config's arguments with top-level keys replaced."""
    return {**copy.deepcopy(base), **overrides}


TINY_ARGS = {
    "video_params": {"arch_config": "base_patch16_224", "num_frames": 16, "img_size": 32, "patch_size": 8,
                     "embed_dim": 64, "depth": 2, "num_heads": 4},
    "text_params": {"model": "distilbert", "pretrained": False,
                    "config": {"vocab_size": 100, "dim": 64, "n_layers": 2, "n_heads": 4, "hidden_dim": 128,
                               "max_position_embeddings": 32}},
    "projection_dim": 32,
    "n_trans": 4,
    "sort_params": {"depth": 2, "num_heads": 4},
}


def tiny_args(**overrides):
    return overridden(TINY_ARGS, overrides)


def tiny_model(seed=0, **overrides):
    torch.manual_seed(seed)
    return TVTS(**tiny_args(**overrides))


TINY_CPD_ARGS = {
    "video_params": {"model": "slowonly_resnet", "depth": 10, "width": 4},
    "text_params": {"model": "distilbert", "pretrained": False,
                    "config": {"vocab_size": 100, "dim": 32, "n_layers": 1, "n_heads": 2, "hidden_dim": 64,
                               "max_position_embeddings": 32}},
    "emb_dim": 16,
}


def tiny_cpd_args(**overrides):
    return overridden(TINY_CPD_ARGS, overrides)


def tiny_cpd(seed=0, **overrides):
    torch.manual_seed(seed)
    return build_model({"type": "CPD", "args": tiny_cpd_args(**overrides)})


def make_cpd_batch(b=2, frames=4, res=32, seq=6, vocab=100, seed=0):
    """One caption per clip, as CPD trains."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, vocab, (b, seq), generator=g)
    return {"text": {"input_ids": ids, "attention_mask": torch.ones_like(ids)},
            "video": torch.randn(b, frames, 3, res, res, generator=g)}


def random_keep_ind(b, slots, n_keep, patches, generator=None):
    """Per-slot random patch choice, as the data workers draw it (unsorted)."""
    return torch.stack([torch.stack([torch.randperm(patches, generator=generator)[:n_keep] for _ in range(slots)])
                        for _ in range(b)])


def make_batch(b=2, k=4, frames=16, res=32, patches=16, n_keep=4, seq=7, vocab=100, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, vocab, (k * b, seq), generator=g)
    mask = torch.ones_like(ids)
    mask[::3, seq - 2:] = 0  # some padded transcripts
    return {
        "text": {"input_ids": ids, "attention_mask": mask},
        "video": torch.randn(b, frames, 3, res, res, generator=g),
        "keep_ind": random_keep_ind(b, 8, n_keep, patches, g),
    }


@pytest.fixture
def model():
    return tiny_model()


@pytest.fixture
def batch():
    return make_batch()


TINY_V2_ARGS = {
    "clip_config": "ViT-B-16",
    "embed_dim": 24,
    "video_params": {"image_size": 32, "patch_size": 8, "width": 32, "layers": 2, "heads": 4, "num_frames": 12},
    "text_params": {"width": 32, "layers": 3, "heads": 4, "context_length": 16, "vocab_size": 1000,
                    "trainable_blocks": 1},
    "sort_params": {"num_heads": 4},
}


def tiny_v2_args(**overrides):
    args = copy.deepcopy(TINY_V2_ARGS)
    for key, value in overrides.items():
        args[key] = {**args[key], **value} if isinstance(args.get(key), dict) else value
    return args


def tiny_v2_model(seed=0, randomise=True, **overrides):
    """A tiny TVTSv2; `randomise` redraws every tensor (the zero-initialised temporal attention included) so that
    no branch of the arithmetic hides behind a zero."""
    from model import TVTSv2
    torch.manual_seed(seed)
    model = TVTSv2(**tiny_v2_args(**overrides))
    if randomise:
        g = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if p.ndim == 1 and name.endswith("weight"):  # LayerNorm gains
                    p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
                else:
                    p.copy_(0.2 * torch.randn(p.shape, generator=g))
    return model


def clip_token_ids(n, length=16, vocab=1000, seed=0):
    """(n, length) ids shaped like CLIP's: SOT, words, EOT (the highest id), zero padding of varied length."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.zeros(n, length, dtype=torch.int64)
    for i in range(n):
        end = int(torch.randint(2, length, (1,), generator=g))
        ids[i, 0] = vocab - 2
        ids[i, 1:end] = torch.randint(1, vocab - 2, (end - 1,), generator=g)
        ids[i, end] = vocab - 1
    return ids


def make_v2_batch(b=2, k=4, frames=12, res=32, patches=16, n_keep=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"text": clip_token_ids(k * b, seed=seed),
            "video": torch.randn(b, frames, 3, res, res, generator=g),
            "keep_ind": torch.stack([torch.randperm(patches, generator=g)[:n_keep] for _ in range(b)])}


TINY_SIMVTP_ARGS = {
    "video_params": {"img_size": 32, "patch_size": 8, "num_frames": 4, "tubelet_size": 2, "embed_dim": 32, "depth": 2,
                     "num_heads": 2},
    "decoder_params": {"embed_dim": 16, "depth": 1, "num_heads": 2},
    "text_params": {"model": "bert", "pretrained": False,
                    "config": {"vocab_size": 100, "hidden_size": 32, "max_position_embeddings": 32,
                               "num_attention_heads": 2, "intermediate_size": 64}},
}


def tiny_simvtp_args(**overrides):
    return overridden(TINY_SIMVTP_ARGS, overrides)


def tiny_simvtp(seed=0, **overrides):
    torch.manual_seed(seed)
    return build_model({"type": "SimVTP", "args": tiny_simvtp_args(**overrides)})


def make_simvtp_batch(b=3, frames=4, res=32, patches=16, n_keep=4, seq=7, vocab=100, seed=0, **options):
    """A SimVTP pretraining input: tube-masked clips (sorted kept positions), captions with padding, about half the
    words chosen for MLM (replaced by id 4, the tiny vocabulary's [MASK]), VTM draws, the objective's options."""
    from model.simvtp import SimVTPLoss
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (b, seq), generator=g)
    attention = torch.ones_like(ids)
    ids[0, seq - 2:], attention[0, seq - 2:] = 0, 0
    chosen = (torch.rand(b, seq, generator=g) < 0.5) & (attention == 1)
    return {"video": torch.randn(b, frames, 3, res, res, generator=g),
            "keep_ind": torch.stack([torch.randperm(patches, generator=g)[:n_keep].sort().values for _ in range(b)]),
            "text": {"input_ids": torch.where(chosen, 4, ids), "attention_mask": attention},
            "mlm_labels": torch.where(chosen, ids, -100), "vtm_draws": torch.rand(b, generator=g),
            "options": SimVTPLoss(**options).model_options()}
