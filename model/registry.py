"""The model package's registries. Each module registers what it defines; `arch.type` picks an architecture, and an
architecture picks its towers and head from these tables by name."""
from utils.registry import Registry

ARCHITECTURES = Registry("architecture (arch.type)")
VIDEO_ENCODERS = Registry("video encoder")
TEXT_ENCODERS = Registry("text encoder")
HEADS = Registry("head")


def build_model(arch_config):
    """The network of a config's `arch` entry: `{"type": <architecture>, "args": {...}}`."""
    if not isinstance(arch_config, dict) or "type" not in arch_config:
        raise ValueError(f"an arch config is {{'type': ..., 'args': {{...}}}}, got {arch_config!r}")
    return ARCHITECTURES.build(arch_config["type"], **(arch_config.get("args") or {}))
