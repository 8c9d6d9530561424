"""Fused activation + dropout: parity with the unfused pair, gradients, the rewrite, compile and MC dropout."""

import copy

import pytest
import torch
import torch.nn as nn
from _helpers import reference
from _helpers.family import reference_keep, saved_numels
from _helpers.models import output_and_grads, seed_network
from _helpers.reference import TRITON_DEVICE, needs_triton

import dropkit
import dropkit.functional as DF
from dropkit.kernels import cpu

PLAIN = {"relu": torch.relu, "gelu": nn.functional.gelu}


def _input(shape=(5, 37), dtype=torch.float32):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0)).to(dtype)
    x.view(-1)[:3] = torch.tensor([0.0, -0.0, float("nan")])  # relu's edge cases
    return x


def _pair(x, p, seed, activation):
    """The unfused pair, in the fused op's arithmetic: halves through float32 (as dropout does)."""
    c = reference.compute_type(x.dtype)
    return DF.dropout(PLAIN[activation](x.to(c)), p, seed=seed, offset=11).to(x.dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("shape", [(5, 37), (3, 2**17 + 3)])  # the direct path and numba's pool
def test_relu_dropout_is_exactly_the_pair(dtype, shape):
    x = _input(shape, dtype)
    got = DF.activation_dropout(x, 0.3, seed=2**64 - 9, offset=11)
    # Same elementwise ops on the same shape (relu is exact in every dtype): bit for bit.
    assert torch.equal(got.isnan(), x.isnan())
    assert torch.equal(got.nan_to_num(), DF.dropout(torch.relu(x), 0.3, seed=2**64 - 9, offset=11).nan_to_num())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_gelu_dropout_has_the_pairs_mask_and_values_to_erf_rounding(dtype):
    x = _input(dtype=dtype).nan_to_num()
    got = DF.activation_dropout(x, 0.3, activation="gelu", seed=5, offset=11)
    pair = _pair(x, 0.3, 5, "gelu")
    keep = reference_keep(x.shape, 0.3, 5, 11)
    assert torch.equal(got[~keep], torch.zeros_like(got[~keep]))  # masks: exact
    if dtype == torch.bfloat16:  # one rounding of values whose erf differs by an ulp may land on either side
        torch.testing.assert_close(got, pair, atol=0, rtol=2**-7)
    else:  # libm's erf vs torch's: close, not equal
        reference.assert_gelu_close(got, pair, x * 2)


@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_gradient_equals_the_pairs(activation):
    x = _input().nan_to_num()
    g = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    xf, xp = x.clone().requires_grad_(), x.clone().requires_grad_()
    DF.activation_dropout(xf, 0.4, activation=activation, seed=3).backward(g)
    DF.dropout(PLAIN[activation](xp), 0.4, seed=3).backward(g)
    if activation == "relu":  # grad * scale where kept and x > 0: the same elementwise ops, exact
        assert torch.equal(xf.grad, xp.grad)
    else:  # gelu' from libm's erf and exp vs torch's
        torch.testing.assert_close(xf.grad, xp.grad)


@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_gradcheck(activation):
    x = (torch.rand(4, 6, dtype=torch.float64) + 0.1) * torch.tensor([1.0, -1.0]).repeat(3)  # away from relu's kink
    x.requires_grad_()
    assert torch.autograd.gradcheck(lambda t: DF.activation_dropout(t, 0.5, activation=activation, seed=9), (x,))


def test_relu_backward_draws_no_random_numbers_and_saves_only_the_output(monkeypatch):
    x = _input().nan_to_num().requires_grad_()
    assert saved_numels(lambda: DF.activation_dropout(x, 0.5, seed=3)) == [x.numel()]
    y = DF.activation_dropout(x, 0.5, seed=3)
    monkeypatch.setattr(cpu, "dropout_fwd", lambda *a, **k: pytest.fail("backward drew random numbers"))
    y.sum().backward()
    assert torch.equal(x.grad, torch.where(y > 0, 2.0, 0.0))


def test_double_backward_raises():
    x = _input().nan_to_num().requires_grad_()
    (g,) = torch.autograd.grad(DF.activation_dropout(x, 0.5, seed=3).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError):
        g.sum().backward()


def test_p_zero_eval_and_p_one():
    x = _input()
    for out in (DF.activation_dropout(x, 0.0), DF.activation_dropout(x, 0.5, training=False)):
        assert torch.equal(out.nan_to_num(), torch.relu(x).nan_to_num())
    xg = x.nan_to_num().requires_grad_()
    y = DF.activation_dropout(xg, 1.0, activation="gelu")
    y.sum().backward()
    assert torch.equal(y, torch.zeros_like(y)) and torch.equal(xg.grad, torch.zeros_like(xg))


def test_layout_is_kept_and_mask_is_the_contiguous_copys():
    x = torch.randn(2, 3, 4, 5).to(memory_format=torch.channels_last)
    y = DF.activation_dropout(x, 0.5, seed=4)
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(y, DF.activation_dropout(x.contiguous(), 0.5, seed=4))


def test_bad_activation_is_named():
    with pytest.raises(ValueError, match=r"activation must be one of 'relu', 'gelu', got 'tanh'"):
        DF.activation_dropout(torch.ones(2), 0.5, activation="tanh")


@needs_triton
def test_triton_and_torch_backends_agree_with_cpu():
    x = _input((3, 1001)).nan_to_num()
    g = torch.randn(x.shape)
    xc = x.clone().requires_grad_()
    want = DF.activation_dropout(xc, 0.3, seed=8, offset=5)
    want.backward(g)
    for backend in ("triton", "torch"):
        device = TRITON_DEVICE if backend == "triton" else "cpu"
        with dropkit.use_backend(backend):
            xb = x.to(device, copy=True).requires_grad_()
            got = DF.activation_dropout(xb, 0.3, seed=8, offset=5)
            got.backward(g.to(device))
        assert torch.equal(got.detach().cpu(), want.detach())  # the spec on every backend: exact
        assert torch.equal(xb.grad.cpu(), xc.grad)


def _mixed_net():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(6, 16), nn.ReLU(), dropkit.nn.Dropout(0.5),
        nn.Linear(16, 16), nn.GELU(), dropkit.nn.Dropout(0.2),
        nn.Linear(16, 16), nn.GELU(approximate="tanh"), dropkit.nn.Dropout(0.2),
        nn.Linear(16, 16), nn.ReLU(), dropkit.nn.Dropout(0.2, backward="bitpacked"),
        nn.Linear(16, 16), nn.ReLU(), nn.Dropout(0.2),
        nn.Linear(16, 3),
    )  # fmt: skip


