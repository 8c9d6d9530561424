"""Swap torch's dropout layers for dropkit's, and route attention dropout through dropkit.

Examples:
    >>> import torch.nn as nn
    >>> model, report = replace_dropout(nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.2)))
    >>> report
    Replaced({'Dropout': 1})
"""

from __future__ import annotations

import warnings
from collections import Counter

from torch import nn

from .. import nn as dnn
from . import integrations
from .walk import children

__all__ = ["Replaced", "replace_dropout"]

# torch class -> dropkit class; exact types only, so dropkit's subclasses are never replaced again
_REPLACEMENTS = {
    nn.Dropout: dnn.Dropout,
    nn.Dropout1d: dnn.Dropout1d,
    nn.Dropout2d: dnn.Dropout2d,
    nn.Dropout3d: dnn.Dropout3d,
    nn.AlphaDropout: dnn.AlphaDropout,
    nn.FeatureAlphaDropout: dnn.FeatureAlphaDropout,
}


class Replaced(Counter):
    """replace_dropout's report: a Counter of the replaced modules that run, by class name, plus what was routed.

    Attributes:
        routed: qualified names of the attention modules whose attention dropout now runs
            in dropkit's scaled_dot_product_attention (transformers, timm). Dropout modules
            that only hold such a module's rate are replaced too (set_dropout reaches them),
            but are listed here through their attention module, not counted.
        unrouted: modules whose dropout still runs in torch (also given in one warning).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.routed: list[str] = []
        self.unrouted: list[str] = []


def _torch_converter(module: nn.Module) -> nn.Module:
    return _REPLACEMENTS[type(module)](module.p, module.inplace)


def replace_dropout(model: nn.Module) -> tuple[nn.Module, Replaced]:
    """Replace every torch dropout module with dropkit's, and route attention dropout through dropkit.

    Replaced: torch's Dropout, Dropout1d/2d/3d, AlphaDropout and FeatureAlphaDropout, and where
    timm is imported its DropPath and DropBlock2d; p (drop_prob), inplace, scale_by_keep and
    training mode are kept; a module shared by several parents stays shared. Routed: torch's
    nn.MultiheadAttention with dropout (so nn.Transformer*Layer too), and where those libraries
    are imported, the attention of transformers models (through AttentionInterface) and timm's
    Attention. Modules whose dropout stays torch's (nn.MultiheadAttention with bias_k or
    add_zero_attn, transformers models whose attention does not use AttentionInterface, other
    timm attention classes) are named in one warning and in the report's `unrouted`.

    Returns:
        (model, a Replaced report: a Counter of replaced modules by original class name, with
        `routed` and `unrouted`). If `model` itself is a torch dropout, the returned model is
        its replacement.

    Examples:
        >>> model, report = replace_dropout(nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.1)))
        >>> model[1], report, report.routed
        (Dropout(p=0.1, inplace=False), Replaced({'Dropout': 1}), [])
    """
    routing = integrations.route(model)
    converters = dict.fromkeys(_REPLACEMENTS, _torch_converter) | routing.converters
    report = Replaced()
    report.routed = routing.routed
    report.unrouted = routing.unrouted
    done: dict[int, nn.Module] = {}

    def convert(module: nn.Module) -> nn.Module:
        if id(module) not in done:
            new = converters[type(module)](module)  # None: a converter that cannot take these options
            done[id(module)] = module if new is None else new.train(module.training)
            if new is not None and id(module) not in routing.rate_holders:
                report[type(module).__name__] += 1
        return done[id(module)]

    for parent, name, _, child in list(children(model)):
        if type(child) in converters:
            setattr(parent, name, convert(child))
    if type(model) in converters:
        model = convert(model)
    if report.unrouted:
        warnings.warn(
            "replace_dropout: the attention dropout of these modules still runs in torch: "
            + ", ".join(report.unrouted),
            stacklevel=2,
        )
    return model, report
