"""Dropout on models that already exist: insert it, change its rate, swap torch's layers for dropkit's.

Examples:
    >>> import torch.nn as nn, dropkit
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> model, places = dropkit.insert_dropout(model, 0.2)
    >>> places
    ['1']
    >>> dropkit.set_dropout(model, 0.1)
    ['1.1']
"""

from __future__ import annotations

import warnings
from collections import Counter

import torch
from torch import nn

from . import _validate, integrations
from .integrations import intercept
from . import nn as dnn

__all__ = [
    "ACTIVATIONS", "Replaced", "insert_dropout", "set_dropout", "replace_dropout", "weight_dropout", "fuse_activation_dropout"
]

ACTIVATIONS = (nn.ReLU, nn.GELU, nn.SiLU, nn.Tanh, nn.ELU, nn.SELU)

# torch class -> dropkit class; exact types only, so dropkit's subclasses are never replaced again
_REPLACEMENTS = {
    nn.Dropout: dnn.Dropout,
    nn.Dropout1d: dnn.Dropout1d,
    nn.Dropout2d: dnn.Dropout2d,
    nn.Dropout3d: dnn.Dropout3d,
    nn.AlphaDropout: dnn.AlphaDropout,
    nn.FeatureAlphaDropout: dnn.FeatureAlphaDropout,
}


def _children(model: nn.Module):
    """(parent, attribute name, qualified name, child) for every submodule, in registration order."""
    for parent_name, parent in model.named_modules(remove_duplicate=False):
        for name, child in parent.named_children():
            yield parent, name, f"{parent_name}.{name}" if parent_name else name, child


def _has_own_parameters(module: nn.Module) -> bool:
    return next(module.parameters(recurse=False), None) is not None


def insert_dropout(
    model: nn.Module, p: float, *, after: tuple[type[nn.Module], ...] = ACTIVATIONS, kind: str = "dropout"
) -> tuple[nn.Module, list[str]]:
    """Put a dropout module after every hidden activation of `model` (Srivastava et al. 2014's placement).

    An activation (an instance of `after`) is hidden when a layer with parameters is
    registered after it; activations after the last such layer (the output) get none.
    Each hidden activation is replaced in its parent by nn.Sequential(activation, dropout),
    which keeps every other state_dict key; an activation already followed by a dropout
    in an nn.Sequential is left alone, so calling this twice inserts nothing the second time.
    With kind="dropout", SELU activations get AlphaDropout; other kinds are those of
    dropkit.nn.make_dropout and are used for every activation.

    Args:
        model: any module (nn.Sequential nests and named children alike); changed in place.
        p: the dropout rate.
        after: activation types to follow with dropout.
        kind: one of dropkit.nn.DROPOUT_KINDS.

    Returns:
        (model, the qualified names of the activations that got a dropout).

    Examples:
        >>> m, places = insert_dropout(nn.Sequential(nn.Linear(2, 2), nn.SELU(), nn.Linear(2, 1)), 0.1)
        >>> m[1]
        Sequential(
          (0): SELU()
          (1): AlphaDropout(p=0.1, inplace=False)
        )
    """
    p = _validate.p(p)
    _validate.choice(kind, dnn.DROPOUT_KINDS, "kind")
    order = {id(m): i for i, m in enumerate(model.modules())}
    last_layer = max((order[id(m)] for m in model.modules() if _has_own_parameters(m)), default=-1)
    targets = []
    for parent, name, qualified, child in _children(model):
        if not isinstance(child, after) or order[id(child)] > last_layer:
            continue
        if isinstance(parent, nn.Sequential):
            names = list(parent._modules)
            following = names.index(name) + 1
            if following < len(names) and dnn.is_dropout(parent._modules[names[following]]):
                continue
        targets.append((parent, name, qualified, child))
    for parent, name, _, child in targets:
        alpha = kind == "dropout" and isinstance(child, nn.SELU)
        drop = dnn.AlphaDropout(p) if alpha else dnn.make_dropout(kind, p)
        drop.train(child.training)
        setattr(parent, name, nn.Sequential(child, drop))
    return model, [qualified for _, _, qualified, _ in targets]


