"""MC dropout: mode switching and restoration, batched sampling, summaries, reproducibility."""

import doctest
import math
import warnings

import pytest
import torch
from _helpers.stats import four_sigma
from torch import nn

import dropkit
import dropkit.functional as DF
from dropkit.mc import predict as uncertainty
from dropkit.mc.predict import MCResult, is_dropout, mc_dropout, mc_predict

TORCH_DROPOUTS = [
    (nn.Dropout, (4, 32)),
    (nn.Dropout1d, (4, 8, 16)),
    (nn.Dropout2d, (4, 8, 4, 4)),
    (nn.Dropout3d, (4, 8, 2, 3, 3)),
    (nn.AlphaDropout, (4, 32)),
    (nn.FeatureAlphaDropout, (4, 8, 4, 4)),
    (dropkit.Dropout, (4, 32)),
]


def modes(model):
    return [m.training for m in model.modules()]


def mlp(p=0.5):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), dropkit.Dropout(p), nn.Linear(16, 3))


class FunctionalDropout(nn.Module):
    """Dropout written as a functional call, as in many model files."""

    def forward(self, x):
        return DF.dropout(x, 0.5, self.training)


# --- mc_dropout -------------------------------------------------------------


def test_mc_dropout_switches_only_dropout_and_restores_mixed_modes():
    model = nn.Sequential(nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5)), nn.BatchNorm1d(4), dropkit.Dropout(0.2))
    model.eval()
    model[0][0].train()  # a deliberately mixed prior state must come back exactly
    model[2].train()
    before = modes(model)
    with mc_dropout(model) as m:
        assert m is model
        assert {name: mod.training for name, mod in model.named_modules()} == {
            "": False,
            "0": False,
            "0.0": False,
            "0.1": True,
            "1": False,
            "2": True,
        }
    assert modes(model) == before


def test_mc_dropout_restores_on_exception():
    model = mlp().train()
    before = modes(model)
    with pytest.raises(RuntimeError, match="boom"):
        with mc_dropout(model):
            raise RuntimeError("boom")
    assert modes(model) == before
    assert not dropkit._mode.mc_active()
    assert torch.backends.mha.get_fastpath_enabled()


def test_mc_dropout_nested():
    inner = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    outer = nn.Sequential(inner, nn.BatchNorm1d(4)).eval()
    with mc_dropout(outer):
        with mc_dropout(inner):
            assert modes(inner) == [False, False, True]
            assert dropkit._mode.mc_active()
        assert modes(outer) == [False, False, False, True, False]
        assert dropkit._mode.mc_active()
    assert modes(outer) == [False] * 5
    assert not dropkit._mode.mc_active()


def test_mc_dropout_does_not_call_train():
    class Frozen(nn.Module):
        def train(self, mode=True):  # pragma: no cover - must never run
            raise AssertionError("mc_dropout must set flags, not call train()")

    model = nn.Sequential(Frozen(), nn.Dropout())
    for m in model.modules():
        m.training = False
    with mc_dropout(model):
        assert model[1].training
    assert modes(model) == [False] * 3


@pytest.mark.parametrize("cls,shape", TORCH_DROPOUTS, ids=lambda v: getattr(v, "__name__", ""))
def test_every_dropout_class_is_stochastic_inside_and_identity_after(cls, shape):
    layer = cls(0.5).eval()
    assert is_dropout(layer)
    x = torch.randn(shape)
    torch.manual_seed(0)
    with mc_dropout(layer):
        a, b = layer(x), layer(x)
    assert not torch.equal(a, b)
    assert not torch.equal(a, x)
    assert torch.equal(layer(x), x)


def test_non_dropout_modules_are_not_dropout():
    for m in (nn.Linear(2, 2), nn.BatchNorm2d(3), nn.ReLU(), nn.Sequential(nn.Dropout()), nn.MultiheadAttention(4, 1)):
        assert not is_dropout(m), m


