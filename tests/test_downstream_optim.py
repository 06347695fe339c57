"""Downstream optimiser set-up: lr buckets, decay groups, the cosine schedule, optimiser choice and per-step values."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from downstream.optim import build_optimizer, effective_optimizer, layer_id, param_groups, set_lr_wd
from utils.schedule import cosine_scheduler

BLOCK_PARTS = ("norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2")


def encoder_names(depth):
    names = ["cls_token", "pos_embed", "temporal_embed", "patch_embed.proj.weight", "patch_embed.proj.bias"]
    names += [f"blocks.{i}.{part}.{kind}" for i in range(depth) for part in BLOCK_PARTS for kind in ("weight", "bias")]
    return names + ["norm.weight", "norm.bias", "head.weight", "head.bias"]


def expected_bucket(name, depth):
    """The official table written out: embeddings 0, block i -> i + 1, the rest (temporal_embed too) -> depth + 1."""
    if name in ("cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias"):
        return 0
    for i in range(depth):
        if name.startswith(f"blocks.{i}."):
            return i + 1
    return depth + 1


@pytest.mark.parametrize("depth", [2, 12])
def test_every_parameter_name_lands_in_its_official_bucket(depth):
    names = encoder_names(depth)
    assert len(names) == 5 + 12 * depth + 4
    for name in names:
        assert layer_id(name, depth + 1) == expected_bucket(name, depth), name


def test_depth_12_buckets_spot_checks():
    assert layer_id("blocks.11.mlp.fc2.bias", 13) == 12
    assert layer_id("blocks.1.attn.qkv.weight", 13) == 2
    assert layer_id("temporal_embed", 13) == 13
    assert layer_id("head.weight", 13) == 13
    assert layer_id("patch_embed.proj.weight", 13) == 0


class Attn(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)


class Mlp(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, 2 * dim), nn.Linear(2 * dim, dim)


class Block(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.norm1, self.attn, self.norm2, self.mlp = nn.LayerNorm(dim), Attn(dim), nn.LayerNorm(dim), Mlp(dim)


class PatchEmbed(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.proj = nn.Conv3d(3, dim, (2, 4, 4), (2, 4, 4))


class TinyClassifier(nn.Module):
    """The classifier's parameter names at depth 2 and width 4."""

    def __init__(self, dim=4, depth=2, classes=3):
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 5, dim))
        self.temporal_embed = nn.Parameter(torch.zeros(1, 2, dim))
        self.patch_embed = PatchEmbed(dim)
        self.blocks = nn.ModuleList(Block(dim) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)


def groups_by_key(groups):
    return {(layer_of(g), g["weight_decay"] > 0): g for g in groups}


def layer_of(group):
    buckets = {layer_id(name, 3) for name in group["param_names"]}
    assert len(buckets) == 1, group["param_names"]
    return buckets.pop()


def test_param_groups_split_by_bucket_and_decay_with_official_exclusions():
    model = TinyClassifier()
    assert sorted(n for n, _ in model.named_parameters()) == sorted(encoder_names(2))
    groups = groups_by_key(param_groups(model, weight_decay=0.05, layer_decay=0.5))
    names = {key: set(g["param_names"]) for key, g in groups.items()}
    assert names[(0, False)] == {"cls_token", "pos_embed", "patch_embed.proj.bias"}
    assert names[(0, True)] == {"patch_embed.proj.weight"}
    for layer in (1, 2):
        prefix = f"blocks.{layer - 1}."
        assert names[(layer, True)] == {prefix + p + ".weight" for p in ("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2")}
        assert names[(layer, False)] == ({prefix + p + ".bias" for p in BLOCK_PARTS}
                                         | {prefix + "norm1.weight", prefix + "norm2.weight"})
    assert names[(3, True)] == {"temporal_embed", "head.weight"}
    assert names[(3, False)] == {"norm.weight", "norm.bias", "head.bias"}
    assert len(groups) == 8
    # lr_scale = 0.5 ** (3 - bucket); weight decay only in the decay groups
    for (layer, decay), group in groups.items():
        assert group["lr_scale"] == pytest.approx(0.5 ** (3 - layer))
        assert group["weight_decay"] == (0.05 if decay else 0.0)
    params = dict(model.named_parameters())
    for group in groups.values():
        assert all(p is params[n] for p, n in zip(group["params"], group["param_names"]))


def test_layer_decay_one_gives_unit_scales_and_frozen_params_are_left_out():
    model = TinyClassifier()
    assert {g["lr_scale"] for g in param_groups(model, 0.05, 1.0)} == {1.0}
    for name, p in model.named_parameters():
        p.requires_grad = name.startswith("head.")
    groups = param_groups(model, weight_decay=1e-9, layer_decay=0.75)
    assert [(g["param_names"], g["weight_decay"], g["lr_scale"]) for g in groups] == [
        (["head.weight"], 1e-9, 1.0), (["head.bias"], 0.0, 1.0)]


def test_param_groups_without_trainable_parameters_raise():
    model = TinyClassifier()
    model.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable"):
        param_groups(model, 0.05, 0.75)


def closed_form_cosine(base, final, i, n):
    return final + 0.5 * (base - final) * (1 + math.cos(math.pi * i / n))


