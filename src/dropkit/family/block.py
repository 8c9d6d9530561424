"""DropBlock: drop contiguous block_size x block_size regions of feature maps (Ghiasi et al. 2018,
"DropBlock: A regularization method for convolutional networks").

The block mask is a pure function of (seed, offset) (see dropkit.ops.block),
so backward recomputes it. batchwise=True shares one mask across the batch,
as timm documents (and its fast path ignores). block_size is clipped to the
feature map, as in timm.

Example:
    >>> y = drop_block2d(torch.ones(2, 3, 8, 8), 0.1, block_size=3, seed=1)
"""

from __future__ import annotations

import torch
from torch import Tensor

from .. import _validate, addressing, ops
from ._common import active, check

__all__ = ["drop_block2d"]


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
        seed, offset, generator: as in dropkit.functional.dropout; the block seeds are the
            spec's keep rule at the seed rate gamma over the mask's elements.

    Example:
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
    seed, offset = addressing.resolve(seed, offset, input.shape, None)
    if p == 1.0:
        return ops.apply_dropout(input, 1.0, seed, offset, generator, inplace=False, bitpacked=False)
    return ops.apply_noise(input, "block2d", [p, block_size, float(batchwise)], seed=seed, offset=offset, generator=generator)
