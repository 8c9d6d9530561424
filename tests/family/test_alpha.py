"""AlphaDropout / FeatureAlphaDropout: SELU statistics kept, torch's formula and distribution, p = 1 safe."""

import pytest
import torch
import torch.nn.functional as TF
from _helpers.family import assert_rate, reference_keep, saved_numels

import dropkit
import dropkit.functional as DF
from dropkit import _mode
from dropkit.ops.alpha import alpha_coefficients


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_mean_and_std_of_selu_input_kept_within_0_1(p):
    x = torch.selu(torch.randn(200_000, generator=torch.Generator().manual_seed(1)))
    y = DF.alpha_dropout(x, p, training=True, seed=3)
    assert abs(y.mean() - x.mean()) < 0.1, (y.mean(), x.mean())
    assert abs(y.std() - x.std()) < 0.1, (y.std(), x.std())
    assert_rate(y != alpha_coefficients(p)[2], p)


@pytest.mark.parametrize("seed, offset", [(5, 0), (2**63 + 7, 2**34 + 3)])
def test_output_is_torchs_formula_on_the_spec_mask(seed, offset):
    x = torch.randn(3, 37, dtype=torch.float64)
    p = 0.3
    keep = reference_keep(x.shape, p, seed, offset).double()
    # torch's _dropout_impl: noise = keep * a, b = (keep - 1) * alpha * a + alpha * a * p
    alpha = 1.7580993408473766
    a = 1.0 / ((alpha * alpha * p + 1) * (1 - p)) ** 0.5
    expected = x * (keep * a) + ((keep - 1) * alpha * a + alpha * a * p)
    y = DF.alpha_dropout(x, p, True, seed=seed, offset=offset)
    kept = keep.bool()
    # kept: x * a + alpha * a * p, the same float64 ops in both: exact
    assert torch.equal(y[kept], expected[kept])
    # dropped: torch's (0 - 1) * alpha * a + alpha * a * p rounds differently from dropkit's
    # -alpha * a * (1 - p) (they differ by 1 ulp at p = 0.3), so only that value is compared with a tolerance
    assert torch.equal(y[~kept], torch.full_like(y[~kept], alpha_coefficients(p)[2]))
    assert torch.allclose(y[~kept], expected[~kept], rtol=1e-15, atol=1e-15)


def test_same_output_distribution_as_torch():
    torch.manual_seed(0)
    x = torch.selu(torch.randn(100_000))
    ours, theirs = DF.alpha_dropout(x, 0.4, True, seed=2), TF.alpha_dropout(x, 0.4, True)
    dropped = alpha_coefficients(0.4)[2]
    # torch rounds the dropped value through float32 arithmetic differently, hence isclose
    assert_rate(~torch.isclose(ours, torch.tensor(dropped)), 0.4)
    assert_rate(~torch.isclose(theirs, torch.tensor(dropped)), 0.4)
    # kept values are x * a + shift with the same float32 ops as dropkit's: exact
    assert torch.equal(
        ours[ours != dropped], (x * alpha_coefficients(0.4)[0] + alpha_coefficients(0.4)[1])[ours != dropped]
    )


@pytest.mark.parametrize("fn", [DF.alpha_dropout, DF.feature_alpha_dropout])
def test_p_one_gives_zeros_and_finite_zero_gradient(fn):
    x = torch.randn(4, 3, 5, requires_grad=True)
    y = fn(x, 1.0, True, seed=1)
    y.sum().backward()
    assert torch.equal(y, torch.zeros_like(y)) and torch.equal(x.grad, torch.zeros_like(x))
    assert torch.equal(y, fn(x.detach(), 1.0, True) * 0 + TF.alpha_dropout(x.detach(), 1.0, True))


def test_gradient_is_recomputed_mask_times_a_and_nothing_is_saved():
    x = torch.randn(64, 64, dtype=torch.float64, requires_grad=True)
    saved = saved_numels(lambda: DF.alpha_dropout(x, 0.3, True, seed=4).sum().backward())
    assert max(saved, default=0) <= 1, saved
    keep = reference_keep(x.shape, 0.3, 4).double()
    assert torch.equal(x.grad, keep * alpha_coefficients(0.3)[0])
    for fn in (DF.alpha_dropout, DF.feature_alpha_dropout):
        t = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda v, fn=fn: fn(v, 0.4, True, seed=8), t)


def test_feature_alpha_is_all_or_nothing_per_channel_and_saves_only_channel_mask():
    x = torch.randn(50, 40, 6, 6, requires_grad=True)
    saved = saved_numels(lambda: DF.feature_alpha_dropout(x, 0.5, True, seed=6).sum().backward())
    assert max(saved) <= 50 * 40, saved
    y = DF.feature_alpha_dropout(x.detach(), 0.5, True, seed=6)
    a, shift, dropped = alpha_coefficients(0.5)
    dropped_channel = (y == dropped).flatten(2)
    assert torch.equal(dropped_channel.all(-1), dropped_channel.any(-1))
    keep = reference_keep((50, 40), 0.5, 6)
    assert torch.equal(~dropped_channel.all(-1), keep)
    assert torch.equal(y[keep], x.detach()[keep] * a + shift)
    assert_rate(keep, 0.5)


def test_feature_alpha_rank_rule_matches_torch_and_errors_name_the_shape():
    assert (
        DF.feature_alpha_dropout(torch.ones(2, 3), 0.5, True, seed=0).shape
        == TF.feature_alpha_dropout(torch.ones(2, 3), 0.5, True).shape
    )
    with pytest.raises(
        ValueError,
        match=r"feature_alpha_dropout expects input of at least 2 dimensions \(N, C, \*\), got shape \(5\) \(1-D\)",
    ):
        DF.feature_alpha_dropout(torch.ones(5), 0.5, True)


def test_defaults_follow_torch_training_false_and_eval_identity():
    x = torch.randn(3, 4)
    assert DF.alpha_dropout(x) is x and DF.feature_alpha_dropout(x) is x
    assert dropkit.AlphaDropout(0.5).eval()(x) is x
    with _mode.mc_enabled():
        assert not torch.equal(DF.alpha_dropout(x, 0.5, seed=1), x)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_half_types_round_the_float32_result_once(dtype):
    x = torch.randn(1000).to(dtype)
    y = DF.alpha_dropout(x, 0.3, True, seed=9)
    ref = DF.alpha_dropout(x.double() if dtype == torch.float64 else x.float(), 0.3, True, seed=9).to(dtype)
    assert y.dtype == dtype and torch.equal(y, ref)


def test_inplace_and_layout():
    h = torch.randn(6, 5, requires_grad=True) * 1
    expected = DF.alpha_dropout(h.detach().clone(), 0.5, True, seed=3)
    assert torch.equal(DF.alpha_dropout(h, 0.5, True, True, seed=3), expected)
    x = torch.randn(5, 6).t()
    assert torch.equal(DF.alpha_dropout(x, 0.5, True, seed=2), DF.alpha_dropout(x.contiguous(), 0.5, True, seed=2))


def test_modules_are_drop_ins():
    for cls in (dropkit.AlphaDropout, dropkit.FeatureAlphaDropout):
        torch_cls = getattr(torch.nn, cls.__name__)
        assert isinstance(cls(0.2), torch_cls) and repr(cls(0.2)) == repr(torch_cls(0.2))
        with pytest.raises(ValueError, match="p must be between 0 and 1, got -0.1"):
            cls(-0.1)
