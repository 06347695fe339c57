"""Checkpoint reading and strict weight loading: official TVTS/TVTSv2 files, our own files, and ImageMAE weights.

Official TVTS checkpoints pickle the trainer's `parse_config_dist_multi.ConfigParser` object next to the
weights. We read every file with `torch.load(weights_only=True)`: besides tensors and containers, only the
names in `INERT_PICKLE_CLASSES` are accepted, and they are rebuilt as inert records (their pickled state is
kept as data, none of their code exists or runs). Anything else in a pickle is refused.
"""
import logging

import os

import torch

log = logging.getLogger(__name__)

# Classes found in official checkpoints (the config object and what it holds) or in older numpy pickles.
INERT_PICKLE_CLASSES = (
    "parse_config_dist_multi.ConfigParser",
    "argparse.Namespace",
    "pathlib.PosixPath", "pathlib.WindowsPath", "pathlib._local.PosixPath", "pathlib._local.WindowsPath",
    "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar", "numpy.dtype",
)


class InertPickledObject:
    """Stands in for a pickled object whose class is not imported: records its arguments and state only."""

    pickled_name = "?"
    args = ()  # set when the pickle calls the class (REDUCE); NEWOBJ only calls __new__
    state = None  # set by the pickle's BUILD

    def __init__(self, *args):
        self.args = args

    def __setstate__(self, state):
        self.state = state

    def __repr__(self):
        return f"<inert {self.pickled_name}>"


_INERT_CLASSES = [(type(name.rsplit(".", 1)[1], (InertPickledObject,), {"pickled_name": name}), name)
                  for name in INERT_PICKLE_CLASSES]


class CheckpointError(RuntimeError):
    """A checkpoint file cannot be read, or its tensors do not fit the model."""


