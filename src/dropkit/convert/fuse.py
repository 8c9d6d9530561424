"""Fuse pairs of a built model into one module: activation + dropout (dropkit.nn.ReLUDropout, GELUDropout),
and dropout + Linear (dropkit.nn.DropoutLinear, which keeps the undropped input and a seed).

Examples:
    >>> import torch.nn as nn
    >>> fuse_activation_dropout(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), dnn.Dropout(0.5)))
    ['2']
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

from torch import nn

from .. import nn as dnn
from ..kernels import ACTIVATIONS

__all__ = ["fuse_activation_dropout", "fuse_dropout_linear"]


def _fused(activation: nn.Module, dropout: nn.Module) -> nn.Module | None:
    """The fused module for an (activation, dropout) pair, or None where the pair does not fuse exactly."""
    if type(dropout) is not dnn.Dropout:
        return None
    if dropout.backward != "recompute":
        return None
    name = next((name for name, a in ACTIVATIONS.items() if a.computed_by(activation)), None)
    if name is None:
        return None
    fused = dnn.ActivationDropout.computing(name)(dropout.p, generator=dropout.generator)
    return fused.train(dropout.training)


def fuse_activation_dropout(model: nn.Module) -> list[str]:
    """Fuse each nn.ReLU or nn.GELU followed by a dropkit.nn.Dropout in an nn.Sequential, in place.

    The dropout's slot gets the fused module (ReLUDropout, GELUDropout) with its p,
    generator and mode; the activation's slot an nn.Identity. Names, indices and the
    state dict stay as they were, and so do the outputs and masks for the same seeds
    (dropout draws one seed per call either way). Dropout with backward="bitpacked"
    and gelu's tanh approximation are left alone.

    Returns:
        The names of the fused modules.

    Examples:
        >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), dnn.Dropout(0.5), nn.Linear(8, 2))
        >>> fuse_activation_dropout(net), net[1], net[2]
        (['2'], Identity(), ReLUDropout(p=0.5))
    """
    fused_names = []
    for prefix, parent in model.named_modules():
        if not isinstance(parent, nn.Sequential):
            continue
        names = list(parent._modules)
        for first, second in zip(names, names[1:]):
            fused = _fused(parent._modules[first], parent._modules[second])
            if fused is not None:
                parent._modules[first] = nn.Identity()
                parent._modules[second] = fused
                fused_names.append(f"{prefix}.{second}" if prefix else second)
    return fused_names


# Modules whose forward runs linear2(dropout(...)) and uses that dropout nowhere else (torch's own source).
_FEEDFORWARD_PAIRS = {
    nn.TransformerEncoderLayer: ("dropout", "linear2"),
    nn.TransformerDecoderLayer: ("dropout", "linear2"),
}


def _dropout_linear_pairs(model: nn.Module) -> Iterator[tuple[nn.Module, str, str, str]]:
    """(parent, dropout slot, linear slot, qualified name of the linear) for each fusable Dropout -> Linear."""
    for prefix, parent in model.named_modules():
        if isinstance(parent, nn.Sequential):
            names = list(parent._modules)
            slots = list(zip(names, names[1:]))
        else:
            slots = [_FEEDFORWARD_PAIRS[type(parent)]] if type(parent) in _FEEDFORWARD_PAIRS else []
        for first, second in slots:
            dropout, linear = parent._modules[first], parent._modules[second]
            if (
                type(dropout) is dnn.Dropout
                and dropout.backward == "recompute"
                and not dropout.inplace
                and type(linear) is nn.Linear
            ):
                yield parent, first, second, f"{prefix}.{second}" if prefix else second


def fuse_dropout_linear(model: nn.Module) -> list[str]:
    """Fuse each dropkit.nn.Dropout that feeds an nn.Linear into a DropoutLinear, in place.

    Pairs: neighbours in an nn.Sequential, and the feed-forward block of torch's
    nn.TransformerEncoderLayer / nn.TransformerDecoderLayer (linear2(dropout(...))).
    The Linear's slot gets a dropkit.nn.DropoutLinear over the same parameters with
    the dropout's p, generator and mode; the dropout's slot an nn.Identity. Names and
    state dict stay as they were; outputs and gradients too for the same seeds. What it
    saves: the Linear's dropped copy of its input, whenever the undropped input is kept
    anyway (after ReLU, which keeps its output); after an activation that keeps its input
    (GELU) the bytes are the same. Dropout with backward="bitpacked" or inplace=True
    is left alone; run replace_dropout first to turn torch's Dropout into dropkit's.

    Returns:
        The names of the fused Linear modules.

    Examples:
        >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), dnn.Dropout(0.5), nn.Linear(8, 2))
        >>> fuse_dropout_linear(net), net[2], net[3]
        (['3'], Identity(), DropoutLinear(in_features=8, out_features=2, bias=True, p=0.5))
    """
    fused = []
    for parent, first, second, name in list(_dropout_linear_pairs(model)):
        # _dropout_linear_pairs checked both modules' types
        dropout = cast(dnn.Dropout, parent._modules[first])
        new = dnn.DropoutLinear.from_linear(
            cast(nn.Linear, parent._modules[second]), dropout.p, generator=dropout.generator
        )
        parent._modules[second] = new.train(dropout.training)
        parent._modules[first] = nn.Identity()
        fused.append(name)
    return fused
