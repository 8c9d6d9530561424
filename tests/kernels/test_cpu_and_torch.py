"""Every kernel backend computes the spec bit for bit (property tests with hypothesis)."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from _helpers.devices import FLOAT_DTYPES
from _helpers.reference import dropout as reference
from hypothesis import given, settings
from hypothesis import strategies as st

from dropkit import rng
from dropkit.kernels import cpu, cpu_common
from dropkit.kernels import torch as torch_backend

BACKENDS = {"cpu": cpu, "torch": torch_backend}


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("seed,offset", [(0, 0), (2**64 - 1, 2**34 + 1), (123456789, 7), (2**63 + 5, 2**40 - 2)])
def test_forward_equals_reference(name, dtype, seed, offset):
    x = torch.randn(1027, dtype=torch.float32).to(dtype)  # 1027: not a multiple of 4 or of the chunk
    assert torch.equal(BACKENDS[name].dropout_fwd(x, seed, offset, 0.3), reference(x, seed, offset, 0.3))


@pytest.mark.parametrize("name", BACKENDS)
def test_random_bits_equal_reference(name):
    for seed, offset in [(1, 0), (2**64 - 1, 2**33 + 3), (99, 2**63 + 1)]:
        got = BACKENDS[name].random_bits(4099, seed, offset).numpy()
        assert np.array_equal(got, rng.random_bits(4099, seed, offset).astype(np.int64))


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_bitpacked_forward_and_backward(name, dtype):
    k = BACKENDS[name]
    x = torch.randn(8 * 1000 + 5).to(dtype)
    y, bits = k.dropout_fwd_packed(x, 11, 3, 0.4)
    assert torch.equal(y, reference(x, 11, 3, 0.4))
    assert bits.dtype == torch.uint8 and bits.numel() == (x.numel() + 7) // 8
    keep = np.unpackbits(bits.numpy(), bitorder="little")[: x.numel()].astype(bool)
    assert np.array_equal(keep, rng.keep_mask((x.numel(),), 0.4, 11, 3))
    g = torch.randn_like(x)
    assert torch.equal(k.dropout_bwd_packed(g, bits, 0.4), reference(g, 11, 3, 0.4))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cpu_thread_pool_path_equals_reference(dtype):
    # Inputs from cpu_common.PARALLEL_MIN elements on run on numba's thread pool; smaller ones serially.
    n = cpu_common.PARALLEL_MIN + 4099
    x = torch.randn(n, dtype=dtype)
    ref = reference(x, 2**63 + 1, 2**34 + 3, 0.3)
    assert torch.equal(cpu.dropout_fwd(x, 2**63 + 1, 2**34 + 3, 0.3), ref)
    y, bits = cpu.dropout_fwd_packed(x, 2**63 + 1, 2**34 + 3, 0.3)
    assert torch.equal(y, ref) and torch.equal(cpu.dropout_bwd_packed(x, bits, 0.3), ref)
    assert np.array_equal(cpu.random_bits(n, 5, 3).numpy(), rng.random_bits(n, 5, 3).astype(np.int64))


def test_cpu_kernels_take_torchs_thread_count():
    # processes that share the cores (dropkit tune workers, --threads 1 each) must not each wake a pool per core
    before = torch.get_num_threads()
    x = torch.randn(cpu_common.PARALLEL_MIN + 4099)
    try:
        torch.set_num_threads(1)
        assert cpu_common.pool_threads(x.numel(), 64) == 1
        one = cpu.dropout_fwd(x, 3, 0, 0.3)
    finally:
        torch.set_num_threads(before)
    assert cpu_common.pool_threads(x.numel(), 64) == min(before, cpu_common.nb.get_num_threads())
    assert cpu_common.pool_threads(cpu_common.PARALLEL_MIN - 1, 64) == 1, "below the threshold: serial"
    assert torch.equal(one, cpu.dropout_fwd(x, 3, 0, 0.3)), "serial and pooled give the same values"


def test_a_launch_binds_numbas_pool_to_torchs_thread_count():
    # numba's pool has NUMBA_NUM_THREADS threads (one per core by default); a launch on torch's 2 wakes 2
    code = (
        "import torch, numba; from dropkit.kernels import cpu_common; torch.set_num_threads(2); "
        "print(cpu_common.pool_threads(cpu_common.PARALLEL_MIN, 64), numba.get_num_threads())"
    )
    env = {**os.environ, "NUMBA_NUM_THREADS": "4", "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300, check=True
    )
    assert done.stdout.split() == ["2", "2"], done.stdout


@pytest.mark.parametrize("name", BACKENDS)
def test_a_stream_that_wraps_past_2_to_the_64(name):
    x = torch.randn(4111)
    offset = 2**64 - 4099  # offset + index wraps inside the tensor, mid-chunk and mid-block
    assert torch.equal(BACKENDS[name].dropout_fwd(x, 9, offset, 0.5), reference(x, 9, offset, 0.5))


@pytest.mark.parametrize("name", BACKENDS)
def test_in_place_into_the_input(name):
    x = torch.randn(5000)
    expected = reference(x, 5, 0, 0.5)
    out = BACKENDS[name].dropout_fwd(x, 5, 0, 0.5, out=x)
    assert out.data_ptr() == x.data_ptr() and torch.equal(x, expected)


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("p", [0.0, 1e-10, 1.0])
def test_extreme_rates(name, p):
    x = torch.randn(4096)
    y = BACKENDS[name].dropout_fwd(x, 3, 0, p)
    assert torch.equal(y, reference(x, 3, 0, p))
    if p == 1.0:
        assert torch.equal(y, torch.zeros_like(x))


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 20000),
    seed=st.integers(0, 2**64 - 1),
    offset=st.integers(0, 2**62),
    p=st.sampled_from([0.0, 1e-10, 0.1, 0.5, 0.9, 1.0]) | st.floats(0, 1),
    dtype=st.sampled_from(FLOAT_DTYPES),
)
def test_property_cpu_and_torch_equal_reference(n, seed, offset, p, dtype):
    x = torch.randn(n).to(dtype)
    ref = reference(x, seed, offset, p)
    assert torch.equal(cpu.dropout_fwd(x, seed, offset, p), ref)
    assert torch.equal(torch_backend.dropout_fwd(x, seed, offset, p), ref)
