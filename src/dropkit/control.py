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

from collections import Counter

import torch
from torch import nn

from . import _validate
from . import nn as dnn

__all__ = ["ACTIVATIONS", "insert_dropout", "set_dropout", "replace_dropout", "weight_dropout"]

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


def _converted(module: nn.Module) -> nn.Module:
    new = _REPLACEMENTS[type(module)](module.p, module.inplace)
    return new.train(module.training)


def replace_dropout(model: nn.Module) -> tuple[nn.Module, Counter]:
    """Replace every torch Dropout, Dropout1d/2d/3d, AlphaDropout and FeatureAlphaDropout with dropkit's.

    p, inplace and training mode are kept; a module shared by several parents stays shared.

    Returns:
        (model, a Counter of replaced modules by torch class name). If `model` itself is a
        torch dropout, the returned model is its replacement.

    Examples:
        >>> model, counts = replace_dropout(nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.1)))
        >>> model[1], counts
        (Dropout(p=0.1, inplace=False), Counter({'Dropout': 1}))
    """
    counts: Counter = Counter()
    done: dict[int, nn.Module] = {}
    for parent, name, _, child in list(_children(model)):
        if type(child) in _REPLACEMENTS:
            if id(child) not in done:
                done[id(child)] = _converted(child)
                counts[type(child).__name__] += 1
            setattr(parent, name, done[id(child)])
    if type(model) in _REPLACEMENTS:
        counts[type(model).__name__] += 1
        model = _converted(model)
    return model, counts


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
