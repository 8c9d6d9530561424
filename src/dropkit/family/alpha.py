"""Alpha dropout for self-normalizing networks (Klambauer et al. 2017, "Self-Normalizing Neural Networks").

Dropped units take SELU's negative saturation -lambda*alpha instead of 0, and
an affine map restores the input's mean and variance (zero and one for SELU
activations). Same output distribution as torch.nn.functional.alpha_dropout;
the keep mask is the spec's. p = 1 gives zeros, as torch does.

Examples:
    >>> y = alpha_dropout(torch.randn(4, 8), 0.2, training=True, seed=1)
"""

from __future__ import annotations

import torch
from torch import Tensor

from .. import _validate, ops
from ._common import DropoutBase, active, check, init_rate, resolve_seed, zeros_with_zero_grad

__all__ = ["alpha_dropout", "feature_alpha_dropout", "AlphaDropout", "FeatureAlphaDropout"]


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
        training: as in dropkit.functional.dropout.
        inplace: as in dropkit.functional.dropout.
        seed: as in dropkit.functional.dropout.
        offset: as in dropkit.functional.dropout.
        generator: as in dropkit.functional.dropout.

    Examples:
        >>> alpha_dropout(torch.zeros(3), 0.5, training=True, seed=1).shape
        torch.Size([3])
    """
    p, seed, offset = check(input, p, seed, offset)
    if not active(training) or p == 0.0:
        return input
    if inplace:
        _validate.inplace_target(input)
    resolved, offset = resolve_seed(seed, offset, generator, input.shape)
    if p == 1.0:  # the affine map's scale is infinite there
        return zeros_with_zero_grad(input, inplace)
    y = ops.apply_noise(ops.alpha_dropout, input, resolved, offset, p)
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
        p: as in alpha_dropout.
        training: as in alpha_dropout.
        inplace: as in alpha_dropout.
        seed: as in alpha_dropout.
        offset: as in alpha_dropout; the mask is the spec mask of the (N, C) grid.
        generator: as in alpha_dropout.

    Examples:
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
    resolved, offset = resolve_seed(seed, offset, generator, shape)
    if p == 1.0:
        return zeros_with_zero_grad(input, inplace)
    keep = ops.apply_keep_mask(input, shape, p, resolved, offset)
    y = ops.alpha_transform(input, keep, p)
    return input.copy_(y) if inplace else y


class AlphaDropout(torch.nn.AlphaDropout, DropoutBase):
    """Alpha dropout for SELU networks (Klambauer et al. 2017); a drop-in for torch.nn.AlphaDropout.

    Keeps a SELU activation's zero mean and unit variance; p = 1 gives zeros.

    Args:
        p: probability of an element being dropped. Default: 0.5
        inplace: overwrite the input. Default: False
        generator: torch.Generator the per-call seeds are drawn from (default: torch's; eager only).

    Shape:
        Input: any shape. Output: same shape.

    Examples:
        >>> AlphaDropout(p=0.2)(torch.randn(20, 16)).shape
        torch.Size([20, 16])
    """

    kind = "alpha"

    def __init__(self, p: float = 0.5, inplace: bool = False, *, generator: torch.Generator | None = None) -> None:
        init_rate(self, torch.nn.AlphaDropout, p, inplace, generator)

    def forward(self, input: Tensor) -> Tensor:
        return alpha_dropout(input, self.p, self.training, self.inplace, generator=self.generator)


class FeatureAlphaDropout(torch.nn.FeatureAlphaDropout, DropoutBase):
    """Alpha dropout of whole channels; a drop-in for torch.nn.FeatureAlphaDropout.

    Args:
        p: probability of a channel being dropped. Default: 0.5
        inplace: overwrite the input. Default: False
        generator: torch.Generator the per-call seeds are drawn from (default: torch's; eager only).

    Shape:
        Input: (N, C, *), one draw per (n, c). Output: same shape.

    Examples:
        >>> FeatureAlphaDropout(p=0.2)(torch.randn(2, 3, 4, 4)).shape
        torch.Size([2, 3, 4, 4])
    """

    kind = "feature_alpha"
    mask_unit = "channel"

    def __init__(self, p: float = 0.5, inplace: bool = False, *, generator: torch.Generator | None = None) -> None:
        init_rate(self, torch.nn.FeatureAlphaDropout, p, inplace, generator)

    def forward(self, input: Tensor) -> Tensor:
        return feature_alpha_dropout(input, self.p, self.training, self.inplace, generator=self.generator)
