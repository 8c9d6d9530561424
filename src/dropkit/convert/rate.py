"""Set the rate of every dropout-family module of a model, in place (DropoutSchedule steps it).

Examples:
    >>> import torch.nn as nn
    >>> set_dropout(nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5)), 0.1)
    ['1']
"""

from __future__ import annotations

from torch import nn

from .. import _validate
from .. import nn as dnn
from .integrations import intercept

__all__ = ["set_dropout"]


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