def test_functional_dropout_honours_mc_dropout():
    model = nn.Sequential(FunctionalDropout()).eval()
    x = torch.ones(64)
    assert torch.equal(model(x), x)
    with mc_dropout(model):
        y = model(x)
    assert set(y.unique().tolist()) == {0.0, 2.0}


def test_mc_mode_is_per_thread_in_eager():
    import threading

    from dropkit import _mode

    inside, seen = threading.Event(), []
    done = threading.Event()

    def worker():
        with _mode.mc_enabled():
            inside.set()
            done.wait(5)

    t = threading.Thread(target=worker)
    t.start()
    inside.wait(5)
    seen.append(_mode.mc_active())  # this thread is not in MC mode while the other one is
    done.set()
    t.join(5)
    assert seen == [False] and not _mode.mc_active()


def test_batchnorm_untouched():
    model = mlp(p=0.0)
    model.train()
    model(torch.randn(32, 6))  # non-trivial running statistics
    model.eval()
    bn = model[1]
    state = {k: v.clone() for k, v in bn.state_dict().items()}
    x = torch.randn(10, 6)
    expected = model(x)
    with pytest.warns(UserWarning, match="no dropout is active"):
        r = mc_predict(model, x, samples=5, seed=0)
    # p = 0: every sample is the eval output, so BatchNorm normalized with its running statistics.
    # Close, not equal: mc_predict runs the 5 replicas as one 50-row batch, and oneDNN/MKL pick
    # matmul kernels by batch shape (AMD and Intel differ in the last bits). The state is exact.
    torch.testing.assert_close(r.samples, expected.expand(5, -1, -1))
    for k, v in bn.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert not bn.training


def test_transformer_layer_dropout_runs_under_mc():
    # In eval mode under no_grad PyTorch takes a fused fast path that skips the layer's dropout modules.
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.3, batch_first=True).eval()
    r = mc_predict(layer, torch.randn(3, 5, 16), samples=4, seed=0, task="regression")
    assert not torch.equal(r.samples[0], r.samples[1])
    assert torch.backends.mha.get_fastpath_enabled()


# --- mc_predict -------------------------------------------------------------


def test_samples_shape_and_batch_layout_2d():
    model = mlp().eval()
    x = torch.randn(7, 6)
    r = mc_predict(model, x, samples=9, seed=0)
    assert r.samples.shape == (9, 7, 3)
    assert r.mean_probs.shape == (7, 3) and r.variance.shape == (7, 3)
    for name in ("predictive_entropy", "expected_entropy", "mutual_information"):
        assert getattr(r, name).shape == (7,), name
    torch.testing.assert_close(r.mean_probs.sum(1), torch.ones(7))
    assert modes(model) == [False] * len(modes(model))


def test_4d_input_and_dense_output():
    torch.manual_seed(0)
    seg = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout2d(0.3), nn.Conv2d(4, 5, 1)
    ).eval()
    x = torch.randn(3, 1, 8, 8)
    r = mc_predict(seg, x, samples=6, seed=0)
    assert r.samples.shape == (6, 3, 5, 8, 8)
    assert r.mean_probs.shape == (3, 5, 8, 8)
    assert r.predictive_entropy.shape == (3, 8, 8) and r.mutual_information.shape == (3, 8, 8)
    torch.testing.assert_close(r.mean_probs.sum(1), torch.ones(3, 8, 8))


def test_each_copy_gets_an_independent_mask():
    # Dropout alone on ones: sample t's keep mask is samples[t] != 0. Two independent masks are
    # both kept at a position with probability (1-p)^2.
    p, batch, features, T = 0.5, 8, 256, 10
    r = mc_predict(nn.Sequential(dropkit.Dropout(p)), torch.ones(batch, features), samples=T, seed=3, task="regression")
    keep = r.samples != 0
    n = batch * features
    for s in range(1, T):
        both = (keep[0] & keep[s]).float().mean().item()
        q = (1 - p) ** 2
        assert abs(both - q) <= four_sigma(1 - q, n), (s, both, q, four_sigma(1 - q, n))
    for t in range(T):
        for s in range(t):
            assert not torch.equal(r.samples[t], r.samples[s])