def test_rewrite_fuses_only_exact_pairs_and_keeps_names():
    net = _mixed_net()
    keys = list(net.state_dict())
    assert dropkit.fuse_activation_dropout(net) == ["2", "5"]
    assert isinstance(net[2], dropkit.ReLUDropout) and isinstance(net[5], dropkit.GELUDropout)
    assert isinstance(net[1], nn.Identity) and isinstance(net[4], nn.Identity)
    assert [type(net[i]) for i in (7, 8, 11, 14)] == [nn.GELU, dropkit.nn.Dropout, dropkit.nn.Dropout, nn.Dropout]
    assert list(net.state_dict()) == keys
    assert repr(net[2]) == "ReLUDropout(p=0.5)"
    assert dropkit.nn.is_dropout(net[2])


def test_rewritten_seed_network_trains_like_the_original():
    torch.manual_seed(0)
    net = seed_network()
    fused = copy.deepcopy(net)
    assert dropkit.fuse_activation_dropout(fused) == ["2", "5"]
    x = torch.randn(16, 784)
    out, grads = output_and_grads(net, x, seed=3)
    out_f, grads_f = output_and_grads(fused, x, seed=3)
    # Same ops on the same shapes in the same order, relu + dropout fused bit-exactly: equal.
    assert torch.equal(out_f, out)
    for a, b in zip(grads_f, grads):
        assert torch.equal(a, b)
    net.eval(), fused.eval()
    assert torch.equal(fused(x), net(x))


def test_compiled_fused_network_equals_eager():
    torch.manual_seed(0)
    net = _mixed_net()[:7]
    dropkit.fuse_activation_dropout(net)
    x = torch.randn(8, 6)
    eager, eager_grads = output_and_grads(net, x, seed=5)
    out, grads = output_and_grads(torch.compile(net, fullgraph=True), x, seed=5)
    # Compiled, the activation + dropout pairs are integer ops Inductor fuses into its own matmul epilogue
    # and erf (ops/compiled.py), so values agree to rounding; the masks are the spec's bit for bit.
    torch.testing.assert_close(out, eager)
    hidden = net[:6]
    (masks, _), (compiled_masks, _) = (
        output_and_grads(m, x, seed=5) for m in (hidden, torch.compile(hidden, fullgraph=True))
    )
    assert torch.equal(compiled_masks == 0, masks == 0)
    # Inductor may fuse the loss's backward into other kernels: the weight gradients agree to rounding.
    for g, e in zip(grads, eager_grads):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6)


def test_mc_dropout_samples_like_the_unfused_network():
    torch.manual_seed(0)
    net = seed_network().eval()
    fused = copy.deepcopy(net)
    dropkit.fuse_activation_dropout(fused)
    x = torch.randn(4, 784)
    with dropkit.mc_dropout(fused):
        torch.manual_seed(1)
        a, b = fused(x), fused(x)
    assert not torch.equal(a, b)  # stochastic in eval mode inside mc_dropout
    got = dropkit.mc_predict(fused, x, 6, seed=2).samples
    want = dropkit.mc_predict(net, x, 6, seed=2).samples
    assert torch.equal(got, want)  # same masks, same matmuls on the same shapes
