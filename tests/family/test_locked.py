"""LockedDropout: the same spec mask at every time step, both layouts."""

import pytest
import torch
from _helpers.family import assert_rate, reference_keep, saved_numels

import dropkit
import dropkit.functional as DF


@pytest.mark.parametrize("batch_first", [False, True])
def test_mask_equal_at_every_time_step_and_is_the_spec_mask(batch_first):
    shape = (4, 6, 5) if batch_first else (6, 4, 5)  # T = 6, N = 4, H = 5
    y = DF.locked_dropout(torch.ones(shape), 0.5, batch_first=batch_first, seed=8, offset=1)
    steps = y.unbind(1 if batch_first else 0)
    assert all(torch.equal(steps[0], s) for s in steps)
    assert torch.equal(steps[0] != 0, reference_keep((4, 5), 0.5, 8, 1))


def test_keep_rate_within_4_sigma_and_nothing_of_input_size_saved():
    y = DF.locked_dropout(torch.ones(3, 1000, 100), 0.3, seed=2)
    assert_rate(y[0] != 0, 0.3)
    x = torch.randn(50, 8, 32, requires_grad=True)
    saved = saved_numels(lambda: DF.locked_dropout(x, 0.3, seed=2).sum().backward())
    assert max(saved) <= 8 * 32, saved


def test_p_one_zero_eval_inplace():
    x = torch.randn(5, 2, 3, requires_grad=True)
    y = DF.locked_dropout(x, 1.0, seed=1)
    y.sum().backward()
    assert torch.equal(y, torch.zeros_like(y)) and torch.equal(x.grad, torch.zeros_like(x))
    assert DF.locked_dropout(x, 0.0) is x and dropkit.LockedDropout(0.5).eval()(x) is x
    h = x.detach().clone()
    assert DF.locked_dropout(h, 0.5, inplace=True, seed=4) is h
    assert torch.equal(h, DF.locked_dropout(x.detach(), 0.5, seed=4))


def test_rank_error_and_repr():
    with pytest.raises(
        ValueError, match=r"locked_dropout expects input of at least 2 dimensions \(N, T, \*\), got shape \(3\) \(1-D\)"
    ):
        dropkit.LockedDropout(0.5, batch_first=True)(torch.ones(3))
    assert repr(dropkit.LockedDropout(0.2)) == "LockedDropout(p=0.2, batch_first=False, inplace=False)"


def test_channels_last_input_keeps_its_format_when_the_mask_has_its_shape():
    # time (dim 0) of size 1: the mask has the input's full shape, and a where would take its contiguous layout
    # (found by tests/test_fuzz.py)
    x = torch.randn(1, 2, 1, 2).to(memory_format=torch.channels_last)
    y = DF.locked_dropout(x, 0.5, seed=3)
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(y, DF.locked_dropout(x.contiguous(), 0.5, seed=3))
