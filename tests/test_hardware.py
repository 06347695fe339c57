"""The machine description benchmarks record, and the warning for bf16 on a CPU that emulates it."""
import logging

import pytest

from utils import amp, hardware

XEON = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Gold 6430\nflags\t\t: fpu sse avx2 avx512f amx_bf16 avx512_bf16\n"
EPYC = "processor\t: 0\nmodel name\t: AMD EPYC 7B12\nflags\t\t: fpu sse avx2 fma\n"
ARM = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\nCPU part\t: 0xd4f\n"


def test_cpu_model_and_native_bf16_from_cpuinfo():
    assert hardware.cpu_model(XEON) == "Intel(R) Xeon(R) Gold 6430" and hardware.cpu_native_bf16(XEON) is True
    assert hardware.cpu_model(EPYC) == "AMD EPYC 7B12" and hardware.cpu_native_bf16(EPYC) is False
    assert hardware.cpu_native_bf16(ARM) is True
    assert hardware.cpu_native_bf16("") is None  # unknown: no warning either way


@pytest.mark.parametrize("native,warned", [(False, True), (True, False), (None, False)])
def test_bf16_on_an_emulating_cpu_warns_once(monkeypatch, caplog, native, warned):
    monkeypatch.setattr(amp, "cpu_native_bf16", lambda: native)
    amp._warn_emulated_bf16.cache_clear()
    with caplog.at_level(logging.WARNING, logger="utils.amp"):
        for _ in range(2):
            amp.autocast_dtype("bf16", "cpu")
        amp.autocast_dtype("fp32", "cpu")
    messages = [r.getMessage() for r in caplog.records if "emulates" in r.getMessage()]
    assert len(messages) == (1 if warned else 0)
    amp._warn_emulated_bf16.cache_clear()