def test_same_input_rows_differ_for_torch_dropout_too():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 2)).eval()
    r = mc_predict(model, torch.randn(3, 4), samples=5, seed=1)
    assert len({tuple(s.flatten().tolist()) for s in r.samples}) == 5


def test_seed_reproducible_and_global_rng_untouched():
    model = mlp().eval()
    x = torch.randn(5, 6)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = mc_predict(model, x, samples=8, seed=42)
    assert torch.equal(torch.get_rng_state(), state)
    b = mc_predict(model, x, samples=8, seed=42)
    c = mc_predict(model, x, samples=8, seed=43)
    assert torch.equal(a.samples, b.samples)
    assert not torch.equal(a.samples, c.samples)


def test_no_seed_follows_torch_manual_seed():
    model = mlp().eval()
    x = torch.randn(5, 6)
    torch.manual_seed(7)
    a = mc_predict(model, x, samples=4)
    torch.manual_seed(7)
    b = mc_predict(model, x, samples=4)
    assert torch.equal(a.samples, b.samples)


def test_chunking():
    model = mlp().eval()
    x = torch.randn(5, 6)
    # The default chunk is all T copies when they fit CHUNK_ELEMENTS: the same draws as chunk=T.
    assert torch.equal(mc_predict(model, x, 7, seed=0).samples, mc_predict(model, x, 7, chunk=7, seed=0).samples)
    # A given (seed, chunk) is reproducible; a ragged last chunk still yields exactly T samples.
    a = mc_predict(model, x, 7, chunk=3, seed=0)
    assert a.samples.shape == (7, 5, 3)
    assert torch.equal(a.samples, mc_predict(model, x, 7, chunk=3, seed=0).samples)


def test_chunked_draws_have_the_keep_rate():
    p, T = 0.3, 40
    for chunk in (1, 7, T):
        r = mc_predict(nn.Sequential(dropkit.Dropout(p)), torch.ones(4, 100), T, chunk=chunk, seed=0, task="regression")
        kept = (r.samples != 0).float().mean().item()
        assert abs(kept - (1 - p)) <= four_sigma(p, r.samples.numel()), (chunk, kept)


def test_default_chunk_respects_budget(monkeypatch):
    calls = []
    model = nn.Sequential(dropkit.Dropout(0.5))
    model.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    monkeypatch.setattr(uncertainty, "CHUNK_ELEMENTS", 4 * 10 * 3)
    mc_predict(model, torch.ones(4, 10), samples=7, seed=0, task="regression")
    assert calls == [12, 12, 4]


class BatchSharedMask(nn.Module):
    """A custom layer that draws one mask for the whole batch."""

    def forward(self, x):
        return x * (torch.rand(x.shape[1:]) > 0.5)


