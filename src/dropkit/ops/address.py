"""dropkit::address, the seed of a sample-addressed call as tensor data (see dropkit.scale.addressing).

Step and sample offset are tensors the training loop overwrites in place, so a
compiled graph reads their new values each step instead of recompiling.

Examples:
    >>> address(torch.tensor(3), torch.tensor(32), 7, 11, 256).shape
    torch.Size([2])
"""

from __future__ import annotations

import torch
from torch import Tensor

from .. import rng

__all__ = ["address", "derive_seed"]

_MASK32 = 0xFFFFFFFF


def derive_seed(base: int, layer: int, step: int) -> int:
    """The 64-bit seed of layer `layer` at step `step`: Philox of (step, layer) under key `base` (all uint64)."""
    words = rng.philox4x32_int((step & _MASK32, step >> 32, layer & _MASK32, layer >> 32), (base & _MASK32, base >> 32))
    return words[0] | (words[1] << 32)


@torch.library.custom_op("dropkit::address", mutates_args=())
def address(step: Tensor, sample: Tensor, base: int, layer: int, per_sample: int) -> Tensor:
    """(seed, offset shift) as int64: derive_seed(base, layer, step) and sample * per_sample.

    base and layer are uint64 values in int64 (rng.to_int64); the pair is what ops.seed.stream reads.
    """
    seed = derive_seed(rng.to_uint64(base), rng.to_uint64(layer), int(step))
    shift = int(sample) * per_sample % 2**64
    return torch.tensor([rng.to_int64(seed), rng.to_int64(shift)], dtype=torch.int64)


@address.register_fake
def _(step: Tensor, sample: Tensor, base: int, layer: int, per_sample: int) -> Tensor:
    return torch.empty(2, dtype=torch.int64)
