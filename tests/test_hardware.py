"""fer.hardware: the CPU facts that decide how to train."""

from fer.hardware import cpu_bf16_units, mixed_bfloat16_advice


def test_cpu_bf16_units_are_read_from_the_cpu_flags():
    assert cpu_bf16_units("flags : fpu sse2 avx512f avx512_bf16 amx_tile amx_bf16") == ["amx_bf16", "avx512_bf16"]
    assert cpu_bf16_units("flags : fpu sse2 avx2") == []


def test_mixed_bfloat16_advice_depends_on_the_cpu():
    assert "has no bf16 units" in mixed_bfloat16_advice("flags : fpu avx2")
    assert "bf16 units (amx_bf16)" in mixed_bfloat16_advice("flags : fpu amx_bf16")
