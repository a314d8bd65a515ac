"""What this machine computes on, and what its CPU can do that changes how to train on it (no Keras import)."""

from __future__ import annotations

import functools
import os
from pathlib import Path

BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo names of the instructions bf16 training needs.


@functools.cache
def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_bf16_units(cpuinfo: str | None = None) -> list[str]:
    """The bfloat16 instruction sets this CPU has (empty: `mixed_bfloat16` will be slow, not fast)."""
    flags = set((_cpuinfo() if cpuinfo is None else cpuinfo).split())
    return [flag for flag in BF16_FLAGS if flag in flags]


def mixed_bfloat16_advice(cpuinfo: str | None = None) -> str:
    """What the mixed_bfloat16 dtype policy will do on this CPU, from the measurements in docs/benchmarks.md."""
    units = cpu_bf16_units(cpuinfo)
    if not units:
        return ("mixed_bfloat16 computes in bfloat16 with float32 weights. This CPU has no bf16 units, so it "
                "would be far slower than float32: keep float32.")
    return (f"mixed_bfloat16 computes in bfloat16 with float32 weights. This CPU has bf16 units "
            f"({', '.join(units)}): on such a CPU it trained the seed CNN 2.5× faster than float32, but "
            "vgg40 slightly slower (docs/benchmarks.md; `bench/bench_backends.py` measures yours).")


def cpu_name(cpuinfo: str | None = None) -> str:
    """The CPU's model name and core count, e.g. 'Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz, 2 cores'."""
    for line in (_cpuinfo() if cpuinfo is None else cpuinfo).splitlines():
        if line.startswith("model name") and ":" in line:
            return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    return f"CPU, {os.cpu_count()} cores"


def training_device(backend: str) -> str:
    """What Keras's `backend` computes on here: the first GPU's name, else the CPU's (cpu_name)."""
    try:
        if backend == "jax":
            import jax

            device = jax.devices()[0]
            if device.platform != "cpu":
                return device.device_kind
        elif backend == "torch":
            import torch

            if torch.cuda.is_available():
                return torch.cuda.get_device_name(0)
        elif backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            if gpus:
                return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
    except Exception:  # A backend that cannot say: the CPU is what is left.
        pass
    return cpu_name()
