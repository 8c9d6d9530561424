"""DropPath, stochastic depth (Huang et al. 2016, "Deep Networks with Stochastic Depth"; timm's drop_path).

Zeroes a whole sample of a residual branch. One draw per sample: the spec
mask of the (N,) grid, broadcast over every other dimension.

Examples:
    >>> y = drop_path(torch.ones(4, 3, 2), 0.5, seed=1)
"""

from __future__ import annotations

import torch
from torch import Tensor

from .. import _validate, ops, rng
from ._common import DropoutBase, active, check, resolve_seed, select_kept, small_mask

__all__ = ["drop_path", "DropPath"]


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
        seed: as in dropkit.functional.dropout.
        offset: as in dropkit.functional.dropout; sample n uses stream index offset + n.
        generator: as in dropkit.functional.dropout.

    Examples:
        >>> drop_path(torch.ones(4, 2), 0.5, seed=1).shape
        torch.Size([4, 2])
    """
    p, seed, offset = check(input, p, seed, offset)
    _validate.min_rank(input, 1, "(N, *)", "drop_path")
    if not active(training) or p == 0.0:
        return input
    shape = (input.shape[0],) + (1,) * (input.dim() - 1)
    resolved, offset = resolve_seed(seed, offset, generator, shape)
    if scale_by_keep:
        return select_kept(input, small_mask(input, shape, p, resolved, offset) != 0, rng.scale(p))
    return select_kept(input, ops.apply_keep_mask(input, shape, p, resolved, offset), 1.0)


class DropPath(DropoutBase):
    """Stochastic depth: drop whole samples of a residual branch (Huang et al. 2016; timm's DropPath).

    Args:
        p: probability of a sample being zeroed. Default: 0.0 (as timm)
        scale_by_keep: scale kept samples by 1/(1-p). Default: True
        generator: torch.Generator the per-call seeds are drawn from (default: torch's; eager only).

    Shape:
        Input: (N, *). Output: same shape.

    Examples:
        >>> DropPath(0.1)
        DropPath(p=0.1, scale_by_keep=True)
    """

    kind = "drop_path"
    mask_unit = "sample"

    def __init__(self, p: float = 0.0, scale_by_keep: bool = True, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.p = _validate.p(p)
        self.scale_by_keep = scale_by_keep
        self.generator = generator

    def forward(self, input: Tensor) -> Tensor:
        return drop_path(input, self.p, self.training, self.scale_by_keep, generator=self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}, scale_by_keep={self.scale_by_keep}"
