"""CLIP weights from local files, without network and without running pickled code.

Accepted files: OpenAI's `ViT-B-32.pt` / `ViT-B-16.pt` (TorchScript archives), OpenCLIP checkpoints
(`open_clip_pytorch_model.bin` or `.safetensors`, or a `.pt` holding a state dict or `{"state_dict": ...}`). All
use the same key layout (`visual.*`, `transformer.*`, `token_embedding.weight`, `positional_embedding`,
`ln_final.*`, `text_projection`, `logit_scale`).

A TorchScript archive is a zip whose `data.pkl` pickles the module tree. It is read here with an unpickler that
resolves only tensor rebuilding, storages and `OrderedDict`; every TorchScript class becomes an inert record of its
attributes, and the archive's `code/` declarations (`__parameters__`, `__buffers__`) say which attributes are the
state dict (the same tensors as `torch.jit.load(path).state_dict()`, with no TorchScript runtime involved).
"""
import io
import logging
import os
import pickle
import re
import zipfile
from collections import OrderedDict

import torch

from .checkpoint import CheckpointError, check_state_dict, read_checkpoint, strip_prefix

log = logging.getLogger(__name__)

# keys of a CLIP file that a TVTSv2 network has no place for
UNUSED_CLIP_KEYS = ("logit_scale", "input_resolution", "context_length", "vocab_size")
# TVTSv2 tensors that CLIP does not provide (they keep their initialisation)
NEW_TVTSV2_KEYS = re.compile(r"^(video_model\.temporal_embedding$|video_model\..*\.(timeattn|ln_3)\.|pred_model\.)")
_STORAGE_DTYPES = {
    "HalfStorage": torch.float16, "FloatStorage": torch.float32, "DoubleStorage": torch.float64,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
}


class _ScriptObject:
    """An inert record of one pickled TorchScript object: its class name and attribute dict."""

    qualname = "?"

    def __setstate__(self, state):
        self.state = state


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    return torch.as_strided(storage, tuple(size), tuple(stride), offset)


def _identity(value, *_):
    return value


_SAFE_CALLABLES = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("collections", "OrderedDict"): OrderedDict,
    ("torch.jit._pickle", "restore_type_tag"): _identity,
    ("torch.jit._pickle", "build_intlist"): _identity,
    ("torch.jit._pickle", "build_doublelist"): _identity,
    ("torch.jit._pickle", "build_boollist"): _identity,
    ("torch.jit._pickle", "build_tensorlist"): _identity,
}


