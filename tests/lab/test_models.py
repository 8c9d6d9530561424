"""dropkit.lab.models: the MLP builder, dropout placement, rates, max-norm."""

import pytest
import torch
from torch import nn

import dropkit
from dropkit.lab import models
from dropkit.lab.models import SettingsError


def test_seed_network_layout():
    net = models.build_mlp(784, (256, 128), 10, dropout=(0.5, 0.3))
    kinds = [type(m) for m in net]
    assert kinds == [nn.Linear, nn.ReLU, dropkit.nn.Dropout, nn.Linear, nn.ReLU, dropkit.nn.Dropout, nn.Linear]
    assert [net[2].p, net[5].p] == [0.5, 0.3]
    assert (net[0].in_features, net[-1].out_features) == (784, 10)


def test_input_dropout_comes_first_and_zero_rates_add_no_layer():
    net = models.build_mlp(64, (32, 16), 10, dropout=(0.0, 0.5), input_dropout=0.2)
    assert isinstance(net[0], dropkit.nn.Dropout) and net[0].p == 0.2
    assert [type(m) for m in net[1:]] == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, dropkit.nn.Dropout, nn.Linear]


def test_twins_start_from_the_same_weights():
    torch.manual_seed(3)
    a = models.build_mlp(20, (16, 8), 4, dropout=0.5, input_dropout=0.2)
    torch.manual_seed(3)
    b = models.build_mlp(20, (16, 8), 4, dropout=None)
    wa, wb = models.weights(a), models.weights(b)
    assert len(wa) == len(wb) == 3 and all(torch.equal(x, y) for x, y in zip(wa, wb))


def test_dropout_is_on_in_train_and_off_in_eval():
    net = models.build_mlp(10, (400,), 2, dropout=0.5)
    x = torch.randn(3, 10)
    hidden = net[:3]
    assert (hidden.train()(x) == 0).float().mean() > 0.3  # ReLU zeros and dropout zeros
    net.eval()
    assert torch.equal(net(x), net(x))


def test_dropout_rates():
    assert models.dropout_rates(0.5, 3) == (0.5, 0.5, 0.5)
    assert models.dropout_rates((0.2,), 2) == (0.2, 0.2)
    assert models.dropout_rates(None, 2) == (0.0, 0.0)
    with pytest.raises(SettingsError, match=r"dropout needs one rate or one per hidden layer \(3\), got 2: \(0.5, 0.3\)"):
        models.dropout_rates((0.5, 0.3), 3)
    with pytest.raises(SettingsError, match="dropout must be between 0 and 1, got 1.5"):
        models.dropout_rates(1.5, 1)


def test_bad_layers():
    with pytest.raises(SettingsError, match=r"hidden must list one or more positive layer widths, got \(\)"):
        models.build_mlp(4, (), 2)
    with pytest.raises(SettingsError, match="input_dropout must be between 0 and 1, got -0.1"):
        models.build_mlp(4, (3,), 2, input_dropout=-0.1)


def test_max_norm_caps_each_unit_and_leaves_small_ones():
    net = models.build_mlp(5, (6,), 3)
    with torch.no_grad():
        net[0].weight.mul_(10)
        net[0].weight[0] = torch.tensor([0.1, 0, 0, 0, 0])
    models.apply_max_norm(net, 2.0)
    norms = net[0].weight.norm(dim=1)
    assert (norms <= 2.0 * (1 + 1e-6)).all()
    assert torch.allclose(norms[1:], torch.full((5,), 2.0))
    assert torch.equal(net[0].weight[0], torch.tensor([0.1, 0, 0, 0, 0]))
