"""JSON configs: loading with errors that name the file, and dotted command-line overrides."""
import json
import os


def load_config(path, base=None):
    """Read a JSON config; a missing file or bad JSON is an error naming the file (and line).

    A config may name a `base` config (a path relative to its own folder, or `base` given here instead): it is the
    base with this file's values merged in (objects key by key, everything else replaced). Ablation rows are such
    small differences from a recipe (configs/ablations/).
    """
    try:
        with open(path) as f:
            config = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"config file not found: {path}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"config {path} is not valid JSON: {e}") from None
    if not isinstance(config, dict) or not (base or "base" in config):
        return config
    named = config.pop("base", None)
    base = base or os.path.join(os.path.dirname(os.path.abspath(path)), named)
    return merge(load_config(base), config)


def merge(base, changes):
    """`base` with `changes` merged in: nested objects key by key, any other value replaced."""
    out = dict(base)
    for key, value in changes.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def apply_overrides(config, overrides):
    """Apply `key.sub=value` strings in place. Values parse as JSON when they can (numbers, true, lists, ...),
    otherwise stay strings. The key must already exist, so a typo is an error, not a silent new setting."""
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like key.sub=value")
        dotted, raw = item.split("=", 1)
        node, keys = config, dotted.split(".")
        for i, key in enumerate(keys):
            if isinstance(node, list) and key.isdigit() and int(key) < len(node):
                key = int(key)
            elif not isinstance(node, dict) or key not in node:
                raise KeyError(f"override {dotted!r}: no key {'.'.join(keys[:i + 1])!r} in the config")
            if i == len(keys) - 1:
                try:
                    node[key] = json.loads(raw)
                except json.JSONDecodeError:
                    node[key] = raw
            else:
                node = node[key]
    return config


class ConfigError(ValueError):
    """A config value is unknown, of the wrong type, or points at a missing file."""


def fill_defaults(config, defaults, source, path=""):
    """Return `config` completed with `defaults`, checking every key against them: unknown keys and values of
    the wrong type are ConfigErrors naming the key and `source`. A default of None accepts anything; a dict
    default is checked recursively; ints are accepted where floats are expected."""
    if not isinstance(config, dict):
        raise ConfigError(f"{source}: {path or 'the config'} must be an object, got {type(config).__name__}")
    unknown = sorted(set(config) - set(defaults))
    if unknown:
        names = ", ".join(f"{path}{k}" for k in unknown)
        raise ConfigError(f"{source}: unknown key(s) {names}; allowed here: {sorted(defaults)}")
    out = {}
    for key, default in defaults.items():
        value = config.get(key, default)
        where = f"{path}{key}"
        if isinstance(default, dict) and default:
            out[key] = fill_defaults(value, default, source, where + ".")
            continue
        if default is not None and not _same_type(value, default):
            raise ConfigError(f"{source}: {where} must be {type(default).__name__}, got {value!r}")
        out[key] = value
    return out


def _same_type(value, default):
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))
