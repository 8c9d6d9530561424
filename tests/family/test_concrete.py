"""Concrete dropout: the paper's relaxation on the spec's uniforms, exact gradients in x and p, the regulariser."""

import math

import pytest
import torch
from _helpers.family import assert_rate

import dropkit
import dropkit.functional as DF
from dropkit import rng


def reference(x, p, seed, offset, t):
    """Gal et al.'s formula in plain torch autograd, on the documented uniforms (r + 0.5) / 2^32."""
    u = (torch.from_numpy(rng.random_bits(x.numel(), seed, offset).astype("float64")) + 0.5) * 2.0**-32
    z = (torch.log(p) - torch.log1p(-p) + torch.log(u) - torch.log1p(-u)) / t
    return x * torch.sigmoid(-z).view(x.shape) / (1 - p)


def test_output_and_gradients_equal_the_autograd_reference():
    x = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)
    p = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    y = DF.concrete_dropout(x, p, 0.1, seed=4, offset=3)
    y_ref = reference(x, p, 4, 3, 0.1)
    assert torch.allclose(y, y_ref, rtol=1e-12, atol=1e-12)
    g = torch.randn(5, 7, dtype=torch.float64)
    grads = torch.autograd.grad(y, (x, p), g)
    grads_ref = torch.autograd.grad(y_ref, (x, p), g)
    assert all(torch.allclose(a, b, rtol=1e-10, atol=1e-12) for a, b in zip(grads, grads_ref))
    assert torch.autograd.gradcheck(lambda a, b: DF.concrete_dropout(a, b, 0.5, seed=1), (x, p))


def test_low_temperature_is_bernoulli_with_keep_rate_1_minus_p():
    # a value is unsaturated when |logit p + logit u| < ~7t: a u-window of width ~3t, so ~3e-5 of them here
    y = DF.concrete_dropout(torch.ones(200_000), 0.3, 1e-5, seed=2)
    assert ((y < 1e-3) | (y > 1 / 0.7 - 1e-3)).float().mean() > 0.999
    assert_rate(y > 0.5, 0.3)


def test_saves_only_the_input_itself_and_scalars():
    x = torch.randn(64, 64, requires_grad=True)
    p = torch.tensor(0.2, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        DF.concrete_dropout(x, p, seed=1).sum().backward()
    assert all(t.numel() <= 1 or t.data_ptr() == x.data_ptr() for t in saved), [t.shape for t in saved]


def test_p_one_zeros_p_zero_identity_finite_gradients():
    x = torch.randn(6, requires_grad=True)
    for value, expected in ((1.0, torch.zeros(6)), (0.0, x.detach())):
        p = torch.tensor(value, requires_grad=True)
        y = DF.concrete_dropout(x, p, seed=3)
        gx, gp = torch.autograd.grad(y.sum(), (x, p))
        assert torch.equal(y, expected) and torch.isfinite(gx).all() and torch.isfinite(gp).all()
    assert DF.concrete_dropout(x, 0.5, training=False) is x


def test_module_learns_p_and_exposes_the_paper_regulariser():
    torch.manual_seed(0)
    layer = torch.nn.Linear(8, 1)
    m = dropkit.ConcreteDropout(layer, 0.2, weight_regularizer=1e-2, dropout_regularizer=1e-1)
    with pytest.raises(RuntimeError, match="ConcreteDropout.regularization\\(\\) needs the input size"):
        m.regularization()
    loss = m(torch.randn(32, 8)).pow(2).mean() + m.regularization()
    loss.backward()
    assert m.p_logit.grad is not None and m.p_logit.grad != 0
    p = torch.tensor(0.2)
    squares = sum(w.detach().pow(2).sum() for w in layer.parameters())
    expected = 1e-2 * squares / (1 - p) + 1e-1 * 8 * (p * math.log(0.2) + (1 - p) * math.log(0.8))
    assert torch.allclose(m.regularization().detach(), expected)
    assert m.p == pytest.approx(0.2)


def test_module_rate_setter_eval_and_errors():
    m = dropkit.ConcreteDropout(torch.nn.Identity(), 0.1)
    x = torch.randn(4, 3)
    assert torch.equal(m.eval()(x), x)
    m.p = 0.4
    assert m.p == pytest.approx(0.4)
    with pytest.raises(ValueError, match="p must be strictly between 0 and 1, got 1.0"):
        m.p = 1.0
    with pytest.raises(ValueError, match="temperature must be a finite float > 0, got 0.0"):
        dropkit.ConcreteDropout(torch.nn.Identity(), temperature=0.0)
    with pytest.raises(TypeError, match="p must be a float or a one-element floating tensor"):
        DF.concrete_dropout(x, torch.ones(2), seed=0)


def test_compiled_concrete_op_equals_eager():
    x = torch.randn(4, 6, requires_grad=True)
    p_logit = torch.tensor(-1.0, requires_grad=True)

    def f(x):
        return DF.concrete_dropout(x, torch.sigmoid(p_logit), 0.1) * 2

    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    outs = []
    for fn in (f, compiled):
        torch.manual_seed(0)
        y = fn(x)
        outs.append((y, *torch.autograd.grad(y.square().sum(), (x, p_logit))))
    assert all(torch.allclose(a, b, rtol=1e-6, atol=1e-7) for a, b in zip(*outs))
    assert torch.equal(outs[0][0], outs[1][0])
