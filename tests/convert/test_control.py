"""insert_dropout, set_dropout, replace_dropout, is_dropout and make_dropout on built models."""

import pytest
import torch
from torch import nn

import dropkit
import dropkit.nn as dnn


class Block(nn.Module):
    """Named children used from forward, as in timm/transformers models."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.act = nn.GELU()
        self.drop = nn.Dropout(0.1)
        self.heads = nn.ModuleList([nn.Linear(4, 4), nn.Dropout2d(0.2)])

    def forward(self, x):
        return self.heads[0](self.drop(self.act(self.fc(x))))


def mlp():
    return nn.Sequential(
        nn.Linear(4, 8), nn.ReLU(), nn.Sequential(nn.Linear(8, 4), nn.SELU()), Block(), nn.Linear(4, 2), nn.Tanh()
    )


def test_insert_dropout_after_hidden_activations_only():
    model = mlp()
    keys = list(model.state_dict())
    model, places = dropkit.insert_dropout(model, 0.3)
    assert places == ["1", "2.1", "3.act"]
    assert isinstance(model[1][1], dnn.Dropout) and model[1][1].p == 0.3
    assert isinstance(model[2][1][1], dnn.AlphaDropout)
    assert isinstance(model[5], nn.Tanh)  # the output activation gets none
    assert list(model.state_dict()) == keys
    assert model(torch.randn(3, 4)).shape == (3, 2)
    assert dropkit.insert_dropout(model, 0.3)[1] == []


def test_insert_dropout_kind_after_and_eval_mode_kept():
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2), nn.Tanh(), nn.Linear(2, 1)).eval()
    model, places = dropkit.insert_dropout(model, 0.2, after=(nn.Tanh,), kind="gaussian")
    assert places == ["3"] and isinstance(model[3][1], dnn.GaussianDropout) and not model[3][1].training
    with pytest.raises(ValueError, match="kind must be one of 'dropout', .*, got 'bogus'"):
        dropkit.insert_dropout(model, 0.2, kind="bogus")


def test_set_dropout_changes_every_rate_and_honours_types():
    model = mlp()
    dropkit.insert_dropout(model, 0.3)
    model.add_module("noise", dnn.GaussianNoise(0.5))
    changed = dropkit.set_dropout(model, 0.05)
    assert changed == ["1.1", "2.1.1", "3.act.1", "3.drop", "3.heads.1"]
    assert all(m.p == 0.05 for m in model.modules() if dnn.is_dropout(m) and hasattr(m, "p"))
    assert model.noise.stddev == 0.5
    assert dropkit.set_dropout(model, 0.5, types=nn.Dropout2d) == ["3.heads.1"]
    with pytest.raises(ValueError, match="p must be between 0 and 1, got 1.5"):
        dropkit.set_dropout(model, 1.5)


def test_set_dropout_leaves_a_learned_concrete_rate_alone():
    model = nn.Sequential(dnn.ConcreteDropout(nn.Linear(4, 4), 0.2), nn.ReLU(), nn.Dropout(0.5))
    logit = model[0].p_logit.detach().clone()
    for p in (0.0, 1.0, 0.3):  # 0 and 1 are no valid concrete rate; 0.3 would overwrite the learned one
        assert dropkit.set_dropout(model, p) == ["2"] and model[2].p == p
        assert torch.equal(model[0].p_logit.detach(), logit)
    assert dropkit.set_dropout(model, 0.4, types=dnn.ConcreteDropout) == []
    assert torch.equal(model[0].p_logit.detach(), logit)


def test_replace_dropout_keeps_options_and_mode_and_counts():
    shared = nn.Dropout(0.4, inplace=True)
    model = nn.Sequential(
        Block(),
        nn.AlphaDropout(0.1),
        nn.FeatureAlphaDropout(0.2),
        nn.Dropout1d(0.3),
        nn.Dropout3d(0.3),
        shared,
        nn.ModuleDict({"again": shared}),
    )
    model[3].eval()
    model, counts = dropkit.replace_dropout(model)
    assert counts == {
        "Dropout": 2,
        "Dropout2d": 1,
        "AlphaDropout": 1,
        "FeatureAlphaDropout": 1,
        "Dropout1d": 1,
        "Dropout3d": 1,
    }
    assert type(model[0].drop) is dnn.Dropout and model[0].drop.p == 0.1
    assert type(model[0].heads[1]) is dnn.Dropout2d and type(model[1]) is dnn.AlphaDropout
    assert type(model[5]) is dnn.Dropout and model[5].inplace and model[6]["again"] is model[5]
    assert not model[3].training and model[4].training
    assert dropkit.replace_dropout(model)[1] == {}
    root, counts = dropkit.replace_dropout(nn.Dropout(0.2))
    assert type(root) is dnn.Dropout and counts == {"Dropout": 1}


def test_is_dropout_covers_every_variant_and_nothing_else():
    by_kind = [
        dnn.GaussianNoise(0.1) if kind == "gaussian_noise" else dnn.make_dropout(kind, 0.1)
        for kind in dnn.DROPOUT_KINDS
    ]
    family = by_kind + [
        dnn.DropConnectLinear(2, 2),
        dnn.WeightDropout(0.1),
        dnn.EmbeddingDropout(nn.Embedding(3, 2), 0.1),
        dnn.ConcreteDropout(nn.Linear(2, 2)),
        nn.Dropout(),
        nn.Dropout1d(),
        nn.Dropout2d(),
        nn.Dropout3d(),
        nn.AlphaDropout(),
        nn.FeatureAlphaDropout(),
    ]
    assert all(dnn.is_dropout(m) for m in family)
    assert all(isinstance(m, dnn.DropoutBase) for m in family[: len(dnn.DROPOUT_KINDS) + 4])
    assert not any(dnn.is_dropout(m) for m in (nn.ReLU(), nn.Linear(2, 2), nn.Sequential(nn.Dropout())))


def test_make_dropout_builds_each_kind_at_rate_p():
    for kind in dnn.DROPOUT_KINDS:
        if kind == "gaussian_noise":  # its number is a stddev, never read from a rate
            with pytest.raises(
                ValueError,
                match=r"kind 'gaussian_noise' has no drop rate: make_dropout\('gaussian_noise', "
                r"p=0.25\) would read p as its standard deviation; build dropkit.nn.GaussianNoise\(stddev\) directly",
            ):
                dnn.make_dropout(kind, 0.25)
            continue
        assert dnn.make_dropout(kind, 0.25).p == 0.25
    with pytest.raises(ValueError, match="kind must be one of 'dropout', 'dropout1d', .*'locked', got 'x'"):
        dnn.make_dropout("x", 0.1)
