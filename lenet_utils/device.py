"""What trains the models: the CPU or GPU, and the number formats it computes fast.

:func:`device_name` names the device for the run record;
:func:`resolve_precision` decides what ``precision="auto"`` means on this
machine, and :func:`dtype_policy` builds a model in that precision.
"""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Iterator
from pathlib import Path

import keras
import tensorflow as tf

from lenet_utils.errors import LenetError

PRECISIONS = ("float32", "mixed_bfloat16", "auto")
# CPU flags under which bfloat16 trains LeNet faster than float32: AMX tiles.
# AVX-512 BF16 alone is not enough: on a Xeon that exposes avx512_bf16 but
# not AMX, the starting recipe trained at 2,106 images/s in bfloat16 against
# 3,122 in float32 (appendix 10); with AMX, the fast recipe ran at ~8,500.
BFLOAT16_CPU_FLAGS = ("amx_bf16",)
# NVIDIA GPUs compute bfloat16 in their tensor cores from Ampere (8.0) on.
BFLOAT16_GPU_CAPABILITY = (8, 0)
CPUINFO = Path("/proc/cpuinfo")


def gpus() -> list[dict[str, object]]:
    """TensorFlow's details of every visible GPU (empty on a CPU-only machine).

    Examples
    --------
    >>> isinstance(gpus(), list)
    True
    """
    return [tf.config.experimental.get_device_details(gpu)
            for gpu in tf.config.list_physical_devices("GPU")]


def cpu_name(cpuinfo: str | Path = CPUINFO) -> str:
    """The CPU's model name and core count, from Linux's ``/proc/cpuinfo``.

    Examples
    --------
    >>> cpu_name().startswith("CPU: ")
    True
    """
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return f"CPU: {platform.processor() or platform.machine()}"
    names = [line.split(":", 1)[1].strip() for line in text.splitlines()
             if line.startswith("model name")]
    return f"CPU: {names[0] if names else platform.machine()}, {os.cpu_count()} cores"


def device_name() -> str:
    """The GPU TensorFlow trains on, or else the CPU's model name.

    Examples
    --------
    >>> isinstance(device_name(), str)
    True
    """
    for details in gpus():
        return f"GPU: {details.get('device_name', 'unnamed')}"
    return cpu_name()


def cpu_flags(cpuinfo: str | Path = CPUINFO) -> set[str]:
    """The CPU's feature flags, from Linux's ``/proc/cpuinfo`` (empty elsewhere).

    Examples
    --------
    >>> isinstance(cpu_flags(), set)
    True
    """
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return set()
    return {flag for line in text.splitlines() if line.startswith("flags")
            for flag in line.split(":", 1)[1].split()}


def cpu_has_native_bfloat16(cpuinfo: str | Path = CPUINFO) -> bool:
    """Whether the CPU computes bfloat16 faster than float32 (it has AMX).

    Reads the Linux CPU flags; elsewhere, or when unreadable, says False.

    Examples
    --------
    >>> isinstance(cpu_has_native_bfloat16(), bool)
    True
    """
    return any(flag in cpu_flags(cpuinfo) for flag in BFLOAT16_CPU_FLAGS)


def has_native_bfloat16() -> bool:
    """Whether the device that trains computes bfloat16 natively.

    On a GPU: an NVIDIA GPU of compute capability 8.0 or more (A100, L4,
    H100; not the T4 of Colab's free tier). Without a GPU: a CPU with AMX.

    Examples
    --------
    >>> isinstance(has_native_bfloat16(), bool)
    True
    """
    found = gpus()
    if found:
        capability = found[0].get("compute_capability") or (0, 0)
        return tuple(capability) >= BFLOAT16_GPU_CAPABILITY
    return cpu_has_native_bfloat16()


def resolve_precision(precision: str) -> str:
    """``precision``, with ``"auto"`` decided for this machine.

    Parameters
    ----------
    precision : {"float32", "mixed_bfloat16", "auto"}
        ``"auto"`` is ``"mixed_bfloat16"`` where the device computes bfloat16
        faster than float32 (:func:`has_native_bfloat16`) and ``"float32"``
        elsewhere.

    Returns
    -------
    str
        ``"float32"`` or ``"mixed_bfloat16"``.

    Raises
    ------
    LenetError
        If ``precision`` is not one of :data:`PRECISIONS`.

    Examples
    --------
    >>> resolve_precision("float32")
    'float32'
    """
    if precision not in PRECISIONS:
        raise LenetError(f"precision={precision!r} is unknown; choose one of "
                         f"{', '.join(PRECISIONS)}.")
    if precision != "auto":
        return precision
    return "mixed_bfloat16" if has_native_bfloat16() else "float32"


@contextlib.contextmanager
def dtype_policy(name: str) -> Iterator[None]:
    """Build layers under a Keras dtype policy, then restore the previous one.

    Layers keep the policy they were built with, so a model built inside
    trains and predicts in that policy after the block ends.

    Examples
    --------
    >>> with dtype_policy("mixed_bfloat16"):
    ...     model = build_lenet()  # doctest: +SKIP
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
