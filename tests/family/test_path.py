"""DropPath: one spec draw per sample, scale_by_keep as timm, p = 1 safe, nothing of input size saved."""

import pytest
import torch
from _helpers.family import assert_rate, reference_keep, saved_numels

import dropkit
import dropkit.functional as DF
from dropkit import _mode


@pytest.mark.parametrize("shape", [(5,), (7, 3), (4, 3, 2, 2)])
def test_whole_samples_follow_the_spec_mask_of_the_batch(shape):
    x = torch.rand(shape) + 0.5
    y = DF.drop_path(x, 0.4, seed=3, offset=2**40)
    keep = reference_keep(shape[:1], 0.4, 3, 2**40).view(-1, *[1] * (len(shape) - 1))
    assert torch.equal(y, torch.where(keep, x * torch.tensor(1 / 0.6), 0.0))


def test_scale_by_keep_false_passes_kept_samples_unchanged():
    x = torch.randn(64, 5)
    y = DF.drop_path(x, 0.5, scale_by_keep=False, seed=1)
    kept = (y != 0).all(1)
    assert torch.equal(y[kept], x[kept]) and torch.equal((y == 0).all(1), ~kept)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_sample_keep_rate_within_4_sigma(p):
    y = DF.drop_path(torch.ones(100_000, 2), p, seed=9)
    assert_rate(y[:, 0] != 0, p)


def test_p_one_zero_eval_and_mc():
    x = torch.randn(4, 3, requires_grad=True)
    y = DF.drop_path(x, 1.0, seed=1)
    y.sum().backward()
    assert torch.equal(y, torch.zeros(4, 3)) and torch.equal(x.grad, torch.zeros(4, 3))
    assert DF.drop_path(x, 0.0) is x and DF.drop_path(x, 0.5, training=False) is x
    assert dropkit.DropPath(0.5).eval()(x) is x
    with _mode.mc_enabled():
        assert torch.equal(DF.drop_path(x, 0.5, training=False, seed=2), DF.drop_path(x, 0.5, seed=2))


def test_saves_only_the_per_sample_mask_and_gradcheck():
    x = torch.randn(16, 64, 8, dtype=torch.float64, requires_grad=True)
    saved = saved_numels(lambda: DF.drop_path(x, 0.5, seed=1).sum().backward())
    assert max(saved) <= 16, saved
    assert torch.autograd.gradcheck(
        lambda v: DF.drop_path(v, 0.5, seed=3), torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    )


def test_errors_and_repr():
    with pytest.raises(
        ValueError, match=r"drop_path expects input of at least 1 dimensions \(N, \*\), got shape \(\) \(0-D\)"
    ):
        DF.drop_path(torch.tensor(1.0), 0.5)
    with pytest.raises(ValueError, match="p must be between 0 and 1, got -1.0"):
        dropkit.DropPath(-1.0)
    assert repr(dropkit.DropPath(0.1, scale_by_keep=False)) == "DropPath(p=0.1, scale_by_keep=False)"
