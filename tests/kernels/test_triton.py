"""The Triton kernels compute the mask spec bit for bit (on CPU tensors under TRITON_INTERPRET=1)."""

import numpy as np
import pytest
import torch
from _helpers import reference as ref
from _helpers.devices import FLOAT_DTYPES
from hypothesis import given, settings
from hypothesis import strategies as st

from dropkit import rng
from dropkit.kernels import cpu

triton_kernels = pytest.importorskip("dropkit.kernels.triton")
pytestmark = ref.needs_triton
DEV = ref.TRITON_DEVICE

# seeds above 2^63, offsets above 2^34 and not multiples of 4, an offset whose stream wraps past 2^64
CASES = [(0, 0), (2**64 - 1, 2**34 + 1), (123456789, 7), (2**63 + 5, 2**40 - 2), (5, 2**64 - 3)]


def test_known_answer():
    # counter (0, 0, 0, 0) under key (0, 0) is stream block 0 of seed 0
    words = triton_kernels.random_bits(4, 0, 0, DEV).cpu().tolist()
    assert words == [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]


# ints in [2^31, 2^32) reach an interpreted kernel as 4-byte data typed int64
@pytest.mark.parametrize("seed,offset", CASES + [(2**31, 2**31 + 3), (2**32 - 1, 2**32 - 1)])
def test_random_bits_equal_reference(seed, offset):
    got = triton_kernels.random_bits(4099, seed, offset, DEV).cpu().numpy()
    assert np.array_equal(got, rng.random_bits(4099, seed, offset).astype(np.int64))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("seed,offset", CASES[:4])
def test_forward_equals_reference_and_cpu_kernel(dtype, seed, offset):
    x = torch.randn(1027).to(dtype)  # 1027: not a multiple of 4, 8 or the block
    y = triton_kernels.dropout_fwd(x.to(DEV), seed, offset, 0.3).cpu()
    assert torch.equal(y, ref.dropout(x, seed, offset, 0.3))
    assert torch.equal(y, cpu.dropout_fwd(x, seed, offset, 0.3))


def test_offset_wrapping_past_2_64_equals_reference():
    x = torch.randn(1027)
    seed, offset = CASES[4]
    assert torch.equal(
        triton_kernels.dropout_fwd(x.to(DEV), seed, offset, 0.3).cpu(), ref.dropout(x, seed, offset, 0.3)
    )


@pytest.mark.parametrize("p", [0.0, 1e-10, 0.3, 0.5, 1.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rates(p, dtype):
    x = torch.randn(4100).to(dtype)
    y = triton_kernels.dropout_fwd(x.to(DEV), 3, 1, p).cpu()
    assert torch.equal(y, ref.dropout(x, 3, 1, p))


def test_p_one_gives_exact_zeros_even_for_inf_and_nan():
    x = torch.tensor([float("inf"), float("nan"), -float("inf"), 1.0, -0.0] * 7)
    y = triton_kernels.dropout_fwd(x.to(DEV), 9, 0, 1.0).cpu()
    assert torch.equal(y, torch.zeros_like(x)) and not y.signbit().any()


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_bitpacked_forward_and_backward(dtype):
    x = torch.randn(8 * 600 + 5).to(dtype)
    y, bits = triton_kernels.dropout_fwd_packed(x.to(DEV), 11, 3, 0.4)
    assert torch.equal(y.cpu(), ref.dropout(x, 11, 3, 0.4))
    _, cpu_bits = cpu.dropout_fwd_packed(x, 11, 3, 0.4)
    assert bits.dtype == torch.uint8 and torch.equal(bits.cpu(), cpu_bits)  # padding bits of the last byte are 0 too
    g = torch.randn_like(x)
    assert torch.equal(triton_kernels.dropout_bwd_packed(g.to(DEV), bits, 0.4).cpu(), ref.dropout(g, 11, 3, 0.4))


def test_in_place_into_the_input():
    x = torch.randn(5000, device=DEV)
    expected = ref.dropout(x.cpu(), 5, 2, 0.5)
    out = triton_kernels.dropout_fwd(x, 5, 2, 0.5, out=x)
    assert out.data_ptr() == x.data_ptr() and torch.equal(x.cpu(), expected)


def test_empty():
    assert triton_kernels.dropout_fwd(torch.empty(0, 3, device=DEV), 1, 0, 0.5).shape == (0, 3)
    assert triton_kernels.random_bits(0, 1, 0, DEV).numel() == 0


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(0, 3000),
    seed=st.integers(0, 2**64 - 1),
    offset=st.integers(0, 2**64 - 1),
    p=st.sampled_from([0.0, 1e-10, 0.1, 0.5, 0.9, 1.0]) | st.floats(0, 1),
    dtype=st.sampled_from(FLOAT_DTYPES),
)
def test_property_equals_reference(n, seed, offset, p, dtype):
    x = torch.randn(n).to(dtype)
    assert torch.equal(triton_kernels.dropout_fwd(x.to(DEV), seed, offset, p).cpu(), ref.dropout(x, seed, offset, p))