def test_batch_shared_mask_is_reported():
    model = nn.Sequential(nn.Linear(3, 8), BatchSharedMask(), nn.Linear(8, 2)).eval()
    with pytest.warns(UserWarning, match="first two samples are identical"):
        mc_predict(model, torch.randn(4, 3), samples=3, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = mc_predict(model, torch.randn(4, 3), samples=3, chunk=1, seed=0)
    assert not torch.equal(r.samples[0], r.samples[1])


def test_model_without_dropout_warns():
    with pytest.warns(UserWarning, match="no dropout is active"):
        mc_predict(nn.Linear(3, 2), torch.randn(4, 3), samples=2)


def test_hand_computed_entropy_and_bald():
    # Two passes on one input: probabilities (0.5, 0.5) and (0.9, 0.1); logits (0, 0) and (log 9, 0).
    samples = torch.tensor([[[0.0, 0.0]], [[math.log(9.0), 0.0]]], dtype=torch.float64)
    r = MCResult(samples)
    h_mean = -(0.7 * math.log(0.7) + 0.3 * math.log(0.3))  # mean probs (0.7, 0.3)
    h1, h2 = math.log(2.0), -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))
    torch.testing.assert_close(r.mean_probs, torch.tensor([[0.7, 0.3]], dtype=torch.float64))
    torch.testing.assert_close(r.predictive_entropy, torch.tensor([h_mean], dtype=torch.float64))
    torch.testing.assert_close(r.expected_entropy, torch.tensor([(h1 + h2) / 2], dtype=torch.float64))
    torch.testing.assert_close(r.mutual_information, torch.tensor([h_mean - (h1 + h2) / 2], dtype=torch.float64))
    assert r.mutual_information.item() == pytest.approx(0.1017492, abs=1e-7)
    torch.testing.assert_close(r.variance, torch.tensor([[0.04, 0.04]], dtype=torch.float64))


def test_bald_is_zero_when_passes_agree():
    r = MCResult(torch.tensor([[[2.0, -1.0, 0.5]]]).expand(5, 1, 3))
    assert r.mutual_information.item() == 0.0
    assert r.predictive_entropy.item() == pytest.approx(r.expected_entropy.item())


def test_regression_summaries():
    r = MCResult(torch.tensor([[1.0], [3.0], [5.0]])[:, :, None], "regression")
    assert r.mean.item() == 3.0
    assert r.std.item() == pytest.approx(math.sqrt(8 / 3))
    with pytest.raises(AttributeError, match="task='classification'"):
        _ = r.mean_probs
    with pytest.raises(AttributeError, match="task='regression'"):
        _ = MCResult(torch.zeros(2, 1, 3)).std


def test_half_precision_summaries_are_finite():
    r = MCResult(torch.randn(4, 2, 3).to(torch.bfloat16))
    assert r.probs.dtype == torch.float32
    assert torch.isfinite(r.mutual_information).all()


@pytest.mark.parametrize(
    "kwargs,exc,msg",
    [
        ({"samples": 0}, ValueError, "samples must be >= 1, got 0"),
        ({"samples": 2.0}, TypeError, "samples must be an int >= 1, got 2.0 of type float"),
        ({"chunk": 0}, ValueError, "chunk must be >= 1, got 0"),
        ({"seed": -1}, ValueError, r"seed must be in \[0, 2\*\*64\), got -1"),
        ({"task": "ranking"}, ValueError, "task must be one of 'classification', 'regression', got 'ranking'"),
    ],
)
def test_argument_errors(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        mc_predict(mlp(), torch.randn(2, 6), **kwargs)


def test_output_errors():
    with pytest.raises(TypeError, match="returns a tensor, got tuple"):
        mc_predict(nn.Sequential(nn.Dropout(), nn.Identity()).append(TupleOut()), torch.randn(2, 3), samples=2)
    with pytest.raises(ValueError, match=r"3 x 2 = 6 rows gave an output of shape \(3,\)"):
        mc_predict(nn.Sequential(nn.Dropout(), SumRows()), torch.randn(2, 3), samples=3)
    with pytest.raises(TypeError, match="x must be a torch.Tensor, got list"):
        mc_predict(mlp(), [[1.0] * 6])
    with pytest.raises(ValueError, match="x must have a batch dimension first, got a 0-dim tensor"):
        mc_predict(mlp(), torch.tensor(1.0))


def test_token_id_input():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(20, 8), nn.Dropout(0.3), nn.Flatten(), nn.Linear(8 * 5, 4)).eval()
    r = mc_predict(model, torch.randint(0, 20, (3, 5)), samples=4, seed=0)
    assert r.samples.shape == (4, 3, 4)
    assert not torch.equal(r.samples[0], r.samples[1])


class TupleOut(nn.Module):
    def forward(self, x):
        return x, x


class SumRows(nn.Module):
    def forward(self, x):
        return x.sum(0)


