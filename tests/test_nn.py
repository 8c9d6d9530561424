"""dropkit.nn.Dropout is a drop-in for torch.nn.Dropout."""

import pytest
import torch
import torch.nn as nn
from _helpers.models import seed_network
from _helpers.stats import four_sigma

import dropkit


def test_repr_matches_torch():
    assert repr(dropkit.nn.Dropout(p=0.5)) == "Dropout(p=0.5, inplace=False)" == repr(nn.Dropout(p=0.5))
    assert repr(dropkit.nn.Dropout(0.2, inplace=True)) == "Dropout(p=0.2, inplace=True)"
    assert repr(dropkit.nn.Dropout(0.2, backward="bitpacked")) == "Dropout(p=0.2, inplace=False, backward='bitpacked')"


def test_is_a_torch_dropout_and_defaults_match():
    m = dropkit.nn.Dropout()
    assert isinstance(m, nn.Dropout) and m.p == nn.Dropout().p and m.inplace is False


def test_seed_network_trains_and_evaluates():
    model = seed_network()
    x = torch.randn(64, 784)
    model.train()
    assert not torch.equal(model(x), model(x))  # fresh masks per call
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
        plain = nn.Sequential(*[m for m in model if not isinstance(m, nn.Dropout)])
        assert torch.equal(model(x), plain(x))


def test_train_mode_drops_with_the_right_rate():
    torch.manual_seed(0)
    m = dropkit.nn.Dropout(0.3)
    y = m(torch.ones(100_000))
    kept = (y != 0).float().mean().item()
    tol = four_sigma(0.3, 100_000)
    assert abs(kept - 0.7) < tol, f"kept {kept}, expected 0.7 +- {tol} (4 sigma)"


@pytest.mark.parametrize("inplace", [False, True])
def test_eval_identity_with_inplace(inplace):
    m = dropkit.nn.Dropout(0.5, inplace=inplace).eval()
    x = torch.randn(10)
    assert m(x) is x


def test_module_rng_advances_and_manual_seed_reproduces():
    m = dropkit.nn.Dropout(0.5)
    x = torch.randn(500)
    torch.manual_seed(1)
    a, b = m(x), m(x)
    torch.manual_seed(1)
    assert torch.equal(m(x), a) and torch.equal(m(x), b) and not torch.equal(a, b)


def test_module_generator():
    x = torch.randn(500)
    a = dropkit.nn.Dropout(0.5, generator=torch.Generator().manual_seed(2))(x)
    b = dropkit.nn.Dropout(0.5, generator=torch.Generator().manual_seed(2))(x)
    assert torch.equal(a, b)


def test_state_dict_is_empty_like_torch():
    assert dropkit.nn.Dropout(0.5).state_dict() == {}


@pytest.mark.parametrize(
    "p,exc,message",
    [
        (-0.1, ValueError, r"^p must be between 0 and 1, got -0\.1$"),
        (1.1, ValueError, r"^p must be between 0 and 1, got 1\.1$"),
        (float("nan"), ValueError, r"^p must be between 0 and 1, got nan$"),
        ("a", TypeError, r"^p must be a float in \[0, 1\], got 'a' of type str$"),
    ],
)
def test_constructor_validates_p(p, exc, message):
    with pytest.raises(exc, match=message):
        dropkit.nn.Dropout(p)
