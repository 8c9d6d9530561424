"""Locked (variational) dropout: one mask per sequence, shared by every time step (Gal and
Ghahramani 2016; Merity et al. 2017, AWD-LSTM's LockedDropout; fastai's RNNDropout).

Examples:
    >>> y = locked_dropout(torch.ones(5, 2, 3), 0.5, seed=1)   # (T, N, H)
"""

from __future__ import annotations

import torch
from torch import Tensor

from .. import _validate
from ._common import DropoutBase, active, apply_small_mask, check, resolve_seed

__all__ = ["locked_dropout", "LockedDropout"]


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
        training: as in dropkit.functional.dropout.
        inplace: as in dropkit.functional.dropout.
        seed: as in dropkit.functional.dropout.
        offset: as in dropkit.functional.dropout; the mask is the spec mask of the input's shape with the time dimension removed.
        generator: as in dropkit.functional.dropout.
        batch_first: time is dimension 1, not 0.

    Examples:
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
    resolved, offset = resolve_seed(seed, offset, generator, shape, 0 if batch_first else 1)
    return apply_small_mask(input, shape, p, inplace, resolved, offset)


class LockedDropout(DropoutBase):
    """Variational dropout: one mask per sequence, the same at every time step (Gal and Ghahramani 2016).

    Args:
        p: probability of a unit being zeroed. Default: 0.5
        batch_first: input is (N, T, *) rather than (T, N, *). Default: False
        inplace: overwrite the input. Default: False
        generator: torch.Generator the per-call seeds are drawn from (default: torch's; eager only).

    Shape:
        Input: (T, N, *) or (N, T, *) if batch_first. Output: same shape.

    Examples:
        >>> LockedDropout(0.3, batch_first=True)
        LockedDropout(p=0.3, batch_first=True, inplace=False)
    """

    kind = "locked"
    mask_unit = "sequence"

    def __init__(
        self,
        p: float = 0.5,
        batch_first: bool = False,
        inplace: bool = False,
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.p = _validate.p(p)
        self.batch_first = batch_first
        self.inplace = inplace
        self.generator = generator

    def forward(self, input: Tensor) -> Tensor:
        return locked_dropout(input, self.p, self.training, self.batch_first, self.inplace, generator=self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}, batch_first={self.batch_first}, inplace={self.inplace}"
