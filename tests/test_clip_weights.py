"""CLIP weights into TVTSv2: OpenAI TorchScript archives read without TorchScript or pickled code, OpenCLIP state
dicts, the key conversion, and strict reports."""
import os
import pickle
import warnings
import zipfile

import pytest
import torch
import torch.nn as nn

from conftest import tiny_v2_args
from model import TVTSv2
from model.checkpoint import CheckpointError
from model.clip_weights import read_clip_state_dict, read_torchscript_state_dict


def clip_layout(model):
    """The CLIP-file layout of a TVTSv2 state dict, renamed here by the rules of the official conversion read
    backwards: video_model -> visual (qkv. -> in_proj_, attention proj -> out_proj), text_model -> transformer,
    text_* -> CLIP's names; the new TVTSv2 tensors are left out and CLIP's extra entries added."""
    out = {}
    for key, value in model.state_dict().items():
        if key.startswith("pred_model.") or ".timeattn." in key or ".ln_3." in key or key.endswith("temporal_embedding"):
            continue
        if key.startswith("video_model."):
            key = "visual." + key[len("video_model."):]
            key = key.replace(".attn.qkv.", ".attn.in_proj_").replace(".attn.proj.", ".attn.out_proj.")
        elif key.startswith("text_model."):
            key = "transformer." + key[len("text_model."):]
        else:
            key = {"text_token_embedding.weight": "token_embedding.weight",
                   "text_positional_embedding": "positional_embedding", "text_ln_final.weight": "ln_final.weight",
                   "text_ln_final.bias": "ln_final.bias", "text_projection": "text_projection"}[key]
        out[key] = torch.randn_like(value)
    out.update(logit_scale=torch.tensor(4.6), input_resolution=torch.tensor(32), context_length=torch.tensor(16),
               vocab_size=torch.tensor(1000))
    return out


class Node(nn.Module):
    pass


class ScriptRoot(Node):
    def forward(self, x):
        return x * self.logit_scale


def write_torchscript_archive(state, path, dtype=torch.float16):
    """A TorchScript archive holding `state` as parameters (floats in `dtype`, as OpenAI ships them), plus a
    tensor attribute that is neither parameter nor buffer, as CLIP's `attn_mask`."""
    root = ScriptRoot()
    for key, value in state.items():
        *path_parts, leaf = key.split(".")
        node = root
        for part in path_parts:
            if not hasattr(node, part):
                node.add_module(part, Node())
            node = getattr(node, part)
        if value.is_floating_point():
            node.register_parameter(leaf, nn.Parameter(value.to(dtype), requires_grad=False))
        else:
            node.register_buffer(leaf, value)
    root.attn_mask = torch.ones(3, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(root), str(path))


def test_torchscript_reader_equals_jit_load(tmp_path):
    model = TVTSv2(**tiny_v2_args())
    path = tmp_path / "ViT-tiny.pt"
    write_torchscript_archive(clip_layout(model), path)
    ours = read_torchscript_state_dict(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = torch.jit.load(str(path), map_location="cpu").state_dict()
    assert set(ours) == set(reference) and "attn_mask" not in ours
    for key, value in reference.items():
        assert ours[key].dtype == value.dtype and torch.equal(ours[key], value), key


@pytest.mark.parametrize("kind", ["openai_pt", "open_clip_bin", "safetensors"])
def test_clip_files_initialise_every_clip_tensor_and_nothing_else(tmp_path, kind):
    torch.manual_seed(0)
    untouched = TVTSv2(**tiny_v2_args())
    state = clip_layout(untouched)
    if kind == "openai_pt":
        path = tmp_path / "clip.pt"
        write_torchscript_archive(state, path)
        expected = {k: v.half().float() for k, v in state.items()}
    elif kind == "open_clip_bin":
        path = tmp_path / "open_clip_pytorch_model.bin"
        torch.save(state, path)
        expected = state
    else:
        from safetensors.torch import save_file
        path = tmp_path / "open_clip_model.safetensors"
        save_file(state, str(path))
        expected = state
    torch.manual_seed(0)
    model = TVTSv2(**tiny_v2_args(clip_checkpoint=str(path)))
    sd, fresh = model.state_dict(), untouched.state_dict()
    assert sd["video_model.conv1.weight"].dtype == torch.float32
    torch.testing.assert_close(sd["video_model.transformer.resblocks.1.attn.qkv.weight"],
                               expected["visual.transformer.resblocks.1.attn.in_proj_weight"])
    torch.testing.assert_close(sd["video_model.transformer.resblocks.0.attn.proj.bias"],
                               expected["visual.transformer.resblocks.0.attn.out_proj.bias"])
    torch.testing.assert_close(sd["text_model.resblocks.2.attn.in_proj_weight"],
                               expected["transformer.resblocks.2.attn.in_proj_weight"])
    torch.testing.assert_close(sd["text_token_embedding.weight"], expected["token_embedding.weight"])
    torch.testing.assert_close(sd["text_projection"], expected["text_projection"])
    torch.testing.assert_close(sd["video_model.proj"], expected["visual.proj"])
    for key in ("video_model.temporal_embedding", "video_model.transformer.resblocks.1.timeattn.qkv.weight",
                "video_model.transformer.resblocks.0.ln_3.weight", "pred_model.head.weight"):
        assert torch.equal(sd[key], fresh[key]), key  # new tensors keep their initialisation
    assert sum(not torch.equal(sd[k], fresh[k]) for k in sd) == len(state) - 4  # every CLIP tensor was written


def test_missing_or_foreign_clip_tensors_are_named(tmp_path):
    model = TVTSv2(**tiny_v2_args())
    state = clip_layout(model)
    del state["visual.ln_post.weight"]
    state["visual.attnpool.positional_embedding"] = torch.zeros(3)
    torch.save(state, tmp_path / "bad.bin")
    with pytest.raises(CheckpointError) as err:
        TVTSv2(**tiny_v2_args(clip_checkpoint=str(tmp_path / "bad.bin")))
    assert "video_model.ln_post.weight" in str(err.value) and "attnpool" in str(err.value)
    with pytest.raises(CheckpointError, match="not found"):
        read_clip_state_dict(tmp_path / "nowhere.pt")


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_an_archive_with_pickled_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("evil/data.pkl", pickle.dumps(_Exploit(marker), protocol=2))
        archive.writestr("evil/constants.pkl", pickle.dumps(()))
        archive.writestr("evil/code/__torch__.py", "class M(Module):\n  __parameters__ = []\n")
    with pytest.raises(CheckpointError, match="posix.system|os.system"):
        read_clip_state_dict(path)
    assert not marker.exists()


class _Traced(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4), nn.Linear(4, 4))
        self.other = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))  # same classes again: mangled TorchScript names
        self.proj = nn.Parameter(torch.randn(4, 2).half())

    def forward(self, x):
        return (self.other(self.blocks(x)) @ self.proj.float()).sum(-1)


def test_traced_archives_with_mangled_class_names_read_the_same(tmp_path):
    path = tmp_path / "traced.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(_Traced(), torch.randn(2, 4)), str(path))
        reference = torch.jit.load(str(path), map_location="cpu").state_dict()
    ours = read_torchscript_state_dict(path)
    assert set(ours) == set(reference) and len(ours) == 11
    assert all(torch.equal(ours[k], v) and ours[k].dtype == v.dtype for k, v in reference.items())
