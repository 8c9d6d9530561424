"""DropConnect: drop weights, not activations (Wan et al. 2013, "Regularization of Neural Networks
using DropConnect"; Merity et al. 2017, AWD-LSTM's WeightDrop).

The weight matrix gets a fresh spec mask each forward (inverted scaling, so
eval uses the weights as they are); the bias is kept.

Example:
    >>> y = drop_connect_linear(torch.randn(4, 3), torch.randn(5, 3), None, 0.5, seed=1)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import addressing, ops
from ._common import active, check

__all__ = ["drop_connect", "drop_connect_linear"]


def drop_connect(
    weight: Tensor,
    p: float = 0.5,
    training: bool = True,
    *,
    seed: int | None = None,
    offset: int = 0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Spec dropout of a weight tensor (what every DropConnect layer applies before its op).

    Example:
        >>> drop_connect(torch.ones(2, 2), 0.5, seed=1).shape
        torch.Size([2, 2])
    """
    p, seed, offset = check(weight, p, seed, offset, "weight")
    if not active(training) or p == 0.0:
        return weight
    seed, offset = addressing.resolve(seed, offset, weight.shape, None)  # one weight mask for the whole batch
    return ops.apply_dropout(weight, p, seed, offset, generator, inplace=False, bitpacked=False)


def drop_connect_linear(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    p: float = 0.5,
    training: bool = True,
    *,
    seed: int | None = None,
    offset: int = 0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """F.linear(input, drop_connect(weight, p), bias): one weight mask shared by the whole batch.

    Args:
        input: (*, in_features). weight: (out_features, in_features). bias: (out_features,) or None.
        p: probability of a weight being zeroed.
        training, seed, offset, generator: as in dropkit.functional.dropout (the mask is over
            the weight's elements).

    Example:
        >>> drop_connect_linear(torch.ones(4, 3), torch.ones(2, 3), p=0.5, seed=1).shape
        torch.Size([4, 2])
    """
    return F.linear(input, drop_connect(weight, p, training, seed=seed, offset=offset, generator=generator), bias)
