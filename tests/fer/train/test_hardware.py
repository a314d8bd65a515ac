"""fer.train.hardware: the CPU facts that decide how to train."""

import os

import pytest

from fer.train.hardware import cpu_bf16_units, cpu_name, mixed_bfloat16_advice, training_device


def test_cpu_bf16_units_are_read_from_the_cpu_flags():
    assert cpu_bf16_units("flags : fpu sse2 avx512f avx512_bf16 amx_tile amx_bf16") == ["amx_bf16", "avx512_bf16"]
    assert cpu_bf16_units("flags : fpu sse2 avx2") == []


def test_mixed_bfloat16_advice_depends_on_the_cpu():
    assert "has no bf16 units" in mixed_bfloat16_advice("flags : fpu avx2")
    assert "bf16 units (amx_bf16)" in mixed_bfloat16_advice("flags : fpu amx_bf16")


def test_cpu_name_is_the_model_name_and_core_count():
    cpuinfo = "processor : 0\nmodel name : Intel(R) Xeon(R) Processor\nflags : fpu\n"
    assert cpu_name(cpuinfo) == f"Intel(R) Xeon(R) Processor, {os.cpu_count()} cores"
    assert cpu_name("flags : fpu") == f"CPU, {os.cpu_count()} cores"


def tensorflow_gpus() -> list:
    import tensorflow as tf

    return tf.config.list_physical_devices("GPU")


def test_a_backend_keras_does_not_have_computes_on_the_cpu():
    assert training_device("no-such-backend") == cpu_name()


def test_training_device_without_a_gpu_is_the_cpu():
    if tensorflow_gpus():
        pytest.skip("this machine has a GPU, so TensorFlow trains on it, not on the CPU")
    assert training_device("tensorflow") == cpu_name()


def test_training_device_with_a_gpu_is_the_gpu():
    if not tensorflow_gpus():
        pytest.skip("this machine has no GPU that TensorFlow can use")
    assert training_device("tensorflow") != cpu_name()