def set_dropout(model: nn.Module, p: float, *, types: type | tuple[type, ...] | None = None) -> list[str]:
    """Set the rate of every dropout-family module (dropkit's and torch's) in `model`, in place.

    In a model converted by replace_dropout with a traced forward, the functional and attention
    call sites get it too (unless `types` is given): the attribute each reads its rate from is set,
    or the site's rate where it reads none. Modules without a rate (GaussianNoise, which has a stddev) and modules whose rate is
    learned (ConcreteDropout, whose rate is a trained parameter strictly between 0 and 1)
    are left alone, also when `types` names them.

    Args:
        model: any module.
        p: the new rate.
        types: change only modules of these types (default: every dropout-family module).

    Returns:
        The qualified names of the modules changed ("" for `model` itself), then of the attributes
        set ("name.attr") and the sites given the rate ("name.op[index]").

    Examples:
        >>> set_dropout(nn.Sequential(nn.Dropout(0.5), nn.Linear(2, 2)), 0.1)
        ['0']
    """
    p = _validate.p(p)
    changed = []
    for name, module in model.named_modules():
        if (
            dnn.is_dropout(module)
            and hasattr(module, "p")
            and not isinstance(module, dnn.ConcreteDropout)  # a learned rate: set_dropout must not overwrite it
            and (types is None or isinstance(module, types))
        ):
            module.p = p
            changed.append(name)
    sites = intercept.interceptor(model)
    if sites is not None and types is None:
        changed += [name for name in sites.set_rate(p) if name not in changed]
    return changed


class Replaced(Counter):
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

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.routed: list[str] = []
        self.modules: dict[str, str] = {}
        self.sites: list = []
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


def replace_dropout(model: nn.Module, example=None) -> tuple[nn.Module, Replaced]:
    """Make every dropout `model` runs dropkit's: modules, functional calls and attention.

    Replaced: torch's Dropout, Dropout1d/2d/3d, AlphaDropout and FeatureAlphaDropout, and where
    timm is imported its DropPath and DropBlock2d; p (drop_prob), inplace, scale_by_keep and
    training mode are kept; a module shared by several parents stays shared. Routed: torch's
    nn.MultiheadAttention, and where those libraries are imported, the attention of transformers
    models (through AttentionInterface) and timm's Attention. Intercepted: every call of torch's
    dropout functions and of scaled_dot_product_attention with dropout made while the model
    runs (dropkit.integrations.intercept), recompute of activation checkpointing included.

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

    for parent, name, qualified, child in list(_children(model)):
        if type(child) in converters:
            setattr(parent, name, convert(qualified, child))
    if type(model) in converters:
        model = convert("", model)
    intercept.install(model)
    built, example = example is None, routing.example if example is None else example
    ran = None
    try:
        if example is not None:
            report.sites, ran = intercept.trace(model, example), intercept.interceptor(model).ran
            report.torch |= intercept.interceptor(model).torch
            report.traced = True
    except Exception as error:  # an input built from the config may not suit the model: convert untraced
        if not built:
            raise
        warnings.warn(f"replace_dropout: no forward traced ({error!r}); pass example= to list the call sites", stacklevel=2)
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


def _fused(activation: nn.Module, dropout: nn.Module) -> nn.Module | None:
    """The fused module for an (activation, dropout) pair, or None where the pair does not fuse exactly."""
    if type(dropout) is not dnn.Dropout or dropout.backward != "recompute":
        return None
    if type(activation) is nn.ReLU:
        fused = dnn.ReLUDropout(dropout.p, generator=dropout.generator)
    elif type(activation) is nn.GELU and activation.approximate == "none":
        fused = dnn.GELUDropout(dropout.p, generator=dropout.generator)
    else:
        return None
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


def weight_dropout(
    module: nn.Module, name: str = "weight", p: float = 0.5, *, generator: torch.Generator | None = None
) -> nn.Module:
    """Drop the parameter `name` of `module` afresh each forward (DropConnect; AWD-LSTM's WeightDrop).

    Registers a dropkit.nn.WeightDropout parametrization, so module.<name> is the dropped
    weight in train() and the weight itself in eval(); set_dropout and is_dropout find it.
    Undo with torch.nn.utils.parametrize.remove_parametrizations(module, name, leave_parametrized=False).
    Works with nn.LSTM/GRU weights (e.g. name="weight_hh_l0").

    Examples:
        >>> lin = weight_dropout(nn.Linear(4, 3), "weight", 0.3)
        >>> y = lin(torch.randn(2, 4))
    """
    p = _validate.p(p)
    _validate.parameter_name(module, name)
    torch.nn.utils.parametrize.register_parametrization(module, name, dnn.WeightDropout(p, generator=generator))
    return module
