"""Locked (variational) dropout: one mask per sequence, shared by every time step (Gal and
Ghahramani 2016; Merity et al. 2017, AWD-LSTM's LockedDropout; fastai's RNNDropout).

Example:
    >>> y = locked_dropout(torch.ones(5, 2, 3), 0.5, seed=1)   # (T, N, H)
"""

from __future__ import annotations

import torch
from torch import Tensor

from .. import _validate
from ._common import active, apply_small_mask, check

__all__ = ["locked_dropout"]


def locked_dropout(
    input: Tensor,
    p: float = 0.5,
    training: bool = True,
    batch_first: bool = False,
    inplace: bool = False,
    *,
    seed: int | None = None,
    offset: int = 0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Dropout whose mask is drawn once per sequence and repeated along the time dimension.

    Args:
        input: (T, N, *) sequences, or (N, T, *) if batch_first; rank >= 2.
        p: probability of a unit being zeroed (for every time step alike).
        training, inplace, seed, offset, generator: as in dropkit.functional.dropout; the mask
            is the spec mask of the input's shape with the time dimension removed.
        batch_first: time is dimension 1, not 0.

    Example:
        >>> y = locked_dropout(torch.ones(3, 1, 2), 0.5, seed=2)
        >>> bool((y == y[0]).all())   # the same mask at every time step
        True
    """
    p, seed, offset = check(input, p, seed, offset)
    layout = "(N, T, *)" if batch_first else "(T, N, *)"
    _validate.min_rank(input, 2, layout, "locked_dropout")
    if not active(training) or p == 0.0:
        return input
    shape = list(input.shape)
    shape[1 if batch_first else 0] = 1
    return apply_small_mask(input, shape, p, inplace, seed, offset, generator, 0 if batch_first else 1)
