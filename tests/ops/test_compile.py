"""torch.compile, activation checkpointing and torch's RNG tools work with dropkit dropout."""

import pytest
import torch
import torch.nn as nn
from _helpers.models import output_and_grads as _run
from _helpers.models import seed_network
from torch.utils.checkpoint import checkpoint

import dropkit
import dropkit.functional as DF


@pytest.mark.parametrize("backward", ["recompute", "bitpacked"])
def test_compiled_seed_network_equals_eager(backward):
    torch.manual_seed(0)
    model = seed_network(lambda p: dropkit.nn.Dropout(p, backward=backward))
    x = torch.randn(32, 784)
    eager, eager_grads = _run(model, x, seed=3)
    compiled = torch.compile(model, fullgraph=True)
    out, grads = _run(compiled, x, seed=3)
    assert torch.equal(out, eager)
    # Inductor fuses the loss's backward (2 * out * grad) into other kernels, so weight
    # gradients agree to float rounding only; the dropout gradient itself is exact (below).
    for g, e in zip(grads, eager_grads):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6)
    out2, _ = _run(compiled, x, seed=4)
    assert not torch.equal(out2, eager)


@pytest.mark.parametrize("backward", ["recompute", "bitpacked"])
def test_compiled_dropout_gradient_is_exactly_eager(backward):
    def f(x):
        return DF.dropout(x, 0.4, backward=backward) * 3.0

    x = torch.randn(40, 50, requires_grad=True)
    g = torch.randn(40, 50)
    torch.manual_seed(2)
    f(x).backward(g)
    eager = x.grad
    x.grad = None
    torch.manual_seed(2)
    torch.compile(f, fullgraph=True)(x).backward(g)
    assert torch.equal(x.grad, eager)


def test_two_dropouts_on_the_same_tensor_get_different_masks_when_compiled():
    def f(x):
        return DF.dropout(x, 0.5), DF.dropout(x, 0.5)

    x = torch.randn(64, 64)
    torch.manual_seed(1)
    a, b = f(x)
    torch.manual_seed(1)
    ca, cb = torch.compile(f, fullgraph=True)(x)
    assert not torch.equal(a, b)
    assert torch.equal(ca, a) and torch.equal(cb, b)


def test_compiled_explicit_seed_and_inplace():
    def f(x, h):
        y = DF.dropout(x, 0.3, seed=2**64 - 1, offset=2**35)
        DF.dropout(h, 0.5, inplace=True, seed=5)
        return y

    x = torch.randn(100)
    h1, h2 = torch.randn(50), None
    h2 = h1.clone()
    y = f(x, h1)
    cy = torch.compile(f, fullgraph=True)(x, h2)
    assert torch.equal(cy, y) and torch.equal(h2, h1)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(32, 32), nn.Linear(32, 32)
        self.drop = dropkit.nn.Dropout(0.5)

    def forward(self, x):
        return self.b(self.drop(torch.relu(self.a(x))))


def test_checkpoint_recomputes_the_same_mask():
    torch.manual_seed(0)
    block = Block()
    x = torch.randn(16, 32, requires_grad=True)
    torch.manual_seed(7)
    plain = block(x)
    plain.sum().backward()
    plain_grads = [p.grad.clone() for p in block.parameters()] + [x.grad.clone()]
    block.zero_grad()
    x.grad = None
    torch.manual_seed(7)
    ck = checkpoint(block, x, use_reentrant=False)
    ck.sum().backward()
    assert torch.equal(ck, plain)
    for g, e in zip([p.grad for p in block.parameters()] + [x.grad], plain_grads):
        assert torch.equal(g, e)


def test_saving_and_restoring_rng_state_reproduces_the_mask():
    m = dropkit.nn.Dropout(0.5)
    x = torch.randn(1000)
    state = torch.get_rng_state()
    a = m(x)
    torch.set_rng_state(state)
    assert torch.equal(m(x), a)


def test_a_generator_under_compile_raises_a_clear_error():
    g = torch.Generator().manual_seed(0)
    f = torch.compile(lambda x: DF.dropout(x, 0.5, generator=g), fullgraph=True)
    with pytest.raises(Exception, match="generator=.* cannot be used under torch.compile; pass seed="):
        f(torch.randn(8))
