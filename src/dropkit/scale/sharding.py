"""Dropout of a shard: each rank computes exactly its block of the unsharded mask (tensor parallelism).

The spec numbers elements in row-major order of the whole tensor, so a block
of it (a rank's features [a, b) of a (B, F) activation) is a set of contiguous
runs of the stream: one per row there, one in all for a shard of dimension 0.
shard_dropout draws each run at its own offset; concatenating every rank's
output gives the unsharded dropout bit for bit. Replicated tensors take the
whole mask on every rank (shard_dropout with start 0), and so do partial sums:
dropout is linear, so masking each partial term masks their sum.

dropkit.functional.dropout applies this to a DTensor (torch.distributed.tensor)
sharded on any dimensions, from its placements.

Examples:
    >>> import torch, dropkit.functional as DF
    >>> x = torch.ones(4, 6)
    >>> right = shard_dropout(x[:, 2:], 0.5, seed=3, full_shape=(4, 6), start=(0, 2))
    >>> torch.equal(right, DF.dropout(x, 0.5, seed=3)[:, 2:])
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeGuard

import torch
from torch import Tensor

from .. import _mode, _validate, ops

if TYPE_CHECKING:  # torch.distributed may be unavailable at run time: imported where used
    from torch.distributed.tensor import DTensor

__all__ = ["shard_dropout", "run_offsets", "is_dtensor", "dtensor_dropout"]


def run_offsets(local_shape: Sequence[int], full_shape: Sequence[int], start: Sequence[int]) -> tuple[int, list[int]]:
    """The block's contiguous runs in the full tensor's row-major stream: (run length, start index of each run).

    Args:
        local_shape: shape of the block.
        full_shape: shape of the whole tensor (same rank).
        start: the block's first index along each dimension.

    Examples:
        >>> run_offsets((4, 2), (4, 6), (0, 2))   # features 2..3 of 4 rows of 6
        (2, [2, 8, 14, 20])
    """
    if not len(local_shape) == len(full_shape) == len(start):
        raise ValueError(
            f"local_shape, full_shape and start must have one entry per dimension, got "
            f"{tuple(local_shape)}, {tuple(full_shape)} and {tuple(start)}"
        )
    for d, (n, full, s) in enumerate(zip(local_shape, full_shape, start)):
        if not 0 <= s <= s + n <= full:
            raise ValueError(f"the block must lie inside full_shape: dimension {d} covers [{s}, {s + n}) of {full}")
    # Dimensions after k are whole; dimension k is the last one the block cuts.
    k = max((d for d, (n, full) in enumerate(zip(local_shape, full_shape)) if n != full), default=0)
    strides = [math.prod(full_shape[d + 1 :]) for d in range(len(full_shape))]
    length = math.prod(local_shape[k:])
    runs = [start[k] * strides[k]] if full_shape else [0]
    for d in range(k - 1, -1, -1):
        runs = [(start[d] + i) * strides[d] + r for i in range(local_shape[d]) for r in runs]
    return length, runs


def shard_dropout(
    local: Tensor,
    p: float,
    *,
    seed: int,
    full_shape: Sequence[int],
    start: Sequence[int],
    offset: int = 0,
    training: bool = True,
) -> Tensor:
    """dropout(full, p, seed=seed, offset=offset)[block] computed from the block alone.

    Args:
        local: the rank's block of the full tensor.
        p: drop probability.
        seed: the mask's seed, the same on every rank (an explicit int: ranks must agree).
        full_shape: shape of the unsharded tensor.
        start: index of the block's first element along each dimension.
        offset: as in dropkit.functional.dropout.
        training: as in dropkit.functional.dropout.

    Shape:
        Output: local's shape. One dropout call per run (see run_offsets): one for
        a shard of dimension 0, local.shape[0] for a shard of the last dimension.
    """
    if seed is None:
        raise TypeError("seed must be an int in [0, 2**64), got None: every rank must use the same seed")
    _validate.float_tensor(local, "local")
    p, seed, offset = _validate.p(p), _validate.offset(seed, "seed"), _validate.offset(offset)  # None refused above
    if not (training or _mode.mc_active()) or p == 0.0:
        return local
    length, runs = run_offsets(tuple(local.shape), tuple(full_shape), tuple(start))

    # The op layer, not dropkit.functional (which dispatches DTensors here): the seed is explicit, nothing to resolve.
    def run(piece: Tensor, start_offset: int) -> Tensor:
        return ops.apply_dropout(piece, p, seed, (offset + start_offset) % 2**64, inplace=False, bitpacked=False)

    if len(runs) == 1:
        return run(local, runs[0])
    pieces = local.reshape(len(runs), length)
    return torch.stack([run(pieces[i], r) for i, r in enumerate(runs)]).view(local.shape)


def is_dtensor(x: object) -> TypeGuard[DTensor]:
    """True for a torch.distributed.tensor.DTensor."""
    if not torch.distributed.is_available():
        return False
    from torch.distributed.tensor import DTensor

    return isinstance(x, DTensor)


def dtensor_dropout(input: DTensor, p: float, training: bool, *, seed: int | None, offset: int) -> DTensor:
    """Spec dropout of a DTensor: each rank draws its own block of the unsharded mask; same placements out."""
    from torch.distributed.tensor import DTensor
    from torch.distributed.tensor._utils import compute_local_shape_and_global_offset

    if seed is None:
        raise TypeError("seed must be an int in [0, 2**64) for a DTensor, got None: every rank must use the same seed")
    _, start = compute_local_shape_and_global_offset(input.shape, input.device_mesh, input.placements)
    local = shard_dropout(
        input.to_local(),
        p,
        seed=seed,
        full_shape=tuple(input.shape),
        start=tuple(start),
        offset=offset,
        training=training,
    )
    return DTensor.from_local(local, input.device_mesh, input.placements, shape=input.shape, stride=input.stride())
