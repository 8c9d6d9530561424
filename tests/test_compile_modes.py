"""Every layer of the family compiles with fullgraph=True in eval, in training and inside mc_dropout,
and switching modes recompiles once per mode, never per call."""

import pytest
import torch
import torch._dynamo.testing
import torch.nn as nn

import dropkit
import dropkit.nn as dnn


class Residual(nn.Module):
    """BiasDropoutAdd takes two inputs; this gives it the one-input shape of the others."""

    def __init__(self):
        super().__init__()
        self.fused = dnn.BiasDropoutAdd(8, 0.5, activation="gelu")

    def forward(self, x):
        return self.fused(x, x)


# (name, factory, input): each layer on an input of a rank it takes. Inputs are large enough
# that a stochastic pass differs from eval with overwhelming probability (p = 0.5).
CASES = [
    ("Dropout", lambda: dnn.Dropout(0.5), lambda: torch.randn(16, 8)),
    ("Dropout1d", lambda: dnn.Dropout1d(0.5), lambda: torch.randn(4, 8, 5)),
    ("Dropout2d", lambda: dnn.Dropout2d(0.5), lambda: torch.randn(4, 8, 3, 3)),
    ("Dropout3d", lambda: dnn.Dropout3d(0.5), lambda: torch.randn(4, 8, 2, 2, 2)),
    ("AlphaDropout", lambda: dnn.AlphaDropout(0.5), lambda: torch.randn(16, 8)),
    ("FeatureAlphaDropout", lambda: dnn.FeatureAlphaDropout(0.5), lambda: torch.randn(4, 8, 3, 3)),
    ("GaussianDropout", lambda: dnn.GaussianDropout(0.5), lambda: torch.randn(16, 8)),
    ("GaussianNoise", lambda: dnn.GaussianNoise(0.5), lambda: torch.randn(16, 8)),
    ("DropConnectLinear", lambda: dnn.DropConnectLinear(8, 8, p=0.5), lambda: torch.randn(16, 8)),
    ("DropoutLinear", lambda: dnn.DropoutLinear(8, 8, p=0.5), lambda: torch.randn(16, 8)),
    ("weight_dropout", lambda: dropkit.weight_dropout(nn.Linear(8, 8), "weight", 0.5), lambda: torch.randn(16, 8)),
    ("DropPath", lambda: dnn.DropPath(0.5), lambda: torch.randn(32, 8)),
    ("DropBlock2d", lambda: dnn.DropBlock2d(0.5, 3), lambda: torch.randn(4, 4, 8, 8)),
    ("LockedDropout", lambda: dnn.LockedDropout(0.5), lambda: torch.randn(5, 8, 6)),
    ("EmbeddingDropout", lambda: dnn.EmbeddingDropout(nn.Embedding(32, 8), 0.5), lambda: torch.arange(32).view(4, 8)),
    ("ConcreteDropout", lambda: dnn.ConcreteDropout(nn.Linear(8, 8), 0.5), lambda: torch.randn(16, 8)),
    ("BiasDropoutAdd", Residual, lambda: torch.randn(16, 8)),
]


def _eager_and_compiled(model, compiled, x, seed):
    """The layer's output eager and compiled, each after torch.manual_seed(seed)."""
    torch.manual_seed(seed)
    eager = model(x)
    torch.manual_seed(seed)
    return eager, compiled(x)


@pytest.mark.parametrize("name,factory,make_input", CASES, ids=[c[0] for c in CASES])
def test_fullgraph_in_eval_training_and_mc(name, factory, make_input):
    torch.manual_seed(0)
    model = factory()
    x = make_input()
    # aot_eager runs Dynamo and AOTAutograd (the custom ops' fake kernels) but the same eager
    # kernels as the uncompiled model, so outputs are bit-equal: same ops on the same shapes.
    counter = torch._dynamo.testing.CompileCounterWithBackend("aot_eager")
    compiled = torch.compile(model, fullgraph=True, backend=counter)

    model.eval()
    reference = model(x)
    for _ in range(3):
        assert torch.equal(compiled(x), reference)
    eval_compiles = counter.frame_count

    model.train()
    for seed in range(3):
        eager, out = _eager_and_compiled(model, compiled, x, seed)
        assert torch.equal(out, eager)
    assert not torch.equal(eager, reference), f"{name} did not drop in training"

    with dropkit.mc_dropout(model):
        for seed in range(3):
            eager, out = _eager_and_compiled(model, compiled, x, seed)
            assert torch.equal(out, eager)
        assert not torch.equal(eager, reference), f"{name} did not drop inside mc_dropout"

    model.eval()
    assert torch.equal(compiled(x), reference)
    # One graph per mode at most (training and MC may share one); never one per call.
    assert eval_compiles == 1
    assert counter.frame_count <= 3, f"{name} compiled {counter.frame_count} times for 3 modes"


def test_inductor_seed_network_eval_and_mc():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 16), nn.ReLU(), dnn.Dropout(0.5), nn.Linear(16, 4)).eval()
    x = torch.randn(8, 20)
    compiled = torch.compile(model, fullgraph=True)
    # Inductor may fuse the bias add differently from eager: close, not bit-equal.
    reference = model(x)
    torch.testing.assert_close(compiled(x), reference)
    with dropkit.mc_dropout(model):
        torch.manual_seed(5)
        eager = model(x)
        torch.manual_seed(5)
        mc = compiled(x)
    torch.testing.assert_close(mc, eager)
    assert not torch.allclose(mc, reference), "compiled model was not stochastic inside mc_dropout"


def test_functional_bias_dropout_add_eval_compiles():
    x, bias, res = torch.randn(4, 8), torch.randn(8), torch.randn(4, 8)

    def f(x, bias, res):
        return dropkit.bias_dropout_add(x, bias, res, 0.5, training=False)

    out = torch.compile(f, fullgraph=True, backend="aot_eager")(x, bias, res)
    assert torch.equal(out, f(x, bias, res))
