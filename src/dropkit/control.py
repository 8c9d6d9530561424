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
from . import nn as dnn

__all__ = [
    "ACTIVATIONS", "Replaced", "insert_dropout", "set_dropout", "replace_dropout", "weight_dropout", "fuse_activation_dropout",
    "fuse_dropout_linear",
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

    Modules without a rate (GaussianNoise, which has a stddev) and modules whose rate is
    learned (ConcreteDropout, whose rate is a trained parameter strictly between 0 and 1)
    are left alone, also when `types` names them.

    Args:
        model: any module.
        p: the new rate.
        types: change only modules of these types (default: every dropout-family module).

    Returns:
        The qualified names of the modules changed ("" for `model` itself).

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
    return changed


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

    for parent, name, _, child in list(_children(model)):
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


# Modules whose forward runs linear2(dropout(...)) and uses that dropout nowhere else (torch's own source).
_FEEDFORWARD_PAIRS = {nn.TransformerEncoderLayer: ("dropout", "linear2"), nn.TransformerDecoderLayer: ("dropout", "linear2")}


def _dropout_linear_pairs(model: nn.Module):
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
        dropout = parent._modules[first]
        new = dnn.DropoutLinear.from_linear(parent._modules[second], dropout.p, generator=dropout.generator)
        parent._modules[second] = new.train(dropout.training)
        parent._modules[first] = nn.Identity()
        fused.append(name)
    return fused


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
