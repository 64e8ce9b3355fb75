"""Arithmetic of the network's convolutions: float32, or bfloat16 where the hardware computes it natively.

Only the network's layers change precision (``torch.autocast``): the per-tile scale, the normalised physics
channels and the residual sum ``baseline + correction`` stay float32 (autocast leaves element-wise arithmetic
alone and the float32 baseline promotes the bfloat16 correction), so bfloat16's 8-bit mantissa touches the
correction only, never the baseline it multiplies. Measured on the demo torso with the bundled Ga-68 model
(``python benchmarks/bench_deepdose_precision.py``, two threads of an AVX-512-BF16 CPU): the default method's output
moves by 0.008 % at the median and 0.036 % at the 99th percentile of the voxels above 10 % of the maximum, and it
takes 0.61× the float32 time (one network pass 0.71×).

``auto`` (the method's default) picks bfloat16 on a CPU that says it has native bfloat16 instructions
(``avx512_bf16`` or ``amx_bf16`` in ``/proc/cpuinfo``); elsewhere float32, as bfloat16 would be converted in
software there and its speed has not been measured. On CUDA ``auto`` stays float32: bfloat16 there has not been
measured (no GPU in the release session); ``bfloat16`` asks for it explicitly.
"""
from __future__ import annotations

import contextlib
from functools import lru_cache

from ..deepdose_rule import PRECISIONS

#: CPU flags (Linux ``/proc/cpuinfo``) of native bfloat16 dot products
NATIVE_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpuinfo_lists_native_bf16(cpuinfo: str) -> bool:
    """True when the first ``flags`` line of a Linux ``/proc/cpuinfo`` text names a native bfloat16 instruction
    set (:data:`NATIVE_BF16_CPU_FLAGS`)."""
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[-1].split())
            return any(flag in flags for flag in NATIVE_BF16_CPU_FLAGS)
    return False


@lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True when this CPU lists a native bfloat16 instruction set (Linux; False where it cannot be told)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            return cpuinfo_lists_native_bf16(f.read())
    except OSError:
        return False


def resolve_precision(precision: str, device: str) -> str:
    """``"float32"`` or ``"bfloat16"`` for ``precision`` (one of :data:`PRECISIONS`) on ``device``."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision != "auto":
        return precision
    return "bfloat16" if not device.startswith("cuda") and cpu_has_native_bf16() else "float32"


def network_autocast(precision: str, device: str):
    """The context in which the network runs: bfloat16 autocast for ``"bfloat16"``, nothing for ``"float32"``
    (``precision`` as returned by :func:`resolve_precision`)."""
    if precision == "bfloat16":
        import torch

        return torch.autocast("cuda" if device.startswith("cuda") else "cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()
