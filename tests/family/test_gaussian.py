"""Gaussian dropout and noise: Box-Muller normals from the spec's stream, 4-sigma moments, recomputed in backward."""

import math

import numpy as np
import pytest
import torch
from _helpers.family import saved_numels

import dropkit
import dropkit.functional as DF
from dropkit import _mode, rng
from dropkit.ops.gaussian import box_muller, normal


def numpy_normals(n, seed, offset):
    """Box-Muller as docs/family.md states it, on the numpy reference's words."""
    start = offset & ~1
    words = rng.random_bits((offset + n - start + 1) & ~1, seed, start).astype(np.float64).reshape(-1, 2)
    radius = np.sqrt(-2.0 * np.log((words[:, 0] + 1.0) * 2.0**-32))
    angle = 2.0 * np.pi * 2.0**-32 * words[:, 1]
    return np.stack((radius * np.cos(angle), radius * np.sin(angle)), 1).reshape(-1)[
        offset - start : offset - start + n
    ]


@pytest.mark.parametrize("n, seed, offset", [(1, 0, 0), (7, 3, 1), (1000, 2**64 - 1, 2**33 + 5)])
def test_normals_follow_the_documented_box_muller(n, seed, offset):
    # log/cos of numpy and torch may differ in the last bit; the words themselves are exact
    assert np.allclose(normal(n, seed, offset, "cpu").numpy(), numpy_normals(n, seed, offset), rtol=1e-13, atol=1e-13)


def test_a_shard_gets_its_slice_of_the_whole_noise():
    whole = DF.gaussian_noise(torch.zeros(101), 1.0, seed=5, offset=10)
    for k in (0, 1, 2, 33):
        assert torch.equal(DF.gaussian_noise(torch.zeros(101 - k), 1.0, seed=5, offset=10 + k), whole[k:])


def test_extreme_words_give_finite_normals():
    z = box_muller(torch.tensor([0, 0, 0, 2**32 - 1, 2**32 - 1, 0, 2**32 - 1, 2**32 - 1]))
    assert torch.isfinite(z).all()
    assert z[0] == pytest.approx(math.sqrt(64 * math.log(2)))


def test_noise_mean_and_variance_within_4_sigma():
    n, std = 400_000, 0.7
    z = DF.gaussian_noise(torch.zeros(n, dtype=torch.float64), std, seed=1)
    mean_sigma, var_sigma = std / math.sqrt(n), std**2 * math.sqrt(2 / (n - 1))
    assert abs(z.mean()) <= 4 * mean_sigma, f"mean {z.mean():.5f}, 4 sigma = {4 * mean_sigma:.5f}"
    assert abs(z.var() - std**2) <= 4 * var_sigma, f"var {z.var():.5f}, 4 sigma = {4 * var_sigma:.5f}"
    fourth = ((z / std) ** 4).mean()
    assert abs(fourth - 3) <= 4 * math.sqrt(96 / n), f"4th moment {fourth:.4f}, 4 sigma = {4 * math.sqrt(96 / n):.4f}"


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_multiplier_has_mean_1_and_variance_p_over_1_minus_p(p):
    n = 400_000
    m = DF.gaussian_dropout(torch.ones(n, dtype=torch.float64), p, seed=2)
    var = p / (1 - p)
    mean_sigma, var_sigma = math.sqrt(var / n), var * math.sqrt(2 / (n - 1))
    assert abs(m.mean() - 1) <= 4 * mean_sigma, f"mean {m.mean():.5f}, 4 sigma = {4 * mean_sigma:.5f}"
    assert abs(m.var() - var) <= 4 * var_sigma, f"var {m.var():.5f}, 4 sigma = {4 * var_sigma:.5f}"


def test_p_one_and_zero_and_eval():
    x = torch.randn(5, 4, requires_grad=True)
    y = DF.gaussian_dropout(x, 1.0, seed=1)
    y.sum().backward()
    assert torch.equal(y, torch.zeros(5, 4)) and torch.equal(x.grad, torch.zeros(5, 4))
    assert DF.gaussian_dropout(x, 0.0) is x and DF.gaussian_noise(x, 0.0) is x
    assert DF.gaussian_dropout(x, 0.5, training=False) is x and DF.gaussian_noise(x, 1.0, training=False) is x
    assert dropkit.GaussianDropout(0.5).eval()(x) is x and dropkit.GaussianNoise(1.0).eval()(x) is x
    with _mode.mc_enabled():
        assert torch.equal(DF.gaussian_noise(x, 1.0, training=False, seed=3), DF.gaussian_noise(x, 1.0, seed=3))


