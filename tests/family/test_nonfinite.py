"""Every variant of the family: a dropped position of an inf, -inf or NaN input gives exactly what it
gives for a finite input (0, or alpha dropout's constant), and a zero gradient (docs/mask-spec.md).

A variant that make_dropout builds from a rate (a `kind`) is checked as cls(p) on an (N, C, H, W)
tensor unless it has a row of its own; any other variant fails test_every_variant_has_a_case until it
gets a row. Each row builds the module at rate p and says what its "input" is: the tensor
whose elements are dropped (the activations; the weight for DropConnect and WeightDropout; the
embedding table for EmbeddingDropout) and the output elements that correspond to them.
"""

import pytest
import torch
from _helpers import torchvision_shim
from _helpers.reference import TRITON_DEVICE, needs_triton

import dropkit.functional as DF
import dropkit.kernels as K
import dropkit.nn as N
from dropkit.family import registry

torchvision_shim.install()  # timm imports torchvision; beside a CPU torch its ops library does not load
# timm's variant joins the registry when its glue is imported: import it here so the table is the same in any test order
timm_glue = pytest.importorskip("dropkit.convert.integrations.timm", reason="timm is an optional extra")

SHAPE = (4, 6, 5, 3)  # (N, C, H, W): every variant takes it, and 24 channels / 4 samples give drops at p = 0.5


def elementwise(module_fn):
    return lambda p: lambda x: module_fn(p)(x)


def _bias_dropout_add(p):
    return lambda x: N.BiasDropoutAdd(SHAPE[-1], p, "gelu", dtype=x.dtype)(x, torch.full_like(x, 0.25))


def _drop_connect_linear(p):
    module = N.DropConnectLinear(3, 2, p=p)
    # the dropped tensor is the weight: F.linear of ones with the dropped weight sums it, so look at drop_connect itself
    return lambda w: DF.drop_connect(w, module.p, module.training, generator=module.generator)


def _embedding(p):
    def run(weight):
        module = N.EmbeddingDropout(torch.nn.Embedding(weight.shape[0], weight.shape[1]), p)
        return DF.embedding_dropout(torch.arange(weight.shape[0]), weight, module.p)

    return run


def _dropout_linear(p):
    # one input feature and a weight of 1: the output is the dropped input itself, element by element
    return lambda x: DF.dropout_linear(x, torch.ones(1, 1, dtype=x.dtype), None, p)


def _attention(p):
    # The dropped elements are softmax probabilities, finite for any finite logits; non-finite
    # inputs reach them only through q, k (whole rows NaN, as in torch) or v (a matmul: 0 * inf
    # is NaN there, as in torch). p = 1 must still give exact zeros and zero gradients.
    module = N.ScaledDotProductAttention(p)
    return lambda v: module(torch.ones(SHAPE[:2] + (3, 3)), torch.ones(SHAPE[:2] + (3, 3)), v.nan_to_num(0.0, 0.0, 0.0))


CASES = {  # class -> (p -> call of the dropped tensor, shape of that tensor, rates it drops at)
    N.ActivationDropout: None,  # abstract: its subclasses name the activation
    N.ReLUDropout: (elementwise(N.ReLUDropout), SHAPE, (0.5, 1.0)),
    N.GELUDropout: (elementwise(N.GELUDropout), SHAPE, (0.5, 1.0)),
    N.Dropout1d: (elementwise(N.Dropout1d), SHAPE[:3], (0.5, 1.0)),
    N.Dropout3d: (elementwise(N.Dropout3d), SHAPE + (2,), (0.5, 1.0)),
    # multiplicative noise drops nothing below p = 1
    N.GaussianDropout: (elementwise(N.GaussianDropout), SHAPE, (1.0,)),
    N.GaussianNoise: None,  # additive noise with a stddev, no rate: it never zeroes anything
    N.DropBlock2d: (elementwise(lambda p: N.DropBlock2d(p, block_size=3)), SHAPE, (0.5, 1.0)),
    N.LockedDropout: (elementwise(lambda p: N.LockedDropout(p, batch_first=True)), SHAPE, (0.5, 1.0)),
    N.DropConnectLinear: (_drop_connect_linear, (2, 3), (0.5, 1.0)),
    N.WeightDropout: (elementwise(N.WeightDropout), (5, 7), (0.5, 1.0)),
    N.EmbeddingDropout: (_embedding, (9, 4), (0.5, 1.0)),
    # relaxed masks have no exact drops below p = 1 (sigmoid never reaches 1)
    N.ConcreteDropout: (lambda p: lambda x: DF.concrete_dropout(x, p), SHAPE, (1.0,)),
    N.ScaledDotProductAttention: (_attention, SHAPE[:2] + (3, 2), (1.0,)),
    N.BiasDropoutAdd: (_bias_dropout_add, SHAPE, (0.5, 1.0)),
    N.DropoutLinear: (_dropout_linear, SHAPE[:3] + (1,), (0.5, 1.0)),
    timm_glue.DropBlock2d: (elementwise(lambda p: timm_glue.DropBlock2d(p, block_size=3)), SHAPE, (0.5, 1.0)),
}


