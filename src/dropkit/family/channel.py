"""Channel dropout: zero whole channels (Tompson et al. 2015, "Efficient Object Localization Using
Convolutional Networks").

Rank rule (the same for 1d, 2d and 3d): an input with k spatial dimensions is
batched, (N, C, *spatial) of rank k + 2, or unbatched, (C, *spatial) of rank
k + 1. Any other rank raises ValueError naming both shapes. Unlike
torch.nn.functional.dropout2d, a 3-D input to dropout2d is always (C, H, W),
never silently reinterpreted as (N, C, L). One draw per (sample, channel),
the spec mask of the (N, C) grid, broadcast over the spatial dimensions.

Example:
    >>> y = dropout2d(torch.ones(2, 3, 4, 4), 0.5, seed=1)
"""

from __future__ import annotations

import torch
from torch import Tensor

from .. import _validate
from ._common import active, apply_small_mask, check

__all__ = ["dropout1d", "dropout2d", "dropout3d", "channel_mask_shape"]

_SPATIAL = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def channel_mask_shape(input: Tensor, spatial: int, fn: str) -> tuple[int, ...]:
    """Shape of the per-channel mask, (N, C, 1, ...) or (C, 1, ...), after the rank check."""
    names = ", ".join(_SPATIAL[spatial])
    _validate.rank(input, {spatial + 1: f"(C, {names})", spatial + 2: f"(N, C, {names})"}, fn)
    channels = input.dim() - spatial
    return tuple(input.shape[:channels]) + (1,) * spatial


def _channel_dropout(input, p, training, inplace, seed, offset, generator, spatial: int, fn: str) -> Tensor:
    p, seed, offset = check(input, p, seed, offset)
    shape = channel_mask_shape(input, spatial, fn)
    if not active(training) or p == 0.0:
        return input
    batched = input.dim() == spatial + 2
    return apply_small_mask(input, shape, p, inplace, seed, offset, generator, 0 if batched else None)


def dropout1d(
    input: Tensor,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    *,
    seed: int | None = None,
    offset: int = 0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Zero whole channels of (N, C, L) or (C, L) input with probability p; scale the rest by 1/(1-p).

    Args:
        input: (N, C, L) or (C, L) floating tensor.
        p, training, inplace, seed, offset, generator: as in dropkit.functional.dropout;
            the mask is the spec mask of the (N, C) grid, element (n, c) at offset + n*C + c.

    Example:
        >>> dropout1d(torch.ones(2, 3, 5), 0.5, seed=1).shape
        torch.Size([2, 3, 5])
    """
    return _channel_dropout(input, p, training, inplace, seed, offset, generator, 1, "dropout1d")


def dropout2d(
    input: Tensor,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    *,
    seed: int | None = None,
    offset: int = 0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Zero whole channels of (N, C, H, W) or (C, H, W) input with probability p; scale the rest by 1/(1-p).

    A 3-D input is (C, H, W); for (N, C, L) input use dropout1d.

    Example:
        >>> dropout2d(torch.ones(2, 3, 4, 4), 0.5, seed=1).shape
        torch.Size([2, 3, 4, 4])
    """
    return _channel_dropout(input, p, training, inplace, seed, offset, generator, 2, "dropout2d")


def dropout3d(
    input: Tensor,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    *,
    seed: int | None = None,
    offset: int = 0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Zero whole channels of (N, C, D, H, W) or (C, D, H, W) input with probability p; scale the rest.

    Example:
        >>> dropout3d(torch.ones(2, 3, 2, 2, 2), 0.5, seed=1).shape
        torch.Size([2, 3, 2, 2, 2])
    """
    return _channel_dropout(input, p, training, inplace, seed, offset, generator, 3, "dropout3d")
