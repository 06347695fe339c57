"""Helpers shared by every package: config loading and overrides."""
from .config import apply_overrides, load_config

__all__ = ["load_config", "apply_overrides"]
