"""Fuse each activation + dropout pair of a built model into one module (dropkit.nn.ReLUDropout, GELUDropout).

Examples:
    >>> import torch.nn as nn
    >>> fuse_activation_dropout(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), dnn.Dropout(0.5)))
    ['2']
"""

from __future__ import annotations

from torch import nn

from .. import nn as dnn
from ..kernels import ACTIVATIONS

__all__ = ["fuse_activation_dropout"]


def _fused(activation: nn.Module, dropout: nn.Module) -> nn.Module | None:
    """The fused module for an (activation, dropout) pair, or None where the pair does not fuse exactly."""
    if type(dropout) is not dnn.Dropout or dropout.backward != "recompute":
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
