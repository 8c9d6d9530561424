"""Multilayer perceptrons with dropout after each hidden activation, as in Srivastava et al. (2014).

Plain dropout after a ReLU is built fused (dropkit.fuse_activation_dropout): the
ReLU's slot holds an Identity and the dropout's a ReLUDropout, with the same outputs
and masks as the pair.

Examples:
    >>> build_mlp(784, (256, 128), 10, dropout=(0.5, 0.3))
    Sequential(
      (0): Linear(in_features=784, out_features=256, bias=True)
      (1): Identity()
      (2): ReLUDropout(p=0.5)
      (3): Linear(in_features=256, out_features=128, bias=True)
      (4): Identity()
      (5): ReLUDropout(p=0.3)
      (6): Linear(in_features=128, out_features=10, bias=True)
    )
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import nn

from ..convert.fuse import fuse_activation_dropout
from ..convert.schedule import DropoutSchedule
from ..family.registry import kinds
from ..nn import ConcreteDropout, Dropout, is_dropout, make_dropout
from .errors import SettingsError

__all__ = [
    "SettingsError",
    "MLP_DROPOUT_KINDS",
    "DROPOUT_TYPES",
    "NOT_FOR_MLP",
    "CONCRETE_LENGTH_SCALE",
    "concrete_regularizers",
    "concrete_modules",
    "dropout_modules",
    "build_mlp",
    "schedule_dropout",
    "apply_max_norm",
    "weights",
]

# Why the MLP refuses a kind, by what its class declares: each would fail on 2-D input mid-training,
# silently reinterpret it, or take a number that is not a rate.
_CHANNELS = (
    "drops whole channels or blocks of (N, C, ...) feature maps, and an MLP's (batch, features) activations have none"
)
_WHY_NOT = {
    "channel": _CHANNELS,
    "block": _CHANNELS,
    "sample": "drops whole samples (stochastic depth), which needs a residual branch that the MLP does not have",
    "sequence": "shares one mask over the time steps of a sequence, and an MLP's activations have no time axis",
}
_NO_RATE = "has no rate (it adds noise of a given stddev), so --dropout and --dropout-schedule cannot set it"
NOT_FOR_MLP = {
    kind: _NO_RATE if not cls.has_rate else _WHY_NOT.get(cls.mask_unit, f"drops whole {cls.mask_unit}s")
    for kind, cls in kinds().items()
    if not cls.has_rate or cls.mask_unit != "element"
}
# The kinds of dropkit.nn.make_dropout that act on an MLP's (batch, features) activations unit by unit.
MLP_DROPOUT_KINDS = tuple(kind for kind in kinds() if kind not in NOT_FOR_MLP)
# The lab's --dropout-type choices: those kinds, plus "concrete" (ConcreteDropout, Gal et al. 2017),
# which make_dropout does not build because it wraps a layer and learns its rate.
DROPOUT_TYPES = MLP_DROPOUT_KINDS + ("concrete",)
# The prior length scale l of Gal, Hron and Kendall's concrete dropout code (their MNIST and UCI
# experiments): weight_regularizer = l^2 / N, dropout_regularizer = 2 / N (tau = 1 for classification).
CONCRETE_LENGTH_SCALE = 1e-4


def _per_layer(dropout: float | Sequence[float] | None, n_hidden: int) -> tuple[float, ...]:
    """One rate per hidden layer from one rate or one per layer (checked by dropkit.lab.settings where they enter)."""
    rates = (0.0,) if dropout is None else (dropout,) if isinstance(dropout, (int, float)) else tuple(dropout)
    return rates * n_hidden if len(rates) == 1 else rates


def concrete_regularizers(n_train: int | None, length_scale: float = CONCRETE_LENGTH_SCALE) -> tuple[float, float]:
    """(weight_regularizer, dropout_regularizer) of ConcreteDropout for a training set of n_train examples.

    Gal, Hron and Kendall (2017)'s choices: l^2 / N and 2 / N, with l the prior length scale
    (1e-4 in their code) and the model precision tau = 1 (a classifier has no output noise),
    for a loss that is the mean over the batch, as the lab's cross-entropy is. A SettingsError
    if n_train is unknown (None) or not a positive int.

    Examples:
        >>> concrete_regularizers(50000)
        (2e-13, 4e-05)
    """
    if not isinstance(n_train, int) or n_train < 1:
        raise SettingsError(f"concrete dropout needs the training set size, a positive int, got {n_train!r}")
    return length_scale**2 / n_train, 2.0 / n_train


def build_mlp(
    n_in: int,
    hidden: Sequence[int],
    n_out: int,
    dropout: float | Sequence[float] | None = None,
    input_dropout: float = 0.0,
    kind: str = "dropout",
    n_train: int | None = None,
) -> nn.Sequential:
    """Linear-ReLU blocks with dropout of `kind` after each hidden activation (and plain dropout on the input).

    A rate of 0 adds no layer, so a net with and a net without dropout built after the
    same torch.manual_seed start from identical weights. Input dropout stays plain
    (Bernoulli) dropout whatever `kind` is: it is Srivastava et al.'s pixel dropout,
    and the other kinds are built for hidden activations (alpha dropout for SELU units).

    With kind="concrete" the dropout after hidden layer i is a ConcreteDropout wrapping the
    next Linear (it drops that layer's input), its rate learned from the initial `dropout`;
    its regularisers are concrete_regularizers(n_train). Building it draws no random
    numbers, so the twins above still start from the same weights.

    Args:
        n_in: input features. hidden: widths of the hidden layers. n_out: classes.
        dropout: one rate, or one per hidden layer (initial rates for "concrete").
        input_dropout: rate on the input.
        kind: the hidden dropout layers' kind, one of DROPOUT_TYPES (dropkit.nn.make_dropout, or "concrete").
        n_train: training set size N; needed by "concrete" only.

    The widths, rates and kind are checked where they enter (dropkit.lab.settings: Settings,
    ActiveSettings), once, not again here.

    Examples:
        >>> net = build_mlp(64, (128,), 10, dropout=0.5, input_dropout=0.2, kind="gaussian")
        >>> build_mlp(64, (32,), 10, dropout=0.2, kind="concrete", n_train=50000)[2]
        ConcreteDropout(
          p=0.2, temperature=0.1, weight_regularizer=2e-13, dropout_regularizer=4e-05
          (layer): Linear(in_features=32, out_features=10, bias=True)
        )
    """
    rates = _per_layer(dropout, len(hidden))
    if kind == "concrete" and any(rates):
        weight_reg, dropout_reg = concrete_regularizers(n_train)
    layers: list[nn.Module] = [Dropout(input_dropout)] if input_dropout > 0 else []
    width = n_in
    for i, (h, p) in enumerate(zip(hidden, rates)):
        linear = nn.Linear(width, h)
        block: nn.Module = linear
        if kind == "concrete" and i > 0 and rates[i - 1] > 0:
            block = ConcreteDropout(
                linear, rates[i - 1], weight_regularizer=weight_reg, dropout_regularizer=dropout_reg
            )
        layers += [block, nn.ReLU()]
        if p > 0 and kind != "concrete":
            layers.append(make_dropout(kind, p))
        width = h
    out = nn.Linear(width, n_out)
    if kind == "concrete" and rates[-1] > 0:
        layers.append(ConcreteDropout(out, rates[-1], weight_regularizer=weight_reg, dropout_regularizer=dropout_reg))
    else:
        layers.append(out)
    model = nn.Sequential(*layers)
    fuse_activation_dropout(model)  # ReLU + Dropout in one pass: the same outputs, masks and state dict
    return model


def concrete_modules(model: nn.Module) -> list[ConcreteDropout]:
    """The model's ConcreteDropout layers, in order: add the sum of their .regularization() to the loss."""
    return [m for m in model.modules() if isinstance(m, ConcreteDropout)]


def dropout_modules(model: nn.Module) -> list[nn.Module]:
    """Every dropout layer of the model in order (input dropout first), learned-rate ones included: whose .p are its rates."""
    return [m for m in model.modules() if is_dropout(m)]


def schedule_dropout(model: nn.Module, spec: str) -> list[DropoutSchedule]:
    """One DropoutSchedule per dropout layer of `model` (input dropout included), each toward the layer's own rate.

    One per layer because a DropoutSchedule drives all the modules it is given to a single
    rate, and the layers of an MLP have their own (the seed network's 0.5 and 0.3).
    ConcreteDropout layers get none: their rates are learned, not scheduled.

    Examples:
        >>> [s.target for s in schedule_dropout(build_mlp(4, (8, 8), 2, dropout=(0.5, 0.3)), "late:3")]
        [0.5, 0.3]
    """
    # Every dropout layer with a rate keeps it as the float .p (torch's and dropkit's); nn.Module types
    # attributes it does not declare as Tensor | Module.
    return [
        DropoutSchedule.from_string(m, cast(float, m.p), spec)
        for m in model.modules()
        if is_dropout(m) and not isinstance(m, ConcreteDropout)
    ]


def weights(model: nn.Module) -> list[torch.Tensor]:
    """The weight matrices of the model's Linear layers (what L1, L2 and max-norm act on; not biases)."""
    return [m.weight for m in model.modules() if isinstance(m, nn.Linear)]


@torch.no_grad()
def apply_max_norm(model: nn.Module, c: float) -> None:
    """Rescale each unit's incoming weight vector to L2 norm at most c (Srivastava et al. 2014, section 5.1).

    Called after every optimizer step; rows of a Linear weight are the units' incoming weights.

    Examples:
        >>> net = build_mlp(4, (8,), 2); apply_max_norm(net, 1.0)
    """
    for w in weights(model):
        w.renorm_(2, 0, c)
