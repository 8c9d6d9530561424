"""dropout_linear: linear(dropout(x)) keeping x and the seed, never the dropped copy.

Parity with dropkit Dropout followed by Linear: both run F.linear on the same dropped
tensor forward and torch's linear-backward matmuls (grad @ W, grad^T @ dropped) on the
same 2-D shapes backward, so in float32 the results are bit-identical by construction on
any machine (same BLAS calls on the same shapes); torch.equal is the right comparison.
"""

import pytest
import torch
import torch._dynamo.testing
import torch.nn as nn
from _helpers.family import reference_keep

import dropkit
import dropkit.functional as DF

G = torch.Generator().manual_seed(0)


def _args(shape=(3, 5, 24), out=10, dtype=torch.float32, bias=True):
    x = torch.randn(shape, generator=G).to(dtype)
    w = torch.randn(out, shape[-1], generator=G).to(dtype)
    b = torch.randn(out, generator=G).to(dtype) if bias else None
    return x, w, b


def _leaves(*ts):
    return [None if t is None else t.clone().requires_grad_() for t in ts]


def _run(fn, x, w, b, g):
    x, w, b = _leaves(x, w, b)
    y = fn(x, w, b)
    y.backward(g)
    return y.detach(), [t.grad for t in (x, w, b) if t is not None]


def _fused(p, seed, offset=0):
    return lambda x, w, b: DF.dropout_linear(x, w, b, p, seed=seed, offset=offset)


def _pair(p, seed, offset=0):
    return lambda x, w, b: nn.functional.linear(DF.dropout(x, p, seed=seed, offset=offset), w, b)


@pytest.mark.parametrize("shape", [(3, 5, 24), (7, 24), (2, 2**15 + 3)])  # 3-D, 2-D, numba's threaded path
@pytest.mark.parametrize("bias", [True, False])
def test_outputs_and_gradients_are_bit_identical_to_dropout_then_linear_fp32(shape, bias):
    x, w, b = _args(shape, bias=bias)
    g = torch.randn((*shape[:-1], 10), generator=G)
    got, got_grads = _run(_fused(0.3, 2**64 - 5, 17), x, w, b, g)
    want, want_grads = _run(_pair(0.3, 2**64 - 5, 17), x, w, b, g)
    assert torch.equal(got, want)
    for a, e in zip(got_grads, want_grads, strict=True):
        assert torch.equal(a, e)


def test_weight_gradient_alone_is_bit_identical_too():
    # x does not require grad (a frozen layer's input in LoRA): backward rebuilds dropout(x) only.
    x, w, _ = _args(bias=False)
    g = torch.randn(3, 5, 10, generator=G)
    wf, wp = _leaves(w, w)
    DF.dropout_linear(x, wf, None, 0.2, seed=4).backward(g)
    nn.functional.linear(DF.dropout(x, 0.2, seed=4), wp).backward(g)
    assert torch.equal(wf.grad, wp.grad)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_is_close_to_the_pair(dtype):
    x, w, b = _args(dtype=dtype)
    g = torch.randn(3, 5, 10, generator=G).to(dtype)
    got, got_grads = _run(_fused(0.3, 9), x, w, b, g)
    want, want_grads = _run(_pair(0.3, 9), x, w, b, g)
    # The same ops in the same dtype; compared at the dtype's tolerance as matmul results.
    torch.testing.assert_close(got, want)
    for a, e in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(a, e)


def test_input_gradient_is_zero_exactly_where_the_mask_drops():
    x, w, _ = _args((6, 24), bias=False)
    xg = x.clone().requires_grad_()
    DF.dropout_linear(xg, w, None, 0.5, seed=3, offset=5).sum().backward()
    keep = reference_keep(x.shape, 0.5, 3, 5)
    assert torch.equal(xg.grad[~keep], torch.zeros_like(xg.grad[~keep]))
    assert bool((xg.grad[keep] != 0).all())


def test_only_x_weight_and_the_seed_are_saved():
    x, w, b = _leaves(*_args())
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        DF.dropout_linear(x, w, b, 0.5, seed=1)
    # Nothing of x's size but x itself: the same storage, no dropped copy and no mask.
    big = [t for t in saved if t.numel() >= x.numel()]
    assert len(big) == 1 and big[0].untyped_storage().data_ptr() == x.untyped_storage().data_ptr()
    assert all(t.numel() <= w.numel() for t in saved if t is not big[0])
    pair = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: pair.append(t) or t, lambda t: t):
        nn.functional.linear(DF.dropout(x, 0.5, seed=1), w, b)
    assert any(t.numel() == x.numel() and t.data_ptr() != x.data_ptr() for t in pair)  # the pair keeps a copy


def test_gradcheck_fp64():
    x, w, b = _leaves(*(t.double() for t in _args((4, 6), out=3)))
    assert torch.autograd.gradcheck(lambda *t: DF.dropout_linear(*t, 0.4, seed=8), (x, w, b))