def case_of(cls):
    """cls's row, or for a variant built from a rate (a `kind`): cls(p) on SHAPE at p = 0.5 and 1."""
    if cls in CASES:
        return CASES[cls]
    if cls.kind is None or not cls.has_rate:
        raise KeyError(f"{cls.__name__} needs a row in CASES")
    return elementwise(cls), SHAPE, (0.5, 1.0)


def test_every_variant_has_a_case():
    variants = registry.variants()
    for cls in variants:
        case_of(cls)  # KeyError naming a variant that needs a row
    assert [cls for cls in CASES if cls not in variants] == []  # no row outlives its variant


def nonfinite_like(shape, dtype) -> torch.Tensor:
    values = torch.tensor([float("inf"), float("-inf"), float("nan")], dtype=dtype)
    return values.repeat(-(-torch.Size(shape).numel() // 3))[: torch.Size(shape).numel()].view(shape)


def run(call, x: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Output and gradient (of the sum) for input x under torch seed `seed`."""
    x = x.detach().requires_grad_()
    torch.manual_seed(seed)
    y = call(x)
    (g,) = torch.autograd.grad(y.sum(), x)
    return y.detach(), g


def check_variant(cls, dtype=torch.float32):
    case = case_of(cls)
    if case is None:
        pytest.skip(f"{cls.__name__}: no drops of its own (see CASES)")
    make, shape, rates = case
    for p in rates:
        call = make(p)
        ones = torch.ones(shape, dtype=dtype)
        y1, g1 = run(call, ones, seed=5)
        y2, _ = run(call, 2 * ones, seed=5)
        dropped = y1 == y2  # kept elements scale with the input; dropped ones do not depend on it
        assert dropped.any(), f"{cls.__name__} p={p}: nothing dropped, the test sees nothing"
        if p == 1.0:
            assert dropped.all()
        y, g = run(call, nonfinite_like(shape, dtype), seed=5)
        assert torch.equal(y[dropped], y1[dropped]), f"{cls.__name__} p={p}: {y[dropped]} where {y1[dropped]}"
        assert bool(torch.isfinite(y[dropped]).all())
        grad_dropped = g1 == 0
        if p == 1.0 and cls is not N.BiasDropoutAdd:
            assert torch.equal(y, torch.zeros_like(y)), f"{cls.__name__}: p = 1 gives {y}"
        assert grad_dropped.any(), f"{cls.__name__} p={p}: no zero gradient with a finite input"
        assert torch.equal(g[grad_dropped], torch.zeros_like(g[grad_dropped])), f"{cls.__name__} p={p}: gradient {g}"


@pytest.mark.parametrize("cls", registry.variants(), ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_dropped_nonfinite_inputs_give_what_finite_ones_give(cls):
    check_variant(cls)


@pytest.mark.parametrize("backend", ["cpu", "torch", pytest.param("triton", marks=needs_triton)])
@pytest.mark.parametrize(
    "cls",
    [N.Dropout, N.Dropout2d, N.DropPath, N.LockedDropout, N.EmbeddingDropout, N.GELUDropout, N.BiasDropoutAdd],
    ids=lambda c: c.__name__,
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16], ids=str)
def test_every_backend_and_dtype(backend, cls, dtype):
    if backend == "triton" and TRITON_DEVICE != "cpu":
        pytest.skip("checked on CPU tensors under TRITON_INTERPRET=1 here")
    with K.use_backend(backend):
        check_variant(cls, dtype)
