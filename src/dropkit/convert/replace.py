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
from typing import Any

from torch import nn

from .. import nn as dnn
from . import integrations
from .integrations import intercept
from .walk import children

__all__ = ["Replaced", "replace_dropout"]

# torch class -> dropkit class; exact types only, so dropkit's subclasses are never replaced again
_REPLACEMENTS: dict[type[nn.Module], type[nn.Module]] = {
    nn.Dropout: dnn.Dropout,
    nn.Dropout1d: dnn.Dropout1d,
    nn.Dropout2d: dnn.Dropout2d,
    nn.Dropout3d: dnn.Dropout3d,
    nn.AlphaDropout: dnn.AlphaDropout,
    nn.FeatureAlphaDropout: dnn.FeatureAlphaDropout,
}


class Replaced(Counter[str]):
    """replace_dropout's report: a Counter of the replaced modules that run, by class name, plus every other site.

    Attributes:
        routed: qualified names of the attention modules whose attention dropout now runs
            in dropkit's scaled_dot_product_attention (transformers, timm, nn.MultiheadAttention).
        modules: {name: "TorchClass -> DropkitClass(p=...)"} of the replaced modules that run.
        sites: the dropout calls the traced forward made outside dropout modules (functional
            calls and attention), each an integrations.intercept.Site with its rate and holder.
            Empty where no forward was traced (`traced` False).
        traced: whether one forward ran to find the sites.
        torch: {name: why} of the dropout that still runs in torch (also given in one warning).
        unrouted: the names in `torch`.
        complete: True when no dropout stays torch's.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.routed: list[str] = []
        self.modules: dict[str, str] = {}
        self.sites: list[intercept.Site] = []
        self.traced = False
        self.torch: dict[str, str] = {}

    @property
    def unrouted(self) -> list[str]:
        return list(self.torch)

    @property
    def complete(self) -> bool:
        return not self.torch

    def table(self) -> str:
        """One line per dropout site: name, kind, op, rate, and what runs it."""
        rows = [f"{name}  module  {what}" for name, what in self.modules.items()]
        rows += [f"{s.name}[{s.index}]  {s.kind}  {s.op}(p={s.rate}) -> dropkit (rate: {s.holder})" for s in self.sites]
        rows += [f"{name}  stays torch's: {why}" for name, why in self.torch.items()]
        return "\n".join(rows)


def _torch_converter(module: nn.Module) -> nn.Module:
    return _REPLACEMENTS[type(module)](module.p, module.inplace)


def _fused_rnn_dropout(model: nn.Module) -> dict[str, str]:
    """RNNs whose dropout between layers runs inside torch's fused kernel, which no interception reaches."""
    return {
        name: f"{type(m).__name__}(dropout={m.dropout}) drops between layers inside torch's fused RNN kernel"
        for name, m in model.named_modules()
        if isinstance(m, nn.RNNBase) and m.dropout > 0 and m.num_layers > 1
    }


def replace_dropout(model: nn.Module, example: intercept.Example | None = None) -> tuple[nn.Module, Replaced]:
    """Make every dropout `model` runs dropkit's: modules, functional calls and attention.

    Replaced: torch's Dropout, Dropout1d/2d/3d, AlphaDropout and FeatureAlphaDropout, and where
    timm is imported its DropPath and DropBlock2d; p (drop_prob), inplace, scale_by_keep and
    training mode are kept; a module shared by several parents stays shared. Routed: torch's
    nn.MultiheadAttention, and where those libraries are imported, the attention of transformers
    models (through AttentionInterface) and timm's Attention. Intercepted: every call of torch's
    dropout functions and of scaled_dot_product_attention with dropout made while the model
    runs (dropkit.convert.integrations.intercept), recompute of activation checkpointing included.

    One training forward on `example` (no gradient, nothing of the model changes) finds the
    functional and attention call sites, their rates and the attributes the rates are read
    from, so set_dropout and mc_dropout reach them. Without `example`, transformers and timm
    models get one built from their config; other models are not traced (their calls are
    still intercepted, but gated rates are unknown to mc_dropout and set_dropout).
    What still runs in torch (RNN dropout inside torch's fused kernel, timm's
    DropBlock2d(with_noise=True), and what the traced forward saw: masks a module draws itself
    with torch.rand/bernoulli, nn.MultiheadAttention calls the interceptor cannot enter) is named
    with its reason in one warning and in the report.

    Args:
        model: any module; changed in place.
        example: input of one forward: a Tensor, a tuple of positional arguments or a dict of keyword arguments.

    Returns:
        (model, a Replaced report). If `model` itself is a torch dropout, the returned model is its replacement.

    Examples:
        >>> import torch
        >>> model, report = replace_dropout(nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.1)), torch.ones(1, 2))
        >>> model[1], report, report.complete
        (Dropout(p=0.1, inplace=False), Replaced({'Dropout': 1}), True)
    """
    routing = integrations.route(model)
    converters = dict.fromkeys(_REPLACEMENTS, _torch_converter) | routing.converters
    report = Replaced()
    report.routed = routing.routed
    report.torch = routing.unrouted | _fused_rnn_dropout(model)
    done: dict[int, nn.Module] = {}
    converted: list[tuple[str, nn.Module, nn.Module]] = []

    def convert(name: str, module: nn.Module) -> nn.Module:
        if id(module) not in done:
            new = converters[type(module)](module)  # None: a converter that cannot take these options
            done[id(module)] = module if new is None else new.train(module.training)
            if new is not None:
                converted.append((name, module, new))
        return done[id(module)]

    for parent, name, qualified, child in list(children(model)):
        if type(child) in converters:
            setattr(parent, name, convert(qualified, child))
    if type(model) in converters:
        model = convert("", model)
    intercept.install(model)
    built, example = example is None, routing.example if example is None else example
    ran = None
    try:
        if example is not None:
            report.sites = intercept.trace(model, example)
            it = intercept.interceptor(model)
            assert it is not None  # intercept.install(model) above put it there
            ran = it.ran
            report.torch |= it.torch
            report.traced = True
    except Exception as error:  # an input built from the config may not suit the model: convert untraced
        if not built:
            raise
        warnings.warn(
            f"replace_dropout: no forward traced ({error!r}); pass example= to list the call sites", stacklevel=2
        )
    for name, old, new in converted:
        if ran is None or name in ran:  # a module that only holds a rate others read never runs
            report[type(old).__name__] += 1
            report.modules[name] = f"{type(old).__name__} -> {type(new).__name__}({new.extra_repr()})"
    if report.torch:
        warnings.warn(
            "replace_dropout: this dropout still runs in torch: "
            + "; ".join(f"{name or type(model).__name__}: {why}" for name, why in report.torch.items()),
            stacklevel=2,
        )
    return model, report
