"""What machine this is: the CPU model every benchmark row records, and whether the CPU computes bf16 natively
(without it, PyTorch emulates bf16 on the CPU, far slower than fp32)."""
import functools
import os
import platform

BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")  # x86 flags; "bf16" is the Arm feature name


@functools.lru_cache(maxsize=None)
def _cpuinfo(path="/proc/cpuinfo"):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _field(names, text):
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in names and value.strip():
            return value.strip()
    return None


def cpu_model(text=None):
    """The CPU's model name (/proc/cpuinfo), else what `platform` knows."""
    text = _cpuinfo() if text is None else text
    return _field(("model name", "Model", "Hardware"), text) or platform.processor() or platform.machine()


def cpu_native_bf16(text=None):
    """True or False from the CPU's feature flags, None when they cannot be read (not Linux)."""
    flags = _field(("flags", "Features"), _cpuinfo() if text is None else text)
    return None if flags is None else bool(set(flags.split()) & set(BF16_CPU_FLAGS))


def describe_cpu():
    return f"{cpu_model()}, {os.cpu_count()} CPU cores"
