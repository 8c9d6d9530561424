"""Put dropout after the hidden activations of a model that already exists (Srivastava et al. 2014's placement).

Examples:
    >>> import torch.nn as nn
    >>> model, places = insert_dropout(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)), 0.2)
    >>> places
    ['1']
"""

from __future__ import annotations

from torch import nn

from .. import _validate
from .. import nn as dnn
from .walk import children

__all__ = ["INSERT_AFTER", "insert_dropout"]

# The activations insert_dropout follows by default (any activation; the fused ones are dropkit.kernels.ACTIVATIONS).
INSERT_AFTER = (nn.ReLU, nn.GELU, nn.SiLU, nn.Tanh, nn.ELU, nn.SELU)


def _has_own_parameters(module: nn.Module) -> bool:
    return next(module.parameters(recurse=False), None) is not None


def insert_dropout(
    model: nn.Module, p: float, *, after: tuple[type[nn.Module], ...] = INSERT_AFTER, kind: str = "dropout"
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
    for parent, name, qualified, child in children(model):
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
