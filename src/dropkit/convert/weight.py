"""DropConnect on a parameter of a model that already exists (AWD-LSTM's WeightDrop), as a parametrization.

Examples:
    >>> import torch.nn as nn
    >>> weight_dropout(nn.Linear(4, 3), "weight", 0.3).parametrizations.weight[0]
    WeightDropout(p=0.3)
"""

from __future__ import annotations

import torch
from torch import nn

from .. import _validate
from .. import nn as dnn

__all__ = ["weight_dropout"]


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
