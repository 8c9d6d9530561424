"""Alpha dropout for self-normalizing networks (Klambauer et al. 2017, "Self-Normalizing Neural Networks").

Dropped units take SELU's negative saturation -lambda*alpha instead of 0, and
an affine map restores the input's mean and variance (zero and one for SELU
activations). Same output distribution as torch.nn.functional.alpha_dropout;
the keep mask is the spec's. p = 1 gives zeros, as torch does.

Example:
    >>> y = alpha_dropout(torch.randn(4, 8), 0.2, training=True, seed=1)
"""

from __future__ import annotations

import torch
from torch import Tensor

from .. import _validate, addressing, ops
from ..ops.alpha import alpha_coefficients
from ._common import active, check, small_mask

__all__ = ["alpha_dropout", "feature_alpha_dropout"]


def _zeros(input, inplace, seed, offset, generator) -> Tensor:
    """p = 1: exact zeros with zero gradient (the affine map's scale is infinite there)."""
    return ops.apply_dropout(input, 1.0, seed, offset, generator, inplace=inplace, bitpacked=False)


def alpha_dropout(
    input: Tensor,
    p: float = 0.5,
    training: bool = False,
    inplace: bool = False,
    *,
    seed: int | None = None,
    offset: int = 0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Alpha dropout of each element (defaults as torch.nn.functional.alpha_dropout: training=False).

    Args:
        input: floating tensor of any shape.
        p: drop probability in [0, 1].
        training, inplace, seed, offset, generator: as in dropkit.functional.dropout.

    Example:
        >>> alpha_dropout(torch.zeros(3), 0.5, training=True, seed=1).shape
        torch.Size([3])
    """
    p, seed, offset = check(input, p, seed, offset)
    if not active(training) or p == 0.0:
        return input
    if inplace:
        _validate.inplace_target(input)
    seed, offset = addressing.resolve(seed, offset, input.shape)
    if p == 1.0:
        return _zeros(input, inplace, seed, offset, generator)
    y = ops.apply_noise(input, "alpha", [p], seed=seed, offset=offset, generator=generator)
    return input.copy_(y) if inplace else y


def feature_alpha_dropout(
    input: Tensor,
    p: float = 0.5,
    training: bool = False,
    inplace: bool = False,
    *,
    seed: int | None = None,
    offset: int = 0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Alpha dropout of whole channels of (N, C, *) input: one draw per (n, c), as torch's.

    Args:
        input: floating tensor of rank >= 2; dimension 0 is the batch, 1 the channels.
        p, training, inplace, seed, offset, generator: as in alpha_dropout; the mask is
            the spec mask of the (N, C) grid.

    Example:
        >>> feature_alpha_dropout(torch.zeros(2, 3, 4), 0.5, training=True, seed=1).shape
        torch.Size([2, 3, 4])
    """
    p, seed, offset = check(input, p, seed, offset)
    _validate.min_rank(input, 2, "(N, C, *)", "feature_alpha_dropout")
    if not active(training) or p == 0.0:
        return input
    if inplace:
        _validate.inplace_target(input)
    shape = tuple(input.shape[:2]) + (1,) * (input.dim() - 2)
    seed, offset = addressing.resolve(seed, offset, shape)
    if p == 1.0:
        return _zeros(input, inplace, seed, offset, generator)
    keep = small_mask(input, shape, p, seed, offset, generator) != 0
    a, shift, dropped = alpha_coefficients(p)
    scale = keep.to(input.dtype) * a
    bias = torch.where(keep, shift, dropped).to(input.dtype)
    return input.mul_(scale).add_(bias) if inplace else input * scale + bias
