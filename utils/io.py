"""Atomic file writes: a crash or a full disk never leaves a half-written checkpoint, cache or report behind."""
import contextlib
import json
import os
import secrets

import torch


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yield a temporary name beside `path`; when the block succeeds it replaces `path`, otherwise it is removed.

    `suffix` ends the temporary name (a video writer picks its container from it)."""
    path = os.fspath(path)
    tmp = f"{path}.{os.getpid()}.{secrets.token_hex(4)}.tmp{suffix}"
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_torch(obj, path):
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def write_json(path, obj, indent=2):
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=indent)
