"""JSON configs: loading with errors that name the file, and dotted command-line overrides."""
import json


def load_config(path):
    """Read a JSON config; a missing file or bad JSON is an error naming the file (and line)."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"config file not found: {path}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"config {path} is not valid JSON: {e}") from None


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
