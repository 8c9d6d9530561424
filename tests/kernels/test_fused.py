"""Fused bias + activation + dropout + residual: every backend equals the unfused reference, gradients included."""

import os

import pytest
import torch
from _helpers import reference as ref
from _helpers.devices import FLOAT_DTYPES

from dropkit import _mode, kernels, rng
from dropkit.functional import bias_dropout_add
from dropkit.kernels import cpu_common, cpu_fused
from dropkit.kernels import torch as torch_backend
from dropkit.nn import BiasDropoutAdd

BACKENDS = {"cpu": (cpu_fused, "cpu"), "torch": (torch_backend, "cpu")}
if ref.TRITON_DEVICE == "cuda" or os.environ.get("TRITON_INTERPRET") == "1":
    from dropkit.kernels import triton as triton_kernels

    BACKENDS["triton"] = (triton_kernels, ref.TRITON_DEVICE)

SEED, OFFSET = 2**63 + 9, 5  # a seed above 2^63, an offset that is not a multiple of 4
SHAPES = [(3, 37), (5, 16), (2, 3, 8)]  # odd last dim, last dim a multiple of 8, three dims


def _inputs(shape, dtype, bias=True):
    g = torch.Generator().manual_seed(sum(shape))
    x, r, grad = (torch.randn(shape, generator=g).to(dtype) for _ in range(3))
    b = torch.randn(shape[-1], generator=g).to(dtype) if bias else None
    return x, b, r, grad


def _h_bound(x, b, p):
    h = x.double() if b is None else x.double() + b.double()
    return h.abs() * rng.scale(p) if p < 1 else h.abs()


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("activation", [None, "relu", "gelu"])
@pytest.mark.parametrize(
    "shape,p,bias", [(SHAPES[0], 0.3, True), (SHAPES[1], 1.0, True), (SHAPES[2], 0.0, False), (SHAPES[1], 0.5, False)]
)
def test_forward_and_backward_kernels_equal_reference(name, dtype, activation, shape, p, bias):
    k, dev = BACKENDS[name]
    x, b, r, grad = _inputs(shape, dtype, bias)
    on = lambda t: None if t is None else t.to(dev)  # noqa: E731
    out = k.bias_dropout_add_fwd(on(x), on(b), on(r), SEED, OFFSET, p, activation).cpu()
    grad_h = k.bias_dropout_add_bwd(on(grad), on(x), on(b), SEED, OFFSET, p, activation).cpu()
    want_out = ref.fused(x, b, r, SEED, OFFSET, p, activation)
    want_grad = ref.fused_grad_h(grad, x, b, SEED, OFFSET, p, activation)
    if activation != "gelu":
        assert torch.equal(out, want_out)
        assert torch.equal(grad_h, want_grad)
        return
    dropped = ~ref.keep(shape, p, SEED, OFFSET)
    assert torch.equal(out[dropped], r[dropped])  # the mask is exact: dropped elements are the residual
    assert torch.equal(grad_h[dropped], torch.zeros_like(grad_h[dropped]))
    ref.assert_gelu_close(out, want_out, _h_bound(x, b, p))
    ref.assert_gelu_close(grad_h, want_grad, _h_bound(x, b, p) * (grad.double().abs() + 1))


