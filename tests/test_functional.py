"""dropkit.functional.dropout and keep_mask: TESTING.md's list for plain dropout."""

import math

import pytest
import torch
from _helpers.devices import FLOAT_DTYPES
from _helpers.reference import dropout as reference
from _helpers.stats import four_sigma

import dropkit.functional as DF


@pytest.mark.parametrize("seed,offset", [(0, 0), (7, 3), (2**64 - 1, 2**33 + 1), (2**63, 2**40 + 2)])
def test_output_equals_spec_reference(device, seed, offset):
    x = torch.randn(13, 17, 3, device=device)  # 663 elements: not a multiple of 4
    y = DF.dropout(x, 0.3, seed=seed, offset=offset)
    assert torch.equal(y.cpu(), reference(x.cpu(), seed, offset, 0.3))


def test_keep_mask_matches_dropout_zeros(device):
    x = torch.rand(64, 33, device=device) + 1.0  # nonzero everywhere
    y = DF.dropout(x, 0.4, seed=9, offset=5)
    assert torch.equal(y != 0, DF.keep_mask((64, 33), 0.4, seed=9, offset=5, device=device))


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.7, 0.9])
def test_keep_rate_within_4_sigma(p):
    n = 200_000
    kept = DF.dropout(torch.ones(n), p, seed=1234).ne(0).float().mean().item()
    tol = four_sigma(p, n)
    assert abs(kept - (1 - p)) < tol, f"kept {kept:.5f}, expected {1 - p} +- {tol:.5f} (4 sigma)"


def test_scaling_at_half():
    n = 200_000
    y = DF.dropout(torch.ones(n), 0.5, seed=5)
    kept = y[y != 0]
    assert torch.all(kept == 2.0)
    tol = 2 * four_sigma(0.5, n)  # mean = 2 * kept fraction
    assert abs(y.mean().item() - 1.0) < tol, f"mean {y.mean().item():.5f} not within 1 +- {tol:.5f} (4 sigma)"


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_kept_values_equal_scale_in_dtype(dtype):
    y = DF.dropout(torch.ones(10_000, dtype=dtype), 0.3, seed=2)
    kept = y[y != 0]
    expected = torch.tensor(1 / (1 - 0.3), dtype=torch.float64).to(dtype)
    assert kept.dtype == dtype and torch.all(kept == expected)


def test_p_zero_is_identity_and_draws_no_random_numbers():
    x = torch.randn(100)
    state = torch.get_rng_state()
    assert DF.dropout(x, 0.0) is x
    assert torch.equal(torch.get_rng_state(), state)


def test_tiny_p_is_a_real_draw():
    # t(1e-10) = 0 keeps everything; the draw still happens and advances torch's generator.
    x = torch.randn(1000)
    state = torch.get_rng_state()
    assert torch.equal(DF.dropout(x, 1e-10), x * (1 / (1 - 1e-10)))
    assert not torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("backward", ["recompute", "bitpacked"])
def test_p_one_gives_zeros_and_zero_gradient(backward):
    x = torch.tensor([1.0, float("inf"), -3.0, float("nan")], requires_grad=True)
    y = DF.dropout(x, 1.0, seed=1, backward=backward)
    assert torch.equal(y, torch.zeros(4))
    y.sum().backward()
    assert torch.equal(x.grad, torch.zeros(4))


def test_empty_and_zero_dim_tensors():
    e = torch.empty(0, 3)
    assert DF.dropout(e, 0.5, seed=1).shape == (0, 3)
    s = torch.tensor(3.0)
    y = DF.dropout(s, 0.5, seed=1)
    assert y.shape == () and y.item() in (0.0, 6.0)


@pytest.mark.parametrize(
    "make",
    [
        lambda t: t.t(),  # transposed
        lambda t: t[:, ::2],  # sliced with a step
        lambda t: t.view(4, 3, 5, 6).to(memory_format=torch.channels_last),
    ],
    ids=["transposed", "strided", "channels_last"],
)
def test_layout_gets_mask_of_contiguous_copy_and_keeps_format(make):
    x = make(torch.randn(12, 30))
    y = DF.dropout(x, 0.5, seed=3)
    assert torch.equal(y, DF.dropout(x.contiguous(), 0.5, seed=3))
    assert y.stride() == torch.empty_like(x).stride()


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool, torch.uint8])
def test_integer_and_bool_inputs_raise(dtype):
    with pytest.raises(TypeError, match=rf"input must have a floating dtype .*got dtype {dtype}"):
        DF.dropout(torch.zeros(3, dtype=dtype), 0.5)


@pytest.mark.parametrize("inplace", [False, True])
def test_eval_is_identity(inplace):
    x = torch.randn(10)
    assert DF.dropout(x, 0.5, training=False, inplace=inplace) is x


def test_inplace_on_non_leaf_and_its_gradient():
    a = torch.randn(50, requires_grad=True)
    h = a * 1.0
    out = DF.dropout(h, 0.5, inplace=True, seed=4)
    assert out is h and torch.equal(h, DF.dropout(a.detach(), 0.5, seed=4))
    out.sum().backward()
    assert torch.equal(a.grad, DF.dropout(torch.ones(50), 0.5, seed=4))


def test_inplace_without_grad_overwrites_input():
    x = torch.randn(7, 9).t()  # non-contiguous too
    expected = DF.dropout(x, 0.5, seed=8)
    ptr = x.data_ptr()
    assert DF.dropout(x, 0.5, inplace=True, seed=8) is x
    assert x.data_ptr() == ptr and torch.equal(x, expected)