def test_gradients_recompute_the_noise_and_save_nothing():
    x = torch.randn(64, 64, dtype=torch.float64, requires_grad=True)
    saved = saved_numels(lambda: DF.gaussian_dropout(x, 0.3, seed=4).sum().backward())
    assert max(saved, default=0) <= 1, saved
    assert torch.equal(x.grad, DF.gaussian_dropout(torch.ones_like(x), 0.3, seed=4))
    x.grad = None
    saved = saved_numels(lambda: DF.gaussian_noise(x, 0.5, seed=4).sum().backward())
    assert max(saved, default=0) <= 1 and torch.equal(x.grad, torch.ones_like(x))
    t = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: DF.gaussian_dropout(v, 0.4, seed=8), t)
    assert torch.autograd.gradcheck(lambda v: DF.gaussian_noise(v, 0.4, seed=8), t)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_dtypes_and_layout(dtype):
    x = torch.randn(6, 8).to(dtype)
    y = DF.gaussian_dropout(x, 0.2, seed=1)
    assert y.dtype == dtype and torch.equal(y, DF.gaussian_dropout(x.float(), 0.2, seed=1).to(dtype))
    xt = torch.randn(2, 3, 4, 4).to(memory_format=torch.channels_last)
    yt = DF.gaussian_noise(xt, 0.1, seed=2)
    assert yt.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(yt, DF.gaussian_noise(xt.contiguous(), 0.1, seed=2))


def test_seeds_reproduce_with_manual_seed_and_advance():
    m = dropkit.GaussianNoise(1.0)
    x = torch.zeros(10)
    torch.manual_seed(3)
    a, b = m(x), m(x)
    torch.manual_seed(3)
    assert torch.equal(m(x), a) and not torch.equal(a, b)


@pytest.mark.parametrize(
    "call, exc, message",
    [
        (lambda: DF.gaussian_noise(torch.ones(2), -1.0), ValueError, r"stddev must be a finite float >= 0, got -1.0"),
        (
            lambda: DF.gaussian_noise(torch.ones(2), float("inf")),
            ValueError,
            r"stddev must be a finite float >= 0, got inf",
        ),
        (lambda: dropkit.GaussianNoise("0.1"), TypeError, r"stddev must be a finite float >= 0, got '0.1' of type str"),
        (lambda: DF.gaussian_dropout(torch.ones(2), float("nan")), ValueError, r"p must be between 0 and 1, got nan"),
        (lambda: dropkit.GaussianDropout(2), ValueError, r"p must be between 0 and 1, got 2.0"),
    ],
)
def test_bad_arguments(call, exc, message):
    with pytest.raises(exc, match=message):
        call()


def test_compiled_noise_op_equals_eager_with_two_layers_on_one_tensor():
    """The typed ops (dropkit::alpha_dropout, dropkit::gaussian, dropkit::drop_block2d) under torch.compile(fullgraph=True)."""
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), dropkit.AlphaDropout(0.2))

    def f(x):
        h = model(x)
        return dropkit.GaussianDropout(0.3)(h) + dropkit.GaussianDropout(0.3)(h) + dropkit.DropBlock2d(0.2, 2)(h)

    x = torch.randn(3, 2, 6, 6, requires_grad=True)
    # aot_eager traces the custom ops, fake kernels and autograd as inductor does, in 3 s instead of 20
    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    outs = []
    for fn in (f, compiled):
        torch.manual_seed(0)
        y = fn(x)
        (gx,) = torch.autograd.grad(y.square().sum(), x)
        outs.append((y, gx))
    assert torch.equal(outs[0][0], outs[1][0])
    assert torch.allclose(outs[0][1], outs[1][1], rtol=1e-5, atol=1e-6)
