"""Multilayer perceptrons with dropout after each hidden activation, as in Srivastava et al. (2014).

Example:
    >>> build_mlp(784, (256, 128), 10, dropout=(0.5, 0.3))
    Sequential(
      (0): Linear(in_features=784, out_features=256, bias=True)
      (1): ReLU()
      (2): Dropout(p=0.5, inplace=False)
      (3): Linear(in_features=256, out_features=128, bias=True)
      (4): ReLU()
      (5): Dropout(p=0.3, inplace=False)
      (6): Linear(in_features=128, out_features=10, bias=True)
    )
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .. import _validate
from ..nn import Dropout
from . import LabError

__all__ = ["SettingsError", "dropout_rates", "rate", "hidden_widths", "build_mlp", "apply_max_norm", "weights"]


class SettingsError(LabError):
    """A training setting is out of range or inconsistent."""


def dropout_rates(dropout: float | Sequence[float] | None, n_hidden: int) -> tuple[float, ...]:
    """One dropout rate per hidden layer: a single rate is used for every layer.

    Example:
        >>> dropout_rates(0.5, 3)
        (0.5, 0.5, 0.5)
    """
    if dropout is None:
        return (0.0,) * n_hidden
    rates = (dropout,) * n_hidden if isinstance(dropout, (int, float)) else tuple(dropout)
    if len(rates) == 1:
        rates = rates * n_hidden
    if len(rates) != n_hidden:
        raise SettingsError(f"dropout needs one rate or one per hidden layer ({n_hidden}), got {len(rates)}: {rates}")
    return tuple(rate(r, "dropout") for r in rates)


def rate(value, name: str) -> float:
    """A dropout rate in [0, 1], checked by dropkit's own validator; SettingsError otherwise."""
    try:
        return _validate.p(value, name)
    except (TypeError, ValueError) as e:
        raise SettingsError(str(e)) from None


def hidden_widths(hidden: Sequence[int]) -> tuple[int, ...]:
    """Hidden layer widths as a tuple of positive ints; SettingsError otherwise."""
    if not hidden or any(int(h) < 1 for h in hidden):
        raise SettingsError(f"hidden must list one or more positive layer widths, got {tuple(hidden)}")
    return tuple(int(h) for h in hidden)


def build_mlp(
    n_in: int,
    hidden: Sequence[int],
    n_out: int,
    dropout: float | Sequence[float] | None = None,
    input_dropout: float = 0.0,
) -> nn.Sequential:
    """Linear-ReLU blocks with dropkit Dropout after each hidden activation (and optionally on the input).

    A rate of 0 adds no layer, so a net with and a net without dropout built after the
    same torch.manual_seed start from identical weights.

    Args:
        n_in: input features. hidden: widths of the hidden layers. n_out: classes.
        dropout: one rate, or one per hidden layer. input_dropout: rate on the input.

    Example:
        >>> net = build_mlp(64, (128,), 10, dropout=0.5, input_dropout=0.2)
    """
    hidden = hidden_widths(hidden)
    rates = dropout_rates(dropout, len(hidden))
    input_dropout = rate(input_dropout, "input_dropout")
    layers: list[nn.Module] = [Dropout(input_dropout)] if input_dropout > 0 else []
    width = n_in
    for h, p in zip(hidden, rates):
        layers += [nn.Linear(width, h), nn.ReLU()]
        if p > 0:
            layers.append(Dropout(p))
        width = h
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


def weights(model: nn.Module) -> list[torch.Tensor]:
    """The weight matrices of the model's Linear layers (what L1, L2 and max-norm act on; not biases)."""
    return [m.weight for m in model.modules() if isinstance(m, nn.Linear)]


@torch.no_grad()
def apply_max_norm(model: nn.Module, c: float) -> None:
    """Rescale each unit's incoming weight vector to L2 norm at most c (Srivastava et al. 2014, section 5.1).

    Called after every optimizer step; rows of a Linear weight are the units' incoming weights.

    Example:
        >>> net = build_mlp(4, (8,), 2); apply_max_norm(net, 1.0)
    """
    for w in weights(model):
        w.renorm_(2, 0, c)