def test_inplace_on_leaf_requiring_grad_raises():
    x = torch.randn(5, requires_grad=True)
    with pytest.raises(
        RuntimeError, match="inplace=True cannot overwrite input: it is a leaf tensor that requires grad"
    ):
        DF.dropout(x, 0.5, inplace=True)


@pytest.mark.parametrize("backward", ["recompute", "bitpacked"])
def test_gradcheck_float64(backward):
    x = torch.randn(6, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: DF.dropout(t, 0.4, seed=77, offset=2, backward=backward), (x,))
    assert torch.autograd.gradgradcheck(lambda t: DF.dropout(t, 0.4, seed=77, backward=backward), (x,))


@pytest.mark.parametrize("backward", ["recompute", "bitpacked"])
def test_gradient_is_grad_out_times_mask_and_scale(backward):
    x = torch.randn(300, 7, requires_grad=True)
    g = torch.randn(300, 7)
    DF.dropout(x, 0.3, seed=21, backward=backward).backward(g)
    assert torch.equal(x.grad, reference(g, 21, 0, 0.3))


def _saved_numel(fn, x):
    sizes = []

    def pack(t):
        sizes.append(t.numel() if t.dtype != torch.uint8 else t.numel() / 8)  # bytes -> elements of 1 bit
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(x)
    return sizes


def test_nothing_of_size_n_is_saved_for_backward():
    x = torch.randn(4096, requires_grad=True)
    assert all(s <= 1 for s in _saved_numel(lambda t: DF.dropout(t, 0.5), x))


def test_bitpacked_saves_one_bit_per_element():
    x = torch.randn(4096, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        DF.dropout(x, 0.5, backward="bitpacked")
    assert [(t.dtype, t.numel()) for t in saved] == [(torch.uint8, 4096 // 8)]


def test_same_seed_same_mask_different_seed_differs():
    x = torch.randn(1000)
    assert torch.equal(DF.dropout(x, 0.5, seed=1), DF.dropout(x, 0.5, seed=1))
    assert not torch.equal(DF.dropout(x, 0.5, seed=1), DF.dropout(x, 0.5, seed=2))
    assert not torch.equal(DF.dropout(x, 0.5, seed=1), DF.dropout(x, 0.5, seed=1, offset=1))


def test_manual_seed_reproduces_and_calls_advance():
    x = torch.randn(1000)
    torch.manual_seed(0)
    a, b = DF.dropout(x, 0.5), DF.dropout(x, 0.5)
    torch.manual_seed(0)
    assert torch.equal(a, DF.dropout(x, 0.5)) and torch.equal(b, DF.dropout(x, 0.5))
    assert not torch.equal(a, b)


def test_generator_argument_is_used():
    x = torch.randn(1000)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    state = torch.get_rng_state()
    assert torch.equal(DF.dropout(x, 0.5, generator=g1), DF.dropout(x, 0.5, generator=g2))
    assert torch.equal(torch.get_rng_state(), state)


def test_fork_rng_restores_the_mask():
    x = torch.randn(1000)
    with torch.random.fork_rng():
        a = DF.dropout(x, 0.5)
    assert torch.equal(a, DF.dropout(x, 0.5))


def test_shard_offset_gives_its_slice_of_the_whole_batch_mask():
    x = torch.randn(8, 100)
    whole = DF.dropout(x, 0.5, seed=3, offset=10)
    assert torch.equal(DF.dropout(x[5:], 0.5, seed=3, offset=10 + 500), whole[5:])


def test_eager_fast_path_equals_the_custom_op():
    x = torch.randn(33, 65, requires_grad=True)
    g = torch.randn(33, 65)
    y = DF.dropout(x, 0.3, seed=2**64 - 3, offset=2**40)
    y.backward(g)
    gx = x.grad
    x.grad = None
    seed = torch.tensor(-3)  # 2**64 - 3 as int64 bits
    y_op = torch.ops.dropkit.dropout(x, seed, 2**40, 0.3)
    y_op.backward(g)
    assert torch.equal(y, y_op) and torch.equal(gx, x.grad)


BAD = [
    (dict(p=-0.1), ValueError, r"p must be between 0 and 1, got -0.1"),
    (dict(p=1.5), ValueError, r"p must be between 0 and 1, got 1.5"),
    (dict(p=math.nan), ValueError, r"p must be between 0 and 1, got nan"),
    (dict(p="0.5"), TypeError, r"p must be a float in \[0, 1\], got '0.5' of type str"),
    (dict(p=True), TypeError, r"p must be a float in \[0, 1\], got True of type bool"),
    (dict(seed=-1), ValueError, r"seed must be in \[0, 2\*\*64\), got -1"),
    (dict(seed=2**64), ValueError, r"seed must be in \[0, 2\*\*64\), got 18446744073709551616"),
    (dict(seed=1.5), TypeError, r"seed must be an int in \[0, 2\*\*64\), got 1.5 of type float"),
    (dict(offset=-3), ValueError, r"offset must be in \[0, 2\*\*64\), got -3"),
    (dict(backward="mask"), ValueError, r"backward must be one of 'recompute', 'bitpacked', got 'mask'"),
]


@pytest.mark.parametrize("kwargs,exc,message", BAD)
def test_bad_arguments_raise_with_the_value(kwargs, exc, message):
    kwargs = {"p": 0.5, **kwargs}
    with pytest.raises(exc, match=message):
        DF.dropout(torch.ones(3), **kwargs)


def test_non_tensor_input_raises():
    with pytest.raises(TypeError, match="input must be a torch.Tensor, got list"):
        DF.dropout([1.0, 2.0], 0.5)


def test_keep_mask_needs_a_seed():
    with pytest.raises(TypeError, match="keep_mask needs an explicit seed"):
        DF.keep_mask((3,), 0.5, seed=None)