@pytest.mark.parametrize("activation", [None, "relu"])
def test_cpu_thread_pool_path_equals_reference(activation):
    # From cpu_common.PARALLEL_MIN elements on, the fused kernel runs on numba's pool; smaller inputs serially.
    shape = (cpu_common.PARALLEL_MIN // 1000 + 3, 1000)
    x, b, r, grad = _inputs(shape, torch.float32)
    assert torch.equal(
        cpu_fused.bias_dropout_add_fwd(x, b, r, SEED, OFFSET, 0.3, activation),
        ref.fused(x, b, r, SEED, OFFSET, 0.3, activation),
    )
    assert torch.equal(
        cpu_fused.bias_dropout_add_bwd(grad, x, b, SEED, OFFSET, 0.3, activation),
        ref.fused_grad_h(grad, x, b, SEED, OFFSET, 0.3, activation),
    )


@pytest.mark.parametrize("activation", [None, "relu", "gelu"])
def test_backends_agree_through_the_functional(activation):
    x, b, r, grad = _inputs((4, 24), torch.float32)
    results = []
    for name in BACKENDS:
        leaves = [t.clone().requires_grad_() for t in (x, b, r)]
        with kernels.use_backend(name):
            out = bias_dropout_add(*leaves, 0.4, activation=activation, seed=SEED, offset=OFFSET)
        out.backward(grad)
        results.append([out.detach()] + [t.grad for t in leaves])
    for other in results[1:]:
        for got, want in zip(other, results[0]):
            if activation == "gelu":
                torch.testing.assert_close(got, want, rtol=4e-7, atol=4e-7)  # erf implementations differ by an ulp
            else:
                assert torch.equal(got, want)


@pytest.mark.parametrize("activation", [None, "relu", "gelu"])
def test_gradients_of_x_bias_and_residual(activation):
    x, b, r, grad = _inputs((6, 9), torch.float64)
    leaves = [t.clone().requires_grad_() for t in (x, b, r)]
    bias_dropout_add(*leaves, 0.3, activation=activation, seed=SEED, offset=OFFSET).backward(grad)
    grad_h = ref.fused_grad_h(grad, x, b, SEED, OFFSET, 0.3, activation)
    torch.testing.assert_close(leaves[0].grad, grad_h, rtol=1e-14, atol=1e-15)
    torch.testing.assert_close(leaves[1].grad, grad_h.sum(0), rtol=1e-14, atol=1e-15)
    assert torch.equal(leaves[2].grad, grad)


@pytest.mark.parametrize("activation", [None, "relu", "gelu"])
def test_gradcheck(activation):
    x, b, r, _ = _inputs((3, 10), torch.float64)
    leaves = [t.clone().requires_grad_() for t in (x, b, r)]
    fn = lambda x, b, r: bias_dropout_add(x, b, r, 0.4, activation=activation, seed=17, offset=3)  # noqa: E731
    assert torch.autograd.gradcheck(fn, leaves)


@pytest.mark.parametrize("activation", [None, "relu", "gelu"])
def test_backward_saves_no_mask(activation):
    x, b, r, _ = _inputs((64, 32), torch.float32)
    leaves = [t.clone().requires_grad_() for t in (x, b, r)]
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        bias_dropout_add(*leaves, 0.5, activation=activation, seed=1)
    big = [t for t in saved if t.numel() > 1]
    if activation is None:
        assert big == []
    else:  # x and bias themselves, to recompute h = x + bias: no new memory
        assert sorted(t.data_ptr() for t in big) == sorted(t.data_ptr() for t in leaves[:2])


def test_half_types_round_once():
    x, b, r, _ = _inputs((8, 16), torch.bfloat16)
    out = bias_dropout_add(x, b, r, 0.3, activation="relu", seed=SEED)
    # the unfused bf16 expression rounds after every step; the fused op only at the end
    assert torch.equal(out, ref.fused(x, b, r, SEED, 0, 0.3, "relu"))
    unfused = r + ref.dropout(torch.relu(x + b), SEED, 0, 0.3)
    assert not torch.equal(out, unfused)


def test_mask_is_dropouts_mask_and_follows_logical_order():
    x, b, r, _ = _inputs((16, 8), torch.float32)
    out = bias_dropout_add(x.t(), None, r.t(), 0.5, seed=3, offset=6)
    assert torch.equal(out, ref.fused(x.t().contiguous(), None, r.t().contiguous(), 3, 6, 0.5, None))
    assert torch.equal(out == r.t(), ~ref.keep((8, 16), 0.5, 3, 6))


def test_eval_is_one_pass_without_dropout_and_draws_nothing():
    x, b, r, _ = _inputs((4, 8), torch.float32)
    state = torch.get_rng_state()
    out = bias_dropout_add(x, b, r, 0.5, training=False, activation="gelu")
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(out, cpu_fused.bias_dropout_add_fwd(x, b, r, 0, 0, 0.0, "gelu"))  # the backend that ran
    with _mode.mc_enabled():
        assert not torch.equal(bias_dropout_add(x, b, r, 0.5, training=False, activation="gelu"), out)


def test_seed_from_torch_generator():
    x, b, r, _ = _inputs((4, 8), torch.float32)
    torch.manual_seed(5)
    first = bias_dropout_add(x, b, r, 0.5)
    second = bias_dropout_add(x, b, r, 0.5)
    torch.manual_seed(5)
    assert torch.equal(bias_dropout_add(x, b, r, 0.5), first) and not torch.equal(first, second)


def test_compiled_equals_eager():
    torch.manual_seed(0)
    layer = torch.nn.Linear(16, 16, bias=False)
    fuse = BiasDropoutAdd(16, p=0.3, activation="gelu")
    fuse.bias.data.normal_()

    def block(x):  # two fused calls on the same tensor must draw two masks
        return fuse(layer(x), x) + fuse(layer(x), x)

    x = torch.randn(8, 16)
    outs = []
    for fn in (block, torch.compile(block, fullgraph=True)):
        torch.manual_seed(1)
        out = fn(x)
        out.square().sum().backward()
        outs.append((out.detach(), fuse.bias.grad.clone()))
        fuse.zero_grad(), layer.zero_grad()
    assert torch.equal(outs[0][0], outs[1][0])
    torch.testing.assert_close(outs[0][1], outs[1][1], rtol=1e-5, atol=1e-6)  # Inductor fuses the loss backward


def test_module():
    m = BiasDropoutAdd(8, p=0.25, activation="relu", bias=False)
    assert repr(m) == "BiasDropoutAdd(8, p=0.25, activation='relu', bias=False)"
    assert list(m.parameters()) == []
    x, _, r, _ = _inputs((3, 8), torch.float32)
    torch.manual_seed(2)
    y = m(x, r)
    torch.manual_seed(2)
    assert torch.equal(y, bias_dropout_add(x, None, r, 0.25, activation="relu"))
    assert torch.equal(m.eval()(x, r), r + torch.relu(x))
    assert [n for n, _ in BiasDropoutAdd(8).named_parameters()] == ["bias"]


def test_errors():
    x = torch.ones(2, 4)
    with pytest.raises(ValueError, match=r"activation must be one of None, 'relu', 'gelu', got 'tanh'"):
        bias_dropout_add(x, None, x, 0.1, activation="tanh")
    with pytest.raises(ValueError, match=r"bias must be a 1-D tensor of size x.shape\[-1\] \(4\), got shape \(2, 4\)"):
        bias_dropout_add(x, x, x, 0.1)
    with pytest.raises(ValueError, match=r"residual must have x's shape \(2, 4\), got \(4,\)"):
        bias_dropout_add(x, None, torch.ones(4), 0.1)
    with pytest.raises(
        TypeError, match=r"residual must have x's dtype and device \(torch.float32, cpu\), got \(torch.float64, cpu\)"
    ):
        bias_dropout_add(x, None, x.double(), 0.1)
    with pytest.raises(ValueError, match=r"p must be between 0 and 1, got 1.5"):
        bias_dropout_add(x, None, x, 1.5)
    with pytest.raises(ValueError, match=r"features must be >= 1, got 0"):
        BiasDropoutAdd(0)


def test_double_backward_raises_instead_of_returning_zeros():
    x = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    b = torch.randn(6, dtype=torch.float64, requires_grad=True)
    r = torch.randn(4, 6, dtype=torch.float64)
    for activation in (None, "relu", "gelu"):
        out = bias_dropout_add(x, b, r, 0.3, activation=activation, seed=3)
        (gx,) = torch.autograd.grad(out.sum(), x, create_graph=True)
        with pytest.raises(RuntimeError, match="does not require grad|once_differentiable"):
            torch.autograd.grad(gx.sum(), x)
