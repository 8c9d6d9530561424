"""DropPath, stochastic depth (Huang et al. 2016, "Deep Networks with Stochastic Depth"; timm's drop_path).

Zeroes a whole sample of a residual branch. One draw per sample: the spec
mask of the (N,) grid, broadcast over every other dimension.

Example:
    >>> y = drop_path(torch.ones(4, 3, 2), 0.5, seed=1)
"""

from __future__ import annotations

import torch
from torch import Tensor

from .. import _validate
from ._common import active, check, small_mask

__all__ = ["drop_path"]


def drop_path(
    input: Tensor,
    p: float = 0.0,
    training: bool = True,
    scale_by_keep: bool = True,
    *,
    seed: int | None = None,
    offset: int = 0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Zero each sample (dimension 0) of `input` with probability p.

    Args:
        input: (N, *) floating tensor.
        p: probability of a sample being zeroed.
        training: as in dropkit.functional.dropout.
        scale_by_keep: scale kept samples by 1/(1-p) (as timm); if False they pass unchanged.
        seed, offset, generator: as in dropkit.functional.dropout; sample n uses stream index offset + n.

    Example:
        >>> drop_path(torch.ones(4, 2), 0.5, seed=1).shape
        torch.Size([4, 2])
    """
    p, seed, offset = check(input, p, seed, offset)
    _validate.min_rank(input, 1, "(N, *)", "drop_path")
    if not active(training) or p == 0.0:
        return input
    mask = small_mask(input, (input.shape[0],) + (1,) * (input.dim() - 1), p, seed, offset, generator)
    if not scale_by_keep:
        mask = (mask != 0).to(input.dtype)
    return input * mask
