"""Tests generated from the registries: every registered architecture gets a tiny build, a forward and backward,
activation checkpointing, a strict checkpoint round trip and its config checks; every task drives a registered
objective. A new registry entry without a tiny config here fails the first test."""
import inspect

import pytest
import torch

from conftest import (make_batch, make_cpd_batch, make_simvtp_batch, make_v2_batch, tiny_args, tiny_cpd_args,
                      tiny_simvtp_args, tiny_v2_args)
from model import (ARCHITECTURES, HEADS, OBJECTIVES, TEXT_ENCODERS, VIDEO_ENCODERS, TVTSLoss, build_model,
                   load_checkpoint)
from model.loss import SORT_MODELLINGS
from trainer.task import TASKS

TINY = {"TVTS": (tiny_args, make_batch), "TVTSv2": (tiny_v2_args, make_v2_batch),
        "CPD": (tiny_cpd_args, make_cpd_batch), "SimVTP": (tiny_simvtp_args, make_simvtp_batch)}
SORTING = sorted(a for a in TINY if "sort_params" in inspect.signature(ARCHITECTURES.get(a).check_args).parameters)
CHECKPOINTING = sorted(a for a in TINY if "grad_checkpointing" in inspect.signature(ARCHITECTURES.get(a)).parameters)


def outputs(out):
    """A network's outputs as a list of tensors (SimVTP returns a dict of losses and features)."""
    return list(out.values()) if isinstance(out, dict) else list(out)


def test_every_architecture_has_a_tiny_config():
    assert sorted(TINY) == ARCHITECTURES.names()
    assert SORTING == CHECKPOINTING == ["TVTS", "TVTSv2"]
    assert VIDEO_ENCODERS.names() == ["slowonly_resnet", "space_time_vit", "tubelet_vit", "videomae_vit"]
    assert TEXT_ENCODERS.names() == ["clip", "huggingface"] and HEADS.names() == ["clip_order", "pairwise_sort",
                                                                                "segment_sort", "sort_transformer"]


@pytest.mark.parametrize("arch", sorted(TINY))
def test_forward_backward_reach_every_trainable_parameter(arch):
    args, batch = TINY[arch]
    torch.manual_seed(0)
    model = build_model({"type": arch, "args": args()})
    sum(out.sum() for out in outputs(model(batch())) if out.requires_grad).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing
    assert model.tokenizer in ("huggingface", "clip") and model.masking in ("per_slot", "tube", "videomae_tube",
                                                                            "none")


@pytest.mark.parametrize("head", HEADS.names())
@pytest.mark.parametrize("arch", SORTING)
def test_every_sort_head_fits_every_architecture(arch, head):
    """Each head trains through the sort modelling that reads it; a head that sorts video segments builds only on
    an architecture that encodes them."""
    args, batch = TINY[arch]
    torch.manual_seed(0)
    config = {"type": arch, "args": {**args(), "sort_params": {**args().get("sort_params", {}), "head": head}}}
    if getattr(HEADS.get(head), "sorts_video_segments", False) and arch != "TVTS":
        with pytest.raises(ValueError, match="sorts video segments"):
            build_model(config)
        return
    model = build_model(config)
    data = batch()
    _, video, logits = model(data)
    modelling = next(name for name, (_, _, heads) in SORT_MODELLINGS.items() if head in heads)
    positions = TVTSLoss(sort_modelling=modelling).sort_positions(logits)
    assert positions.shape == (video.shape[0], model.n_trans)
    TVTSLoss(sort_modelling=modelling)(video, video, logits)["sort"].backward()
    assert all(p.grad is not None for p in model.pred_model.parameters())


@pytest.mark.parametrize("arch", CHECKPOINTING)
def test_activation_checkpointing_changes_nothing(arch):
    args, batch = TINY[arch]
    outputs, grads = [], []
    for ckpt in (False, True):
        torch.manual_seed(0)
        model = build_model({"type": arch, "args": {**args(), "grad_checkpointing": ckpt}}).train()
        out = model(batch())
        sum(o.sum() for o in out).backward()
        outputs.append(out)
        grads.append({n: p.grad for n, p in model.named_parameters() if p.grad is not None})
    for a, b in zip(*outputs):
        torch.testing.assert_close(a, b)
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], msg=name)


@pytest.mark.parametrize("arch", sorted(TINY))
def test_checkpoint_round_trip_and_architecture_only_build(arch, tmp_path):
    args, batch = TINY[arch]
    torch.manual_seed(0)
    model = build_model({"type": arch, "args": args()}).eval()
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in model.state_dict().items()}}, path)
    cls = ARCHITECTURES.get(arch)
    clone = build_model({"type": arch, "args": cls.architecture_only({**args(), "load_checkpoint": str(path)})})
    assert load_checkpoint(clone.eval(), path)["absent"] == {}
    with torch.no_grad():
        for a, b in zip(outputs(model(batch())), outputs(clone(batch()))):
            torch.testing.assert_close(a, b)
    assert cls.weight_files({**args(), "load_checkpoint": str(path)})[0][:2] == ("arch.args.load_checkpoint",
                                                                                str(path))


@pytest.mark.parametrize("arch", sorted(TINY))
def test_unknown_arguments_are_named(arch):
    args, _ = TINY[arch]
    bad = args()
    bad["video_params"] = {**(bad.get("video_params") or {}), "no_such_key": 1}
    with pytest.raises(ValueError, match="video_params.*no_such_key"):
        ARCHITECTURES.get(arch).check_args(**bad)
    if arch in SORTING:
        bad = args()
        bad["sort_params"] = {**(bad.get("sort_params") or {}), "width": 64}
        with pytest.raises(ValueError, match="sort_params.*width"):
            ARCHITECTURES.get(arch).check_args(**bad)
    with pytest.raises(ValueError, match="unknown architecture.*known"):
        build_model({"type": "NoSuchModel", "args": {}})


def test_every_task_drives_a_registered_objective():
    assert TASKS.names() and set(TASKS.names()) <= set(OBJECTIVES.names())