def _not_a_checkpoint(path):
    """Why `path` cannot be a PyTorch checkpoint (neither a zip archive nor a pickle), or None."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head.startswith(b"PK") or head[:1] == b"\x80":
        return None
    if not head:
        return "it is empty"
    if head.lstrip()[:1] in (b"{", b"["):
        return "it looks like a JSON file (a config?)"
    return f"it starts with {head!r}, not a zip archive or a pickle"


def read_checkpoint(path, map_location="cpu"):
    """Load a checkpoint file without executing pickled code; errors name the file and what was refused."""
    if os.path.isfile(path):
        why = _not_a_checkpoint(path)
        if why:
            raise CheckpointError(f"{path} is not a PyTorch checkpoint: {why}")
    try:
        with torch.serialization.safe_globals(_INERT_CLASSES):
            return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint file not found: {path}") from None
    except Exception as e:  # torch raises UnpicklingError, RuntimeError or others for bad files
        raise CheckpointError(f"cannot read checkpoint {path}: {e}") from e


def inert_objects(obj):
    """Names of the inert stand-ins found anywhere in a loaded checkpoint (what was not reconstructed)."""
    found = set()
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, InertPickledObject):
            found.add(item.pickled_name)
            stack.extend([item.args, item.state])
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return sorted(found)


def strip_prefix(state_dict, prefix="module."):
    """Remove `prefix` from every key that carries it (DDP-wrapped checkpoints)."""
    return {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in state_dict.items()}


def check_state_dict(expected, given, source):
    """Raise CheckpointError naming every missing, unexpected and wrongly shaped key.

    `expected` and `given` map keys to tensors (or shapes); `source` names the file in the message.
    """
    def shape(v):
        return tuple(v.shape) if hasattr(v, "shape") else tuple(v)

    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    wrong = [f"{k}: expected {shape(expected[k])}, file has {shape(given[k])}"
             for k in expected if k in given and shape(expected[k]) != shape(given[k])]
    if missing or unexpected or wrong:
        parts = [f"{source} does not match the model"]
        for title, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
            if items:
                parts.append(f"{len(items)} {title}: " + ", ".join(items[:20]) + (" ..." if len(items) > 20 else ""))
        raise CheckpointError("\n  ".join(parts))


def load_state_dict_strict(module, state_dict, source):
    """Load every tensor of `module` from `state_dict`, with a readable error for any mismatch."""
    check_state_dict(module.state_dict(), state_dict, source)
    module.load_state_dict(state_dict, strict=True)


def model_state_from_checkpoint(ckpt, path):
    """The `state_dict` of a checkpoint dict with any `module.` prefix removed; logs what else the file held."""
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        keys = list(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{path} has no 'state_dict' entry (found {keys})")
    ignored = sorted(k for k in ckpt if k != "state_dict")
    if ignored:
        log.info("%s: using 'state_dict'; not used here: %s", path, ", ".join(ignored))
    inert = inert_objects(ckpt)
    if inert:
        log.info("%s: pickled objects kept as inert records, never executed: %s", path, ", ".join(inert))
    return strip_prefix(ckpt["state_dict"])


def load_checkpoint(net, path):
    """Strictly load a checkpoint of `net`'s method, ours or the official release, into `net`; returns a report.

    Every tensor of `net` must be in the file with its shape and the file may hold nothing else, with one
    exception: a part named in `net.optional_checkpoint_prefixes` may be absent as a whole (released TVTSv2
    files carry no sort head); it keeps its initialisation and the report says so. Keys named in
    `net.ignored_checkpoint_keys` (CPD's memory banks) are training state, left out with a log line.
    """
    state = model_state_from_checkpoint(read_checkpoint(path), path)
    ignored = sorted(k for k in state if k in getattr(net, "ignored_checkpoint_keys", ()))
    if ignored:
        log.info("%s: training state, not part of the network, left out: %s", path, ", ".join(ignored))
        state = {k: v for k, v in state.items() if k not in ignored}
    expected = net.state_dict()
    absent = {}
    for prefix in getattr(net, "optional_checkpoint_prefixes", ()):
        if not any(k.startswith(prefix) for k in state):
            absent[prefix.rstrip(".")] = sum(k.startswith(prefix) for k in expected)
            expected = {k: v for k, v in expected.items() if not k.startswith(prefix)}
    check_state_dict(expected, state, str(path))
    net.load_state_dict(state, strict=not absent)
    if absent:
        log.info("loaded all %d tensors of %s; not in the file, kept at their initialisation: %s", len(state), path,
                 ", ".join(f"{name} ({n} tensors)" for name, n in absent.items()))
    else:
        log.info("loaded all %d tensors of %s", len(state), path)
    return {"checkpoint": str(path), "loaded": len(state), "absent": absent}


MAE_INFLATIONS = ("repeat", "mean")


def load_mae_weights(video_model, path, inflation="repeat"):
    """Initialise the video encoder from an ImageMAE encoder file (`{'model': state_dict}`).

    The 2-D patch kernel (D, C, p, p) is repeated along time to (D, C, tubelet, p, p). The official code
    repeats without dividing (`inflation="repeat"`), doubling a static clip's patch response; `"mean"` divides
    by the tubelet size instead. Every encoder tensor except `temporal_embed` must come from the file and the
    file may hold nothing else (a full MAE checkpoint with a decoder is refused).
    """
    if inflation not in MAE_INFLATIONS:
        raise ValueError(f"mae inflation must be one of {MAE_INFLATIONS}, got {inflation!r}")
    ckpt = read_checkpoint(path)
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        keys = list(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"MAE file {path} has no 'model' entry (found {keys}); expected the format of "
                              "mae_pretrain_vit_base.pth")
    state = dict(ckpt["model"])
    kernel = state.get("patch_embed.proj.weight")
    if kernel is not None:
        if kernel.ndim != 4:
            raise CheckpointError(f"MAE file {path}: patch_embed.proj.weight should be a 2-D kernel "
                                  f"(D, C, p, p), got shape {tuple(kernel.shape)}")
        t = video_model.tubelet_size
        kernel = kernel.unsqueeze(2).repeat(1, 1, t, 1, 1)
        state["patch_embed.proj.weight"] = kernel / t if inflation == "mean" else kernel
    expected = {k: v for k, v in video_model.state_dict().items() if k != "temporal_embed"}
    source = f"MAE file {path}"
    if any(k.startswith("decoder") or k == "mask_token" for k in state):
        source += " (it holds MAE decoder tensors: use the encoder-only mae_pretrain_vit_base.pth)"
    check_state_dict(expected, state, source)
    video_model.load_state_dict(state, strict=False)
    log.info("video encoder initialised from ImageMAE weights %s (%d tensors, %s inflation)",
             path, len(expected), inflation)
