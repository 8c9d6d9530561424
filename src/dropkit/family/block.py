"""DropBlock: drop contiguous block_size x block_size regions of feature maps (Ghiasi et al. 2018,
"DropBlock: A regularization method for convolutional networks").

The block mask is a pure function of (seed, offset) (see dropkit.ops.block),
so backward recomputes it. batchwise=True shares one mask across the batch,
as timm documents (and its fast path ignores). block_size is clipped to the
feature map, as in timm.

Examples:
    >>> y = drop_block2d(torch.ones(2, 3, 8, 8), 0.1, block_size=3, seed=1)
"""

from __future__ import annotations

import torch
from torch import Tensor

from .. import _validate, ops
from ..scale import addressing
from ._common import DropoutBase, active, check, resolve_seed, zeros_with_zero_grad

__all__ = ["drop_block2d", "DropBlock2d"]


def drop_block2d(
    input: Tensor,
    p: float = 0.1,
    block_size: int = 7,
    training: bool = True,
    *,
    batchwise: bool = False,
    seed: int | None = None,
    offset: int = 0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """DropBlock of (N, C, H, W) or (C, H, W) input; about a fraction p of each map is dropped.

    Args:
        input: (N, C, H, W) or (C, H, W) floating tensor.
        p: target fraction of dropped units; p = 1 drops everything.
        block_size: side of the square blocks (clipped to min(H, W)).
        training: as in dropkit.functional.dropout.
        batchwise: one mask of shape (C, H, W) for the whole batch.
        seed: as in dropkit.functional.dropout.
        offset: as in dropkit.functional.dropout; the block seeds are the spec's keep rule at the seed rate gamma over the mask's elements.
        generator: as in dropkit.functional.dropout.

    Examples:
        >>> drop_block2d(torch.ones(1, 1, 6, 6), 0.3, block_size=2, seed=5).shape
        torch.Size([1, 1, 6, 6])
    """
    p, seed, offset = check(input, p, seed, offset)
    block_size = _validate.positive_int(block_size, "block_size")
    _validate.rank(input, {3: "(C, H, W)", 4: "(N, C, H, W)"}, "drop_block2d")
    if not active(training) or p == 0.0:
        return input
    if not batchwise and input.dim() == 4:
        addressing.refuse("drop_block2d", "it scales by the kept fraction of the whole batch; use batchwise=True")
    resolved, offset = resolve_seed(seed, offset, generator, input.shape, None)
    if p == 1.0:
        return zeros_with_zero_grad(input)
    return ops.apply_noise(ops.drop_block2d, input, resolved, offset, p, block_size, bool(batchwise))


class DropBlock2d(DropoutBase):
    """DropBlock: drop block_size x block_size regions of feature maps (Ghiasi et al. 2018; timm's DropBlock2d).

    Args:
        p: target fraction of dropped units. Default: 0.1
        block_size: side of the square blocks, clipped to the map. Default: 7
        batchwise: one mask shared by the whole batch. Default: False
        generator: torch.Generator the per-call seeds are drawn from (default: torch's; eager only).

    Shape:
        Input: (N, C, H, W) or (C, H, W). Output: same shape.

    Examples:
        >>> DropBlock2d(0.1, 5)
        DropBlock2d(p=0.1, block_size=5, batchwise=False)
    """

    kind = "drop_block"
    mask_unit = "block"

    def __init__(
        self, p: float = 0.1, block_size: int = 7, *, batchwise: bool = False, generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        self.p = _validate.p(p)
        self.block_size = _validate.positive_int(block_size, "block_size")
        self.batchwise = batchwise
        self.generator = generator

    def forward(self, input: Tensor) -> Tensor:
        return drop_block2d(
            input, self.p, self.block_size, self.training, batchwise=self.batchwise, generator=self.generator
        )

    @property
    def shares_mask_across_batch(self) -> bool:  # type: ignore[override]
        return self.batchwise

    def extra_repr(self) -> str:
        return f"p={self.p}, block_size={self.block_size}, batchwise={self.batchwise}"