def test_cosine_schedule_warmup_end_midpoint_and_last_step():
    values = cosine_scheduler(1.0, 0.1, epochs=3, niter_per_ep=4, warmup_epochs=1)
    assert len(values) == 12
    np.testing.assert_allclose(values[:4], [0.0, 1 / 3, 2 / 3, 1.0])  # linear from 0, peak reached at step 3
    assert values[4] == pytest.approx(1.0)  # the cosine starts at the peak again
    assert values[8] == pytest.approx(0.55)  # halfway through 8 cosine steps: the mean of peak and floor
    assert values[11] == pytest.approx(closed_form_cosine(1.0, 0.1, 7, 8))
    assert values[11] > 0.1


def test_cosine_schedule_start_value_and_no_warmup():
    values = cosine_scheduler(2.0, 0.0, epochs=1, niter_per_ep=5, warmup_epochs=1, start_warmup_value=1.0,
                              warmup_steps=3)
    np.testing.assert_allclose(values, [1.0, 1.5, 2.0, 2.0, 1.0])
    plain = cosine_scheduler(2.0, 0.0, epochs=2, niter_per_ep=2)
    np.testing.assert_allclose(plain, [2.0, 1 + math.cos(math.pi / 4), 1.0, 1 + math.cos(3 * math.pi / 4)])


def test_warmup_steps_override_warmup_epochs():
    values = cosine_scheduler(1.0, 0.0, epochs=2, niter_per_ep=5, warmup_epochs=1, warmup_steps=2)
    np.testing.assert_allclose(values[:3], [0.0, 1.0, 1.0])
    assert values[6] == pytest.approx(closed_form_cosine(1.0, 0.0, 4, 8))
    # official crash (warmup_steps without warmup_epochs gave a short schedule) fixed: the steps still warm up
    np.testing.assert_allclose(cosine_scheduler(1.0, 0.0, 1, 4, warmup_epochs=0, warmup_steps=2)[:2], [0.0, 1.0])


def test_constant_schedule_for_weight_decay_and_too_long_warmup():
    np.testing.assert_allclose(cosine_scheduler(0.05, 0.05, 2, 3), [0.05] * 6)
    with pytest.raises(ValueError, match="longer than the run"):
        cosine_scheduler(1.0, 0.0, epochs=1, niter_per_ep=3, warmup_epochs=2)


def test_build_optimizer_sgd_is_nesterov_and_adamw_takes_betas_eps():
    groups = param_groups(TinyClassifier(), 0.05, 0.75)
    sgd = build_optimizer(groups, opt="sgd", lr=0.1, momentum=0.8)
    assert isinstance(sgd, torch.optim.SGD)
    assert all(g["nesterov"] and g["momentum"] == 0.8 for g in sgd.param_groups)
    adamw = build_optimizer(param_groups(TinyClassifier(), 0.05, 0.75), opt="adamw", lr=1e-3, betas=(0.8, 0.9),
                            eps=1e-6)
    assert isinstance(adamw, torch.optim.AdamW)
    assert all(g["betas"] == (0.8, 0.9) and g["eps"] == 1e-6 for g in adamw.param_groups)
    assert sorted({g["weight_decay"] for g in adamw.param_groups}) == [0.0, 0.05]
    with pytest.raises(ValueError, match="lamb"):
        build_optimizer(groups, opt="lamb", lr=1.0)


def test_set_lr_wd_scales_lr_and_leaves_no_decay_groups_alone():
    opt = build_optimizer(param_groups(TinyClassifier(), 0.05, 0.5), opt="adamw", lr=1.0)
    set_lr_wd(opt, 0.2, 0.01)
    for group in opt.param_groups:
        assert group["lr"] == pytest.approx(0.2 * 0.5 ** (3 - layer_of(group)))
        assert group["weight_decay"] in (0.0, 0.01)
    assert {g["weight_decay"] for g in opt.param_groups} == {0.0, 0.01}


def test_one_adamw_step_with_zero_gradient_only_decays_decay_groups():
    model = TinyClassifier()
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(1.0)
    opt = build_optimizer(param_groups(model, 0.1, 0.5), opt="adamw", lr=1.0)
    set_lr_wd(opt, 0.2, 0.1)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    params = dict(model.named_parameters())
    # decoupled decay: p <- p * (1 - lr * scale * wd); block 0 has scale 0.5 ** 2
    torch.testing.assert_close(params["blocks.0.mlp.fc1.weight"], torch.full_like(params["blocks.0.mlp.fc1.weight"],
                                                                                   1 - 0.2 * 0.25 * 0.1))
    torch.testing.assert_close(params["temporal_embed"], torch.full_like(params["temporal_embed"], 1 - 0.2 * 0.1))
    assert torch.all(params["pos_embed"] == 1.0) and torch.all(params["blocks.1.norm1.weight"] == 1.0)


def test_effective_optimizer_official_is_adamw_whatever_opt_says():
    assert effective_optimizer("sgd", "official") == "adamw"
    assert effective_optimizer("sgd", "as_given") == "sgd"
    assert effective_optimizer("adamw", "as_given") == "adamw"
    with pytest.raises(ValueError, match="rule"):
        effective_optimizer("sgd", "deepspeed")
    with pytest.raises(ValueError, match="rmsprop"):
        effective_optimizer("rmsprop")