def test_docstring_examples():
    for module in (uncertainty, dropkit.mc.metrics):
        result = doctest.testmod(module, extraglobs={"torch": torch}, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, module.__name__


# --- dropkit's dropout family -------------------------------------------------

DN = dropkit.nn


def family():
    """(layer, input) for every dropkit variant; fresh modules each call."""
    torch.manual_seed(0)
    return [
        (DN.Dropout1d(0.5), torch.randn(4, 8, 16)),
        (DN.Dropout2d(0.5), torch.randn(4, 8, 4, 4)),
        (DN.Dropout3d(0.5), torch.randn(4, 8, 2, 3, 3)),
        (DN.AlphaDropout(0.5), torch.randn(4, 32)),
        (DN.FeatureAlphaDropout(0.5), torch.randn(4, 8, 4, 4)),
        (DN.GaussianDropout(0.5), torch.randn(4, 32)),
        (DN.GaussianNoise(0.5), torch.randn(4, 32)),
        (DN.DropPath(0.5), torch.randn(16, 32)),
        (DN.DropBlock2d(0.3, 3), torch.randn(4, 8, 8, 8)),
        (DN.LockedDropout(0.5, batch_first=True), torch.randn(4, 6, 8)),
        (DN.DropConnectLinear(32, 16, p=0.5), torch.randn(4, 32)),
        (DN.DropoutLinear(32, 16, p=0.5), torch.randn(4, 32)),
        (dropkit.weight_dropout(nn.Linear(32, 16), "weight", 0.5), torch.randn(4, 32)),
        (DN.EmbeddingDropout(nn.Embedding(20, 8), 0.5), torch.randint(0, 20, (4, 6))),
        (DN.ConcreteDropout(nn.Linear(32, 16), 0.5), torch.randn(4, 32)),
    ]


@pytest.mark.parametrize("index", range(len(family())), ids=[type(m).__name__ for m, _ in family()])
def test_every_dropkit_variant_is_sampled_and_restored(index):
    layer, x = family()[index]
    layer.eval()
    assert any(is_dropout(m) for m in layer.modules())
    before = modes(layer)
    with mc_dropout(layer):
        a, b = layer(x), layer(x)
    assert not torch.equal(a, b)
    assert modes(layer) == before
    assert torch.equal(layer(x), layer(x))


@pytest.mark.parametrize("index", range(len(family())), ids=[type(m).__name__ for m, _ in family()])
def test_every_dropkit_variant_gives_distinct_samples(index):
    layer, x = family()[index]
    calls = []
    layer.register_forward_pre_hook(lambda m, i: calls.append(i[0].shape[0]))
    r = mc_predict(layer.eval(), x, samples=4, seed=0, task="regression")
    assert len({tuple(s.flatten().tolist()) for s in r.samples}) == 4
    # One mask per batch (weights, embedding rows) would make copies in one forward equal: one copy per forward then.
    shared = any(uncertainty.shares_mask_across_batch(m) for m in layer.modules())
    assert calls == ([x.shape[0]] * 4 if shared else [4 * x.shape[0]])


def test_batch_shared_variants_are_detected():
    shared = [
        DN.DropConnectLinear(4, 4),
        DN.WeightDropout(0.5),
        DN.EmbeddingDropout(nn.Embedding(3, 2), 0.5),
        DN.DropBlock2d(0.1, 3, batchwise=True),
    ]
    assert all(uncertainty.shares_mask_across_batch(m) for m in shared)
    assert not any(
        uncertainty.shares_mask_across_batch(m) for m in (DN.DropBlock2d(0.1, 3), DN.DropPath(0.1), nn.Dropout())
    )
    with pytest.warns(UserWarning, match="samples are correlated"), pytest.warns(UserWarning, match="identical"):
        mc_predict(DN.DropConnectLinear(8, 3), torch.randn(2, 8), samples=4, chunk=4, seed=0)