class _ArchiveUnpickler(pickle.Unpickler):
    def __init__(self, data, archive, prefix, path):
        super().__init__(io.BytesIO(data))
        self.archive, self.prefix, self.path = archive, prefix, path

    def find_class(self, module, name):
        if (module, name) in _SAFE_CALLABLES:
            return _SAFE_CALLABLES[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        if module == "__torch__" or module.startswith("__torch__."):
            return type(name, (_ScriptObject,), {"qualname": f"{module}.{name}"})
        raise CheckpointError(f"{self.path}: the TorchScript archive references {module}.{name}, which is not "
                              "tensor data; refusing to load it")

    def persistent_load(self, pid):
        kind, dtype, key, _location, numel = pid
        if kind != "storage" or not isinstance(dtype, torch.dtype):
            raise CheckpointError(f"{self.path}: unexpected persistent record {pid!r}")
        raw = self.archive.read(f"{self.prefix}/data/{key}")
        if not raw:
            return torch.empty(0, dtype=dtype)
        return torch.frombuffer(bytearray(raw), dtype=dtype)[:numel]


def _declared_state(archive, prefix):
    """{TorchScript class name: names of its parameters and buffers}, from the archive's `code/` files."""
    declared = {}
    code = f"{prefix}/code/"
    for member in archive.namelist():
        if not (member.startswith(code) and member.endswith(".py")):
            continue
        module = member[len(code):-3].replace("/", ".")
        text = archive.read(member).decode("utf-8")
        for block in re.split(r"^class ", text, flags=re.M)[1:]:
            name = block.split("(", 1)[0].strip()
            names = []
            for field in ("__parameters__", "__buffers__"):
                found = re.search(rf"{field} = \[([^\]]*)\]", block)
                if found:
                    names += re.findall(r'"([^"]+)"', found.group(1))
            declared[f"{module}.{name}"] = set(names)
    return declared


def is_torchscript_archive(path):
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(n.endswith("/constants.pkl") or n.split("/", 1)[-1].startswith("code/")
                   for n in archive.namelist())


def read_torchscript_state_dict(path):
    """The parameters and buffers of a TorchScript module archive, as a flat state dict (read-only parsing)."""
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise CheckpointError(f"{path}: not a TorchScript module archive (found {pickles or 'no'} data.pkl)")
        prefix = pickles[0].split("/", 1)[0]
        declared = _declared_state(archive, prefix)
        root = _ArchiveUnpickler(archive.read(pickles[0]), archive, prefix, path).load()
    state = OrderedDict()
    stack = [("", root)]
    while stack:
        prefix, obj = stack.pop()
        if obj.qualname not in declared:
            raise CheckpointError(f"{path}: no declaration of the TorchScript class {obj.qualname} in the archive")
        own = declared[obj.qualname]
        for key, value in obj.state.items():
            if isinstance(value, _ScriptObject):
                stack.append((f"{prefix}{key}.", value))
            elif key in own and isinstance(value, torch.Tensor):
                state[f"{prefix}{key}"] = value
    return state


def read_clip_state_dict(path):
    """A CLIP state dict (OpenAI or OpenCLIP layout) from any of the accepted file kinds."""
    if not os.path.isfile(path):
        raise CheckpointError(f"CLIP weights not found: {path}")
    if str(path).endswith(".safetensors"):
        from safetensors.torch import load_file
        return load_file(path)
    if is_torchscript_archive(path):
        return read_torchscript_state_dict(path)
    ckpt = read_checkpoint(path)
    if isinstance(ckpt, dict) and "state_dict" in ckpt:
        ckpt = ckpt["state_dict"]
    if not isinstance(ckpt, dict) or not all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        raise CheckpointError(f"{path} holds neither a CLIP state dict nor a TorchScript CLIP archive")
    return strip_prefix(dict(ckpt))


def clip_to_tvtsv2_keys(state):
    """Rename a CLIP state dict to TVTSv2's names: `visual.` -> `video_model.` (attention `in_proj_` -> `qkv.`,
    `out_proj` -> `proj`), `transformer.` -> `text_model.`, the text embeddings, norm and projection -> `text_*`.
    Returns (renamed, unused keys)."""
    text = {"token_embedding.weight": "text_token_embedding.weight",
            "positional_embedding": "text_positional_embedding", "ln_final.weight": "text_ln_final.weight",
            "ln_final.bias": "text_ln_final.bias", "text_projection": "text_projection"}
    renamed, unused = {}, []
    for key, value in state.items():
        if key.startswith("visual."):
            new = "video_model." + key[len("visual."):]
            new = new.replace("in_proj_", "qkv.").replace("out_proj", "proj")
        elif key.startswith("transformer."):
            new = "text_model." + key[len("transformer."):]
        elif key in text:
            new = text[key]
        elif key in UNUSED_CLIP_KEYS:
            unused.append(key)
            continue
        else:
            new = key  # reported as unexpected by the strict check
        renamed[new] = value
    return renamed, unused


def load_clip_weights(net, path):
    """Initialise every TVTSv2 tensor that CLIP provides from the CLIP file at `path`, strictly: a CLIP tensor
    missing, misshapen or left over is an error naming it. Returns a report."""
    state, unused = clip_to_tvtsv2_keys(read_clip_state_dict(path))
    expected = {k: v for k, v in net.state_dict().items() if not NEW_TVTSV2_KEYS.match(k)}
    check_state_dict(expected, state, f"CLIP weights {path}")
    with torch.no_grad():
        for key, target in net.state_dict().items():
            if key in state:
                target.copy_(state[key])
    new = len(net.state_dict()) - len(expected)
    log.info("initialised %d tensors from CLIP weights %s (as float32); %d new ones keep their initialisation "
             "(temporal embedding, temporal attention and ln_3 of every block, sort head); not used: %s",
             len(expected), path, new, ", ".join(unused) or "nothing")
    return {"clip_checkpoint": str(path), "loaded": len(expected), "new": new, "unused": unused}
