"""trainer.precision=auto and trainer.jit_compile=null resolved per device, and dataset.cache=auto's choice.

The device facts are injected, so every kind of machine is checked here, on one without a GPU.
"""

import pytest

from imgexp.data.cache_choice import available_memory_bytes, choose_cache
from imgexp.training.device import DeviceFacts, cpu_flags, resolve_jit_compile, resolve_precision

AMX_CPU = DeviceFacts(cpu_flags=frozenset({"avx512f", "amx_bf16", "amx_tile"}))
AVX512_BF16_CPU = DeviceFacts(cpu_flags=frozenset({"avx512f", "avx512_bf16"}))
OLD_CPU = DeviceFacts(cpu_flags=frozenset({"avx2", "fma"}))


@pytest.mark.parametrize("facts, policy", [
    (AMX_CPU, "mixed_bfloat16"),
    (AVX512_BF16_CPU, "mixed_bfloat16"),
    (OLD_CPU, "float32"),
    (DeviceFacts(cpu_flags=AMX_CPU.cpu_flags, onednn=False), "float32"),  # TF_ENABLE_ONEDNN_OPTS=0
    (DeviceFacts(cpu_flags=OLD_CPU.cpu_flags, gpu_capabilities=((8, 0),)), "mixed_bfloat16"),  # A100
    (DeviceFacts(cpu_flags=AMX_CPU.cpu_flags, gpu_capabilities=((7, 5),)), "mixed_float16"),  # T4: the GPU decides
    (DeviceFacts(gpu_capabilities=((8, 6), (7, 0))), "mixed_float16"),  # the oldest GPU decides
    (DeviceFacts(gpu_capabilities=((6, 1),)), "float32"),  # Pascal: no tensor cores
])
def test_auto_precision_follows_the_device(facts, policy):
    resolved, why = resolve_precision("auto", facts)
    assert resolved == policy and why


@pytest.mark.parametrize("requested", ["float32", "mixed_float16", "mixed_bfloat16"])
def test_an_explicit_precision_wins(requested):
    assert resolve_precision(requested, AMX_CPU)[0] == requested
    assert resolve_precision(requested, OLD_CPU)[0] == requested


def test_jit_compile_off_on_cpu_keras_decides_on_gpu():
    assert resolve_jit_compile(None, AMX_CPU) is False
    assert resolve_jit_compile(None, DeviceFacts(gpu_capabilities=((8, 0),))) == "auto"
    assert resolve_jit_compile(True, AMX_CPU) is True and resolve_jit_compile(False, DeviceFacts(gpu_capabilities=((8, 0),))) is False


def test_cpu_flags_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx512f amx_bf16\n\nprocessor\t: 1\nflags\t\t: fpu avx512f amx_bf16\n")
    assert cpu_flags(cpuinfo) == {"fpu", "avx512f", "amx_bf16"}
    assert cpu_flags(tmp_path / "missing") == frozenset()


def test_cache_auto_keeps_what_fits_and_streams_the_rest():
    fits = choose_cache(images=1000, size=(150, 150), ram_share=0.5, available_bytes=8 * 2**30)
    assert fits.cache == "memory" and fits.needed_bytes == 1000 * 150 * 150 * 3
    too_big = choose_cache(images=1000, size=(150, 150), ram_share=0.001, available_bytes=8 * 2**30)
    assert too_big.cache is None and too_big.allowed_bytes < too_big.needed_bytes
    assert "streamed from disk" in too_big.describe(1000, (150, 150))


def test_available_memory_reads_meminfo_and_a_container_limit(tmp_path):
    meminfo, limit = tmp_path / "meminfo", tmp_path / "memory.max"
    meminfo.write_text("MemTotal:       24000000 kB\nMemAvailable:   20000000 kB\n")
    limit.write_text("max\n")
    assert available_memory_bytes(meminfo, limit) == 20000000 * 1024
    limit.write_text(f"{4 * 2**30}\n")
    assert available_memory_bytes(meminfo, limit) == 4 * 2**30
