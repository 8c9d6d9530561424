"""DropConnect: DropConnectLinear and weight_dropout drop weights (spec mask over the weight), not activations."""

import pytest
import torch
import torch.nn.functional as TF
from _helpers.family import assert_rate, reference_keep
from torch.nn.utils import parametrize

import dropkit
import dropkit.functional as DF


def test_linear_uses_the_spec_masked_weight_and_keeps_the_bias():
    x, w, b = torch.randn(4, 7), torch.randn(5, 7), torch.randn(5)
    y = DF.drop_connect_linear(x, w, b, 0.3, seed=2, offset=9)
    dropped = torch.where(reference_keep(w.shape, 0.3, 2, 9), w * torch.tensor(1 / 0.7), 0.0)
    assert torch.equal(y, TF.linear(x, dropped, b))


def test_weight_keep_rate_within_4_sigma():
    w = DF.drop_connect(torch.ones(1000, 200), 0.3, seed=1)
    assert_rate(w != 0, 0.3)


def test_module_is_a_linear_eval_uses_the_weight_and_p_one_leaves_the_bias():
    m = dropkit.DropConnectLinear(6, 3, p=0.5)
    assert (
        isinstance(m, torch.nn.Linear)
        and repr(m) == "DropConnectLinear(in_features=6, out_features=3, bias=True, p=0.5)"
    )
    x = torch.randn(2, 6)
    assert torch.equal(m.eval()(x), TF.linear(x, m.weight, m.bias))
    m.train().p = 1.0
    y = m(x)
    y.sum().backward()
    assert torch.equal(y, m.bias.expand(2, 3)) and torch.equal(m.weight.grad, torch.zeros(3, 6))
    torch.manual_seed(1)
    m.p = 0.5
    a, b = m(x), m(x)
    assert not torch.equal(a, b)


def test_weight_dropout_redraws_each_forward_and_undoes_cleanly():
    lin = torch.nn.Linear(8, 4)
    original = lin.weight.detach().clone()
    dropkit.weight_dropout(lin, "weight", 0.5)
    x = torch.randn(3, 8)
    torch.manual_seed(0)
    a, b = lin(x), lin(x)
    assert not torch.equal(a, b)
    torch.manual_seed(0)
    assert torch.equal(lin(x), a)
    assert torch.equal(lin.eval()(x), TF.linear(x, original, lin.bias))
    assert dropkit.set_dropout(lin, 0.2) == ["parametrizations.weight.0"]
    parametrize.remove_parametrizations(lin, "weight", leave_parametrized=False)
    assert torch.equal(lin.weight, original)


def test_weight_dropout_on_an_lstm_drops_only_recurrent_weights():
    lstm = torch.nn.LSTM(3, 5)
    dropkit.weight_dropout(lstm, "weight_hh_l0", 1.0)
    out, _ = lstm(torch.randn(4, 2, 3))
    out.sum().backward()
    assert torch.equal(lstm.parametrizations.weight_hh_l0.original.grad, torch.zeros(20, 5))
    assert lstm.weight_ih_l0.grad.abs().sum() > 0


def test_weight_dropout_errors():
    with pytest.raises(
        ValueError, match=r"name must name a parameter of the Linear, got 'kernel' \(it holds 'weight', 'bias'\)"
    ):
        dropkit.weight_dropout(torch.nn.Linear(2, 2), "kernel")
    with pytest.raises(ValueError, match="p must be between 0 and 1, got 2.0"):
        dropkit.weight_dropout(torch.nn.Linear(2, 2), "weight", 2.0)


def test_integer_weight_error_names_the_weight():
    with pytest.raises(
        TypeError,
        match=r"^weight must have a floating dtype \(float32, float64, float16 or bfloat16\), got dtype torch.int64$",
    ):
        DF.drop_connect(torch.ones(2, 2, dtype=torch.int64), 0.5, seed=1)
    with pytest.raises(TypeError, match=r"^weight must be a torch.Tensor, got list$"):
        DF.drop_connect_linear(torch.ones(1, 2), [[1.0, 2.0]], None, 0.5, seed=1)