def test_double_backward_raises():
    x, w, b = _leaves(*_args((4, 6), out=3))
    (gx,) = torch.autograd.grad(DF.dropout_linear(x, w, b, 0.5, seed=3).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError):
        gx.sum().backward()


def test_p_zero_and_eval_are_the_linear_and_draw_nothing():
    x, w, b = _args()
    state = torch.get_rng_state()
    for y in (DF.dropout_linear(x, w, b, 0.0), DF.dropout_linear(x, w, b, 0.7, training=False)):
        assert torch.equal(y, nn.functional.linear(x, w, b))
    assert torch.equal(torch.get_rng_state(), state)


def test_p_one_gives_the_bias_and_zero_gradients():
    x, w, b = _leaves(*_args())
    y = DF.dropout_linear(x, w, b, 1.0)
    y.sum().backward()
    assert torch.equal(y, b.detach().expand_as(y))
    assert torch.equal(x.grad, torch.zeros_like(x)) and torch.equal(w.grad, torch.zeros_like(w))
    assert torch.equal(b.grad, torch.full_like(b, 15.0))


def test_seed_from_torch_generator_reproduces():
    x, w, b = _args()
    torch.manual_seed(3)
    a = DF.dropout_linear(x, w, b, 0.5)
    torch.manual_seed(3)
    assert torch.equal(a, DF.dropout_linear(x, w, b, 0.5))
    gen = torch.Generator().manual_seed(1)
    torch.manual_seed(3)
    want = nn.functional.linear(dropkit.nn.Dropout(0.5)(x), w, b)
    assert torch.equal(a, want)  # one draw from torch's generator each, the same mask
    assert not torch.equal(DF.dropout_linear(x, w, b, 0.5, generator=gen), a)


def test_non_contiguous_input_gets_its_contiguous_copys_mask():
    _, w, b = _args((5, 3, 24))
    xt = torch.randn(5, 24, 3, generator=G).transpose(1, 2)
    g = torch.randn(5, 3, 10, generator=G)
    got, got_grads = _run(_fused(0.3, 2), xt, w, b, g)
    pair, pair_grads = _run(_pair(0.3, 2), xt, w, b, g)
    assert torch.equal(got, pair)  # the same F.linear call on the same strided dropped tensor
    # torch's backward of a strided matmul may batch it; ours runs the 2-D mm: close
    for a, e in zip(got_grads, pair_grads, strict=True):
        torch.testing.assert_close(a, e)
    torch.testing.assert_close(got, _run(_fused(0.3, 2), xt.contiguous(), w, b, g)[0])


def test_module_is_a_drop_in_for_dropout_then_linear():
    torch.manual_seed(0)
    lin = nn.Linear(24, 10)
    fused = dropkit.nn.DropoutLinear.from_linear(lin, 0.25)
    assert fused.weight is lin.weight and fused.bias is lin.bias
    assert list(fused.state_dict()) == ["weight", "bias"]
    assert repr(fused) == "DropoutLinear(in_features=24, out_features=10, bias=True, p=0.25)"
    pair = nn.Sequential(dropkit.nn.Dropout(0.25), lin)
    x = torch.randn(4, 24)
    torch.manual_seed(5)
    a = fused(x)
    torch.manual_seed(5)
    assert torch.equal(a, pair(x))
    fused.eval()
    assert torch.equal(fused(x), lin(x))
    assert dropkit.nn.is_dropout(fused)
    assert dropkit.set_dropout(nn.Sequential(fused), 0.1) == ["0"] and fused.p == 0.1


def test_mc_dropout_and_consistent_mc_reach_it():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 24), dropkit.nn.DropoutLinear(24, 3, p=0.5)).eval()
    pair = nn.Sequential(model[0], dropkit.nn.Dropout(0.5), nn.Linear(24, 3)).eval()
    pair[2].load_state_dict(model[1].state_dict())
    x = torch.randn(4, 6)
    with dropkit.mc_dropout(model):
        assert not torch.equal(model(x), model(x))
    for consistent in (False, True):
        got = dropkit.mc_predict(model, x, 5, seed=2, consistent=consistent).samples
        want = dropkit.mc_predict(pair, x, 5, seed=2, consistent=consistent).samples
        torch.testing.assert_close(got, want)  # same masks; batched matmuls of the same shapes


def test_sample_addressed_masks_do_not_depend_on_the_split():
    torch.manual_seed(0)
    model = nn.Sequential(dropkit.nn.DropoutLinear(8, 4, p=0.5))
    pair = nn.Sequential(dropkit.nn.Dropout(0.5), nn.Linear(8, 4))
    pair[1].load_state_dict(model[0].state_dict())
    x = torch.randn(8, 8)
    outs = {}
    for name, m in (("fused", model), ("pair", pair)):
        with dropkit.sample_addressed(m, seed=6) as addr:
            addr.set_step(2, sample_offset=0)
            whole = m(x)
            parts = []
            for i in range(2):
                addr.set_step(2, sample_offset=4 * i)
                parts.append(m(x[4 * i : 4 * i + 4]))
        torch.testing.assert_close(torch.cat(parts), whole)  # another batch shape: close
        outs[name] = whole
    # The pair's dropout is named "0" too, so both draw the mask of layer "0": the same mask.
    assert torch.equal(outs["fused"], outs["pair"])


