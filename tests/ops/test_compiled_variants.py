"""Every variant with an elementwise or broadcast mask, compiled: eager's outputs and gradients, no mask saved.

One table: each case is a function of one input tensor (what gets the
gradient), its input shape and, where the design keeps something of the
input's size, what that is. Compiled runs (fullgraph, Inductor) draw the same
seeds as eager through dropkit::draw_seed, after the same torch.manual_seed.
Same-shape elementwise results compare with torch.equal; Gaussian noise with
assert_close (Inductor's float64 log, sin and cos are not libm's), as do
gradients that pass through a reduction (a bias's).
"""

import pytest
import torch

import dropkit
import dropkit.functional as DF


def _bias_dropout_add(activation):
    bias = torch.randn(6)
    residual = torch.randn(4, 5, 6)
    return lambda x: DF.bias_dropout_add(x, bias, residual, 0.4, activation=activation)


def _embedding(weight):
    idx = torch.tensor([[0, 3, 3], [7, 1, 0]])
    return DF.embedding_dropout(idx, weight, 0.5)


# name: (f, input shape, exact, saved-of-input-size allowed)
CASES = {
    "alpha": (lambda x: DF.alpha_dropout(x, 0.3, True), (4, 5, 6), True, []),
    "feature_alpha": (lambda x: DF.feature_alpha_dropout(x, 0.3, True), (4, 5, 6, 2), True, []),
    "gaussian_dropout": (lambda x: DF.gaussian_dropout(x, 0.3), (4, 5, 6), False, []),
    "gaussian_noise": (lambda x: DF.gaussian_noise(x, 0.2), (4, 5, 6), False, []),
    "dropout1d": (lambda x: DF.dropout1d(x, 0.5), (4, 5, 6), True, []),
    "dropout2d": (lambda x: DF.dropout2d(x, 0.5), (4, 5, 3, 2), True, []),
    "dropout3d": (lambda x: DF.dropout3d(x, 0.5), (4, 5, 3, 2, 2), True, []),
    "drop_path": (lambda x: DF.drop_path(x, 0.5), (8, 5, 6), True, []),
    "drop_path_unscaled": (lambda x: DF.drop_path(x, 0.5, scale_by_keep=False), (8, 5, 6), True, []),
    "locked": (lambda x: DF.locked_dropout(x, 0.5), (4, 5, 6), True, []),
    "embedding": (_embedding, (9, 4), True, []),
    "drop_connect": (lambda w: DF.drop_connect(w, 0.5), (7, 9), True, []),
    "bias_dropout_add": (_bias_dropout_add(None), (4, 5, 6), True, []),
    # relu's backward needs y > 0 (one bool), as compiled relu alone keeps: no separate dropout mask
    "bias_relu_dropout_add": (_bias_dropout_add("relu"), (4, 5, 6), True, [torch.bool]),
}


def _saved(fn, x):
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        fn(x)
    return saved


def _run(fn, x, g, seed):
    x.grad = None
    torch.manual_seed(seed)
    y = fn(x)
    y.backward(g)
    return y.detach(), x.grad.clone()


@pytest.mark.parametrize("name", CASES)
def test_compiled_variant_equals_eager_and_saves_no_mask(name):
    f, shape, exact, allowed = CASES[name]
    torch._dynamo.reset()
    x = torch.randn(shape, requires_grad=True)
    compiled = torch.compile(f, fullgraph=True)
    g = torch.randn_like(f(x.detach()))
    eager_y, eager_g = _run(f, x, g, 11)
    y, grad = _run(compiled, x, g, 11)
    if exact:
        assert torch.equal(y, eager_y) and torch.equal(grad, eager_g)
    else:
        torch.testing.assert_close(y, eager_y)
        torch.testing.assert_close(grad, eager_g)
    assert (y != 0).any() and (grad != 0).any()  # something was kept: not a comparison of zeros
    big = [t.dtype for t in _saved(compiled, x) if t.numel() >= x.numel()]
    assert big == allowed, [(tuple(t.shape), t.dtype) for t in _saved(compiled, x)]
    torch._dynamo.reset()


def test_compiled_variants_take_the_decomposed_form():
    # No call of an opaque dropkit op but the seed draw: Inductor sees every mask.
    calls = []

    def backend(gm, inputs):
        for module in gm.modules():  # the seed draw sits in a checkpoint region's subgraph
            if isinstance(module, torch.fx.GraphModule):
                calls.extend(str(n.target) for n in module.graph.nodes if n.op == "call_function")
        return gm

    torch._dynamo.reset()
    for f, shape, *_ in CASES.values():
        torch.compile(f, backend=backend, fullgraph=True)(torch.randn(shape))
    torch._dynamo.reset()
    assert {c for c in calls if "dropkit" in c} == {"dropkit.draw_seed.default"}


def test_compiled_sample_addressed_masks_equal_eager():
    # The addressed (seed, shift) pair travels as tensor data into the decomposed mask.
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), dropkit.nn.Dropout(0.5), dropkit.nn.DropPath(0.5))
    x = torch.randn(6, 8)
    compiled = torch.compile(model, fullgraph=True)
    with dropkit.sample_addressed(model, seed=2**63 + 5) as addr:
        for micro in range(2):
            addr.set_step(1, sample_offset=micro * 6)
            assert torch.equal(compiled(x) == 0, model(x) == 0), micro
