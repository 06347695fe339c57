"""The TVTSv2 recipe's optimiser: the official four parameter groups from the config's rules, their learning
rates through the step schedule, and the shipped TVTSv2 configs."""
import os

import pytest
import torch

from conftest import ROOT, tiny_v2_model
from trainer.optim import LRSchedule, build_optimizer, parameter_groups
from utils import load_config


def official_groups(model, no_decay, tuned_blocks):
    """The official train_dist_TVTSv2_*.py grouping, restated from its description (spec 1.4): substring rules
    in this order; frozen text blocks in no group."""
    groups = {"decay_new": [], "no_decay_new": [], "decay_clip": [], "no_decay_clip": []}
    tuned = [f"resblocks.{i}." for i in tuned_blocks]
    for name, _ in model.named_parameters():
        decay = "no_decay" if any(nd in name for nd in no_decay) else "decay"
        if "video_model" in name:
            kind = "new" if ("timeattn" in name or "ln_3" in name) else "clip"
        elif "text" in name:
            if "resblocks" in name and not any(t in name for t in tuned):
                continue
            kind = "clip"
        else:
            kind = "new"
        groups[f"{decay}_{kind}"].append(name)
    return groups


@pytest.mark.parametrize("size", ["b32", "b16"])
def test_config_rules_rebuild_the_official_four_groups(size):
    opt = load_config(os.path.join(ROOT, "configs", f"tvtsv2-{size}.json"))["optimizer"]
    model = tiny_v2_model(text_params={"trainable_blocks": 1})  # 3 text blocks, the last one tuned
    groups = parameter_groups(model, opt["param_groups"], opt["no_weight_decay"], opt["args"]["weight_decay"])
    reference = official_groups(model, ["bias", "LayerNorm", "ln_", "norm"], tuned_blocks=[2])
    assert [g["names"] for g in groups] == [reference[k] for k in ("decay_new", "no_decay_new", "decay_clip",
                                                                   "no_decay_clip")]
    assert [(g["lr"], g["weight_decay"]) for g in groups] == [(1e-4, 0.05), (1e-4, 0.0), (1e-7, 0.05), (1e-7, 0.0)]
    assert "video_model.temporal_embedding" in groups[2]["names"]  # the random temporal table trains at 1e-7
    assert "pred_model.head.weight" in groups[0]["names"] and "pred_model.head.bias" in groups[1]["names"]
    assert not any("resblocks.0." in n for g in groups for n in g["names"] if n.startswith("text"))


def test_group_learning_rates_follow_the_step_schedule():
    opt = load_config(os.path.join(ROOT, "configs", "tvtsv2-b16.json"))["optimizer"]
    model = tiny_v2_model()
    optimizer = build_optimizer(model, "AdamW", opt["args"], opt["param_groups"], opt["no_weight_decay"])
    schedule = LRSchedule(optimizer.defaults["lr"], steps_per_epoch=5, epochs=10, milestones=(6, 8))
    seen = {}
    for epoch in (0, 5, 6, 7, 8, 9):
        schedule.apply(optimizer, epoch * 5)
        seen[epoch] = [g["lr"] for g in optimizer.param_groups]
    assert seen[0] == seen[5] == [1e-4, 1e-4, 1e-7, 1e-7]
    for epoch, factor in ((6, 0.1), (7, 0.1), (8, 0.01), (9, 0.01)):
        assert seen[epoch] == pytest.approx([1e-4 * factor] * 2 + [1e-7 * factor] * 2)


def test_a_parameter_no_rule_matches_is_an_error():
    with pytest.raises(ValueError, match="matches no optimizer.param_groups rule"):
        parameter_groups(tiny_v2_model(), [{"match": "^video_model"}])


def test_frozen_parameters_stay_out_of_the_optimizer():
    model = tiny_v2_model()
    optimizer = build_optimizer(model, "AdamW", {"lr": 1e-3})
    in_optimizer = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert all((id(p) in in_optimizer) == p.requires_grad for p in model.parameters())
    assert torch.isclose(torch.tensor(optimizer.param_groups[0]["initial_lr"]), torch.tensor(1e-3))


def test_rules_of_one_group_must_agree_and_no_decay_alone_splits_one_group():
    with pytest.raises(ValueError, match="rules named 'a' give different learning rates"):
        parameter_groups(tiny_v2_model(), [{"name": "a", "match": "video", "lr": 1.0},
                                           {"name": "a", "match": "", "lr": 2.0}])
    groups = parameter_groups(tiny_v2_model(), [], "bias", weight_decay=0.1)
    assert [g["weight_decay"] for g in groups] == [0.1, 0.0]
    assert all(n.endswith("bias") for n in groups[1]["names"]) and not any(n.endswith("bias")
                                                                            for n in groups[0]["names"])
