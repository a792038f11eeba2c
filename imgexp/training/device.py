"""What the hardware offers a run: `trainer.precision=auto` and `trainer.jit_compile=null` resolved.

bfloat16 pays where the hardware multiplies it natively: CPUs whose oneDNN
uses AMX or AVX512-BF16 (measured here: the tutorial CNN trains ~3x faster),
and GPUs of compute capability 8.0 (Ampere) or newer. Older GPUs with tensor
cores (7.x) get mixed_float16, for which Keras wraps the optimizer in a
LossScaleOptimizer. Everything else trains in float32. XLA stays off on a CPU
(3x slower for the CNN here); on a GPU Keras decides ("auto").

The facts are gathered once per process; `resolve_*` take them as plain values
so they are tested without the hardware.
"""

import dataclasses
import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from imgexp.config import Precision, TrainerConfig

log = logging.getLogger(__name__)

BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo names


@dataclass(frozen=True)
class DeviceFacts:
    cpu_flags: frozenset[str] = frozenset()
    onednn: bool = True  # TensorFlow's oneDNN kernels are on (TF_ENABLE_ONEDNN_OPTS is not 0)
    gpu_capabilities: tuple[tuple[int, int], ...] = ()  # CUDA compute capability of each visible GPU


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU's feature flags (Linux); empty where /proc/cpuinfo does not say."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


@functools.cache
def device_facts() -> DeviceFacts:
    """This process's devices (imports TensorFlow, so only once a run starts)."""
    from imgexp.tensorflow_runtime import import_tensorflow

    tf = import_tensorflow()
    capabilities = []
    for gpu in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        capabilities.append(tuple(capability) if capability else (0, 0))
    return DeviceFacts(cpu_flags(), os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1").strip() != "0",
                       tuple(capabilities))


def resolve_precision(requested: str, facts: DeviceFacts) -> tuple[str, str]:
    """(Keras dtype policy, why): `auto` picks by device; any other value is kept as set."""
    if requested != "auto":
        return requested, "set by trainer.precision"
    if facts.gpu_capabilities:
        oldest = min(facts.gpu_capabilities)
        where = f"GPU compute capability {oldest[0]}.{oldest[1]}"
        if oldest >= (8, 0):
            return "mixed_bfloat16", f"{where} computes bfloat16 natively"
        if oldest >= (7, 0):
            return "mixed_float16", f"{where} has float16 tensor cores but no bfloat16 (loss scaling on)"
        return "float32", f"{where} has no fast half precision"
    native = [flag for flag in BF16_CPU_FLAGS if flag in facts.cpu_flags]
    if native and facts.onednn:
        return "mixed_bfloat16", f"this CPU has {', '.join(native)} and TensorFlow's oneDNN uses it"
    if native:
        return "float32", "TF_ENABLE_ONEDNN_OPTS=0 turns off the oneDNN kernels that use this CPU's bfloat16 units"
    return "float32", "this CPU has no bfloat16 units (amx_bf16 / avx512_bf16)"


def resolve_jit_compile(requested: bool | None, facts: DeviceFacts) -> bool | str:
    """`model.compile(jit_compile=...)`: as set, else off on a CPU and Keras' own choice on a GPU."""
    if requested is not None:
        return requested
    return "auto" if facts.gpu_capabilities else False


def resolve_trainer(trainer: TrainerConfig) -> TrainerConfig:
    """The trainer config as this device runs it: `precision` and `jit_compile` never auto or null."""
    facts = device_facts()
    precision, why = resolve_precision(trainer.precision.value, facts)
    jit_compile = resolve_jit_compile(trainer.jit_compile, facts)
    log_once(f"precision {precision} ({why}); XLA jit_compile={jit_compile}")
    return dataclasses.replace(trainer, precision=Precision(precision), jit_compile=jit_compile)


@functools.cache
def log_once(message: str) -> None:
    """A search runs many trials in one process: say each device choice once."""
    log.info(message)
