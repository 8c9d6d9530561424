"""DropBlock2d: square blocks from the spec's stream, Ghiasi's gamma, normalization, batchwise honoured."""

import numpy as np
import pytest
import torch
from _helpers.family import saved_numels

import dropkit
import dropkit.functional as DF
from dropkit import rng
from dropkit.ops.block import block_gamma


def numpy_block_keep(shape, p, block_size, seed, offset=0):
    """Independent reference: each valid seed (top-left corner, block inside the map) drops its square."""
    *lead, h, w = shape
    bs = min(block_size, h, w)
    t = rng.threshold(block_gamma(p, bs, h, w))
    seeds = (rng.random_bits(int(np.prod(shape)), seed, offset).astype(np.uint64) < t).reshape(-1, h, w)
    keep = np.ones_like(seeds)
    for m, i, j in zip(*np.nonzero(seeds)):
        if i <= h - bs and j <= w - bs:
            keep[m, i : i + bs, j : j + bs] = False
    return torch.from_numpy(keep.reshape(shape))


@pytest.mark.parametrize(
    "shape, p, bs, seed", [((2, 3, 9, 7), 0.2, 3, 1), ((4, 5, 5), 0.5, 2, 2**64 - 3), ((1, 2, 4, 6), 0.3, 9, 6)]
)
def test_mask_equals_the_block_reference_and_is_normalized(shape, p, bs, seed):
    x = torch.randn(shape, dtype=torch.float64)
    y = DF.drop_block2d(x, p, bs, seed=seed, offset=3)
    keep = numpy_block_keep(shape, p, bs, seed, offset=3)
    assert (~keep).any(), "the case should drop at least one block"
    assert torch.equal(y == 0, ~keep)
    assert torch.allclose(y[keep], x[keep] * keep.numel() / keep.sum())


def test_dropped_fraction_matches_the_exact_expectation_within_4_sigma():
    p, bs, h, w = 0.15, 3, 16, 16
    y = DF.drop_block2d(torch.ones(2000, 4, h, w), p, bs, seed=7)
    per_map = (y == 0).double().mean((-1, -2)).flatten()
    gamma = block_gamma(p, bs, h, w)
    cover = torch.zeros(h, w)  # how many valid seeds cover each pixel
    for i in range(h - bs + 1):
        for j in range(w - bs + 1):
            cover[i : i + bs, j : j + bs] += 1
    expected = (1 - (1 - gamma) ** cover.double()).mean().item()
    tol = 4 * per_map.std().item() / per_map.numel() ** 0.5
    assert abs(per_map.mean().item() - expected) <= tol, (
        f"dropped {per_map.mean():.5f}, expected {expected:.5f} +- 4 sigma {tol:.5f}"
    )


def test_batchwise_shares_one_mask_and_default_does_not():
    x = torch.ones(6, 2, 10, 10)
    shared = DF.drop_block2d(x, 0.3, 3, batchwise=True, seed=2)
    assert all(torch.equal(shared[0], s) for s in shared)
    assert torch.equal(shared[0] == 0, ~numpy_block_keep((1, 2, 10, 10), 0.3, 3, 2)[0])
    own = DF.drop_block2d(x, 0.3, 3, seed=2)
    assert not all(torch.equal(own[0], s) for s in own)


def test_p_one_zeros_p_zero_identity_and_eval():
    x = torch.randn(2, 3, 5, 5, requires_grad=True)
    y = DF.drop_block2d(x, 1.0, 3, seed=1)
    y.sum().backward()
    assert torch.equal(y, torch.zeros_like(y)) and torch.equal(x.grad, torch.zeros_like(x))
    assert DF.drop_block2d(x, 0.0) is x and DF.drop_block2d(x, 0.5, training=False) is x
    assert dropkit.DropBlock2d(0.5, 3).eval()(x) is x


def test_gradient_is_the_recomputed_mask_and_nothing_is_saved():
    x = torch.randn(4, 8, 12, 12, dtype=torch.float64, requires_grad=True)
    saved = saved_numels(lambda: DF.drop_block2d(x, 0.3, 3, seed=4).sum().backward())
    assert max(saved, default=0) <= 1, saved
    assert torch.equal(x.grad, DF.drop_block2d(torch.ones_like(x), 0.3, 3, seed=4))
    t = torch.randn(1, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: DF.drop_block2d(v, 0.4, 2, seed=3), t)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_types(dtype):
    x = torch.randn(2, 2, 8, 8).to(dtype)
    assert torch.equal(DF.drop_block2d(x, 0.3, 3, seed=1), DF.drop_block2d(x.float(), 0.3, 3, seed=1).to(dtype))


@pytest.mark.parametrize(
    "call, exc, message",
    [
        (
            lambda: DF.drop_block2d(torch.ones(2, 3), 0.1),
            ValueError,
            r"drop_block2d: Expected 3D or 4D input, but received a 2D input of shape \(2, 3\) \(drop_block2d takes 3-D \(C, H, W\) or 4-D \(N, C, H, W\)\)",
        ),
        (lambda: dropkit.DropBlock2d(0.1, 0), ValueError, r"block_size must be >= 1, got 0"),
        (lambda: dropkit.DropBlock2d(0.1, 2.5), TypeError, r"block_size must be an int >= 1, got 2.5 of type float"),
        (lambda: dropkit.DropBlock2d(1.1, 3), ValueError, r"p must be between 0 and 1, got 1.1"),
    ],
)
def test_bad_arguments(call, exc, message):
    with pytest.raises(exc, match=message):
        call()


def test_module_repr_and_rate_first():
    m = dropkit.DropBlock2d(0.2, 5, batchwise=True)
    assert repr(m) == "DropBlock2d(p=0.2, block_size=5, batchwise=True)"


def test_batchwise_is_keyword_only_as_in_the_module():
    with pytest.raises(TypeError, match="positional argument"):
        DF.drop_block2d(torch.ones(1, 1, 4, 4), 0.3, 3, True, True, seed=0)
