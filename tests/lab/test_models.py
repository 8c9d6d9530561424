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
    # ReLU + Dropout fused (control.fuse_activation_dropout): the dropout's slot holds the fused module.
    assert kinds == [
        nn.Linear,
        nn.Identity,
        dropkit.ReLUDropout,
        nn.Linear,
        nn.Identity,
        dropkit.ReLUDropout,
        nn.Linear,
    ]
    assert [net[2].p, net[5].p] == [0.5, 0.3]
    assert (net[0].in_features, net[-1].out_features) == (784, 10)


def test_input_dropout_comes_first_and_zero_rates_add_no_layer():
    net = models.build_mlp(64, (32, 16), 10, dropout=(0.0, 0.5), input_dropout=0.2)
    assert isinstance(net[0], dropkit.nn.Dropout) and net[0].p == 0.2
    assert [type(m) for m in net[1:]] == [nn.Linear, nn.ReLU, nn.Linear, nn.Identity, dropkit.ReLUDropout, nn.Linear]


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


def test_one_rate_is_used_for_every_layer():
    net = models.build_mlp(4, (8, 8, 8), 2, dropout=0.5)
    assert [m.p for m in models.dropout_modules(net)] == [0.5, 0.5, 0.5]
    assert models.dropout_modules(models.build_mlp(4, (8, 8), 2, dropout=None)) == []


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


def test_every_dropout_kind_is_usable_or_refused_with_its_reason():
    """A kind added to dropkit.nn must be sorted here, or the lab would build it blindly."""
    refused = set(models.NOT_FOR_MLP)
    assert refused.isdisjoint(models.MLP_DROPOUT_KINDS)
    assert refused | set(models.MLP_DROPOUT_KINDS) == set(dropkit.nn.DROPOUT_KINDS)
    assert set(models.DROPOUT_TYPES) - set(models.MLP_DROPOUT_KINDS) == {"concrete"}  # the lab builds it itself


@pytest.mark.parametrize("kind", models.MLP_DROPOUT_KINDS)
def test_usable_kinds_train_on_mlp_activations(kind):
    torch.manual_seed(0)
    net = models.build_mlp(12, (32, 16), 3, dropout=(0.5, 1.0), input_dropout=0.2, kind=kind)
    assert type(net[0]) is dropkit.nn.Dropout  # input dropout stays plain dropout
    # Plain dropout after ReLU is fused into ReLUDropout (control.fuse_activation_dropout); the other kinds stay.
    expected = dropkit.ReLUDropout if kind == "dropout" else type(dropkit.nn.make_dropout(kind, 0.5))
    assert type(net[3]) is type(net[6]) is expected
    assert (net[3].p, net[6].p) == (0.5, 1.0)
    x = torch.randn(8, 12)
    net.train()(x).sum().backward()
    assert all(torch.isfinite(w.grad).all() for w in models.weights(net))
    assert not torch.equal(net[:4](x), net[:4](x)), "train mode draws new noise each pass"
    net.eval()
    assert torch.equal(net(x), net(x))


def test_concrete_dropout_wraps_the_next_linear_with_regularisers_from_n():
    torch.manual_seed(0)
    net = models.build_mlp(12, (32, 16, 8), 3, dropout=(0.5, 0.0, 0.2), input_dropout=0.1, kind="concrete", n_train=400)
    kinds = [type(m) for m in net]
    C = dropkit.nn.ConcreteDropout
    assert kinds == [
        dropkit.nn.Dropout,
        nn.Linear,
        nn.ReLU,
        C,
        nn.ReLU,
        nn.Linear,
        nn.ReLU,
        C,
    ]  # rate 0: a plain Linear
    assert (net[3].layer.in_features, net[7].layer.out_features) == (32, 3)
    assert [net[3].p, net[7].p] == pytest.approx([0.5, 0.2])
    # Gal et al. 2017: l^2 / N and 2 / N, l = 1e-4
    assert (
        (net[3].weight_regularizer, net[3].dropout_regularizer)
        == (1e-8 / 400, 2 / 400)
        == models.concrete_regularizers(400)
    )
    assert len(models.weights(net)) == 4  # max-norm, L1 and L2 still reach the wrapped layers
    assert models.concrete_modules(net) == [net[3], net[7]]
    assert models.dropout_modules(net) == [net[0], net[3], net[7]]
    assert models.schedule_dropout(net, "constant")[0].model is net[0]  # learned rates get no schedule
    assert len(models.schedule_dropout(net, "constant")) == 1
    torch.manual_seed(0)
    plain = models.build_mlp(12, (32, 16, 8), 3, dropout=0.0)
    assert all(torch.equal(a, b) for a, b in zip(models.weights(net), models.weights(plain)))  # twins: same start
    x = torch.randn(16, 12)
    loss = net.train()(x).pow(2).mean() + sum(m.regularization() for m in models.concrete_modules(net))
    loss.backward()
    assert net[3].p_logit.grad is not None and net[3].p_logit.grad != 0
    net.eval()
    assert torch.equal(net(x), net(x))


def test_concrete_dropout_errors():
    with pytest.raises(SettingsError, match="^concrete dropout needs the training set size, a positive int, got None$"):
        models.build_mlp(4, (3,), 2, dropout=0.5, kind="concrete")
    assert type(models.build_mlp(4, (3,), 2, dropout=0.0, kind="concrete")[-1]) is nn.Linear  # no layer, no N needed


def test_one_schedule_per_dropout_layer_toward_its_own_rate():
    net = models.build_mlp(6, (8, 8), 2, dropout=(0.5, 0.3), input_dropout=0.2)
    schedules = models.schedule_dropout(net, "late:2")
    assert [s.target for s in schedules] == [0.2, 0.5, 0.3]
    assert [net[i].p for i in (0, 3, 6)] == [0.0, 0.0, 0.0]  # late dropout: off until step 2
    for s in schedules:
        s.step()
        s.step()
    assert [net[i].p for i in (0, 3, 6)] == [0.2, 0.5, 0.3]
    assert models.schedule_dropout(models.build_mlp(6, (8,), 2, dropout=0.0), "early:1") == []