def test_compile_fullgraph_matches_eager():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(6, 16), dropkit.nn.DropoutLinear(16, 16, p=0.3), dropkit.nn.DropoutLinear(16, 3, p=0.3)
    )
    x = torch.randn(8, 6, requires_grad=True)
    counter = torch._dynamo.testing.CompileCounterWithBackend("aot_eager")
    compiled = torch.compile(model, fullgraph=True, backend=counter)
    results = []
    for m in (model, compiled):
        torch.manual_seed(4)
        y = m(x)
        y.square().sum().backward()
        results.append((y.detach(), [p.grad.clone() for p in model.parameters()], x.grad.clone()))
        model.zero_grad(), x.grad.zero_()
    (ye, ge, xe), (yc, gc, xc) = results
    # aot_eager runs the custom ops' own kernels on the same shapes: bit-equal.
    assert torch.equal(yc, ye) and torch.equal(xc, xe)
    for a, e in zip(gc, ge, strict=True):
        assert torch.equal(a, e)
    assert counter.frame_count == 1


def test_compile_inductor_runs_the_op():
    torch.manual_seed(0)
    lin = dropkit.nn.DropoutLinear(16, 4, p=0.5)
    x = torch.randn(8, 16)
    torch.manual_seed(2)
    eager = lin(x)
    torch.manual_seed(2)
    got = torch.compile(lin, fullgraph=True)(x)
    torch.testing.assert_close(got, eager)  # Inductor may lower the matmul differently


def test_bad_arguments_are_named():
    x, w, b = _args((4, 6), out=3)
    with pytest.raises(ValueError, match=r"p must be between 0 and 1, got 1.5"):
        DF.dropout_linear(x, w, b, 1.5)
    with pytest.raises(
        ValueError,
        match=r"weight must be a 2-D tensor \(out_features, input.shape\[-1\]\) = \(\*, 6\), got shape \(3, 5\)",
    ):
        DF.dropout_linear(x, w[:, :5], b, 0.5)
    with pytest.raises(ValueError, match=r"bias must be a 1-D tensor of size out_features \(3\), got shape \(4,\)"):
        DF.dropout_linear(x, w, torch.zeros(4), 0.5)
    with pytest.raises(TypeError, match=r"weight must have x's dtype and device"):
        DF.dropout_linear(x, w.double(), b, 0.5)
    with pytest.raises(TypeError, match=r"input must have a floating dtype"):
        DF.dropout_linear(x.long(), w, b, 0.5)
    with pytest.raises(TypeError, match=r"linear must be an instance of Linear, got Conv1d"):
        dropkit.nn.DropoutLinear.from_linear(nn.Conv1d(2, 2, 1), 0.5)


def test_opcheck_of_the_typed_ops():
    x, w, b = _leaves(*_args((4, 6), out=3))
    seed = torch.tensor(7)
    torch.library.opcheck(torch.ops.dropkit.dropout_linear.default, (x, w, b, seed, 2, 0.5))
    g = torch.randn(4, 3)
    for need_x, need_w in ((True, True), (True, False), (False, True)):
        args = (g, x.detach(), w.detach() if need_x else None, seed, 2, 0.5, need_x, need_w)
        torch.library.opcheck(torch.ops.dropkit.dropout_linear_backward.default, args)


def test_two_fused_layers_on_the_same_tensor_draw_different_masks_when_compiled():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = dropkit.nn.DropoutLinear(16, 16, bias=False, p=0.5)
            self.b = dropkit.nn.DropoutLinear.from_linear(self.a, 0.5)  # same weight: only the masks differ

        def forward(self, x):
            return self.a(x), self.b(x)

    x = torch.randn(8, 16)
    a, b = torch.compile(Twice(), fullgraph=True, backend="aot_eager")(x)
    assert not torch.equal(a, b)


def test_checkpoint_recomputes_the_same_mask():
    torch.manual_seed(0)
    block = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), dropkit.nn.DropoutLinear(16, 4, p=0.5))
    x = torch.randn(6, 8, requires_grad=True)
    grads = []
    for wrap in (lambda t: block(t), lambda t: torch.utils.checkpoint.checkpoint(block, t, use_reentrant=False)):
        torch.manual_seed(2)
        wrap(x).square().sum().backward()
        grads.append([x.grad.clone()] + [p.grad.clone() for p in block.parameters()])
        block.zero_grad(), x.grad.zero_()
    for a, e in zip(*grads, strict=True):
        assert torch.equal(a, e)  # the recomputed forward draws the same seed: the same ops, equal
