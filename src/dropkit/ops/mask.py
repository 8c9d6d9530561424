"""dropkit::keep_mask, the spec's boolean keep mask as an op, for variants that need the mask itself.

Per-sample or per-channel variants that do not scale (DropPath with scale_by_keep=False,
feature alpha dropout) read the mask here instead of recovering it from dropout's values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import Tensor

from .. import rng
from . import compiled
from .dropout import keep_mask
from .seed import seed_tensor, stream

__all__ = ["keep_mask_op", "apply_keep_mask"]


@torch.library.custom_op("dropkit::keep_mask", mutates_args=())
def keep_mask_op(like: Tensor, seed: Tensor, offset: int, shape: list[int], p: float) -> Tensor:
    """The keep mask of `shape` under (seed, offset) at rate p, on like's device (like is read for nothing else)."""
    seed_int, offset_int = stream(seed, offset)
    return keep_mask(torch.Size(shape), p, seed_int, offset_int, like.device).to(like.device)


@keep_mask_op.register_fake
def _(like: Tensor, seed: Tensor, offset: int, shape: list[int], p: float) -> Tensor:
    return torch.empty(shape, dtype=torch.bool, device=like.device)


def apply_keep_mask(like: Tensor, shape: Sequence[int], p: float, seed: int | Tensor, offset: int) -> Tensor:
    """keep_mask_op on validated arguments and a resolved seed; under torch.compile the decomposed mask."""
    seed_t, off = seed_tensor(seed), rng.to_int64(offset)
    if compiled.active(off):
        return compiled.keep_mask(shape, p, seed_t, off, like)
    # a custom op's call is untyped; its schema returns a Tensor
    return cast(Tensor, keep_mask_op(like, seed_t, off, list(shape), p))
