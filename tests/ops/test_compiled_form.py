"""The decomposed form under torch.compile: the eager masks, outputs and gradients, nothing of the mask's size saved.

Dropout and relu + dropout are the same elementwise ops on the same shapes in
both modes, so they compare with torch.equal. Gelu compares with assert_close:
Inductor's erf is not libm's (the masks are still the eager ones).
"""

import pytest
import torch
import torch._functorch.config
import torch._inductor.config
from torch.utils.checkpoint import checkpoint

import dropkit
import dropkit.functional as DF


def _saved(fn, *args):
    """(shape, dtype) of every tensor autograd saves while fn(*args) runs."""
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append((tuple(t.shape), t.dtype)) or t, lambda t: t):
        out = fn(*args)
    return out, saved


def _eager_and_compiled(f, x, g, seed=3):
    """(output, x.grad) of f(x) backward g, eager then compiled, both after torch.manual_seed(seed)."""
    results = []
    for fn in (f, torch.compile(f, fullgraph=True)):
        x.grad = None
        torch.manual_seed(seed)
        y = fn(x)
        y.backward(g)
        results.append((y.detach(), x.grad.clone()))
    return results


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_compiled_dropout_equals_eager_and_saves_only_the_seed(dtype):
    def f(x):
        return DF.dropout(x, 0.4) * 3.0

    x = torch.randn(37, 29, dtype=dtype, requires_grad=True)  # 1073 elements: not a multiple of 4
    g = torch.randn(37, 29, dtype=dtype)
    # Inductor keeps a fused chain of half-type ops in float32 unless told to round where eager does;
    # without this the `* 3.0` differs by an ulp although dropout's own output is exact.
    with torch._inductor.config.patch(emulate_precision_casts=True):
        (ey, eg), (cy, cg) = _eager_and_compiled(f, x, g)
    assert torch.equal(cy, ey) and torch.equal(cg, eg)
    _, saved = _saved(torch.compile(f, fullgraph=True), x)
    assert saved == [((), torch.int64)]  # the seed: the mask is rebuilt in the backward loop


def test_compiled_relu_dropout_equals_eager_and_saves_only_its_output():
    m = dropkit.nn.ReLUDropout(0.5)
    x = torch.randn(64, 33, requires_grad=True)
    g = torch.randn(64, 33)
    (ey, eg), (cy, cg) = _eager_and_compiled(m, x, g)
    assert torch.equal(cy, ey) and torch.equal(cg, eg)
    _, saved = _saved(torch.compile(m, fullgraph=True), x)
    _, relu_saved = _saved(torch.compile(torch.relu, fullgraph=True), x)
    # What compiled relu alone keeps (one bool of x's shape: y > 0 holds relu's and dropout's mask at once)
    assert saved == relu_saved == [((64, 33), torch.bool)]


def test_compiled_gelu_dropout_has_the_eager_mask():
    m = dropkit.nn.GELUDropout(0.3)
    x = torch.randn(50, 21, requires_grad=True)
    g = torch.randn(50, 21)
    (ey, eg), (cy, cg) = _eager_and_compiled(m, x, g)
    assert torch.equal(cy == 0, ey == 0)  # the same elements dropped
    torch.testing.assert_close(cy, ey)  # erf differs between Inductor and libm by an ulp
    torch.testing.assert_close(cg, eg)


def test_compiled_channel_masks_are_independent_and_equal_eager():
    # torch's compiled rand4x path repeats masks in groups of four channels; the spec draws each element.
    def f(x):
        return DF.dropout(x, 0.5)

    x = torch.ones(2, 64, 4, 4)
    torch.manual_seed(5)
    eager = f(x)
    torch.manual_seed(5)
    compiled = torch.compile(f, fullgraph=True)(x)
    assert torch.equal(compiled, eager)
    groups = compiled.view(2, 16, 4, 16)  # (batch, group of four channels, channel in group, element)
    same = (groups == groups[:, :, :1]).all(-1).all(-1)  # all four channels share one mask
    assert not same.any()


@torch._functorch.config.patch(activation_memory_budget=0.5)
def test_compiled_gradients_equal_eager_under_an_activation_memory_budget():
    # Below 1.0 the partitioner recomputes forward ops in backward; torch's compiled dropout then
    # draws fresh masks there. The decomposed mask is a function of (seed, offset, index), and the
    # seed draw itself is saved, never recomputed (ops/seed.py): the same masks.
    torch._dynamo.reset()
    w = torch.randn(48, 48)

    def f(x):
        h = DF.dropout(torch.relu(x @ w), 0.5)
        return DF.dropout(h * x, 0.3) * x

    x = torch.randn(16, 48, requires_grad=True)
    g = torch.randn(16, 48)
    (ey, eg), (cy, cg) = _eager_and_compiled(f, x, g)
    assert torch.equal(cy == 0, ey == 0)  # every mask the eager one (a zero where any dropped)
    torch.testing.assert_close(cy, ey)  # through a matmul: close, not bitwise
    torch.testing.assert_close(cg, eg)
    torch._dynamo.reset()


@pytest.mark.parametrize("form", dropkit.ops.compiled.FORMS)
def test_checkpoint_inside_a_compiled_region_recomputes_the_same_mask(form):
    # The recompute re-runs the block's forward; a seed drawn again there would be a new mask.
    torch._dynamo.reset()
    torch.manual_seed(0)
    block = torch.nn.Sequential(
        torch.nn.Linear(32, 32), dropkit.nn.ReLUDropout(0.5), torch.nn.Linear(32, 32), dropkit.nn.Dropout(0.5)
    )

    def plain(x):
        return block(x)

    def checkpointed(x):
        return checkpoint(block, x, use_reentrant=False)

    x = torch.randn(16, 32, requires_grad=True)
    g = torch.randn(16, 32)
    (ey, eg), _ = _eager_and_compiled(plain, x, g)
    with dropkit.ops.compiled.use_form(form):
        _, (cy, cg) = _eager_and_compiled(checkpointed, x, g)
    torch._dynamo.reset()
    assert torch.equal(cy == 0, ey == 0)
    torch.testing.assert_close(cy, ey)  # through matmuls: close, not bitwise
    torch.testing.assert_close(cg, eg)


def test_kernel_form_keeps_the_custom_op():
    def f(x):
        return DF.dropout(x, 0.5, seed=9)

    x = torch.randn(100)
    with dropkit.ops.compiled.use_form("kernel"):
        torch._dynamo.reset()
        k = torch.compile(f, fullgraph=True)(x)
    torch._dynamo.reset()
    assert torch.equal(k, torch.compile(f, fullgraph=True)(x))
    with (
        pytest.raises(ValueError, match="name must be one of 'decomposed', 'kernel', got 'triton'"),
        dropkit.ops.compiled.use_form("triton"),
    ):
        pass
