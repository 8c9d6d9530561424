"""DropBlock's mask (Ghiasi et al. 2018), recomputable from (seed, offset).

A block seed at (i, j) is the top-left corner of a block_size x block_size
square and is valid where the square fits. Each valid seed drops with rate
gamma = p * H * W / (bs^2 * (H - bs + 1) * (W - bs + 1)), so about a fraction
p of the map is dropped; seeds use the spec's keep rule at rate gamma on one
stream word per element of the mask (N, C, H, W), or (1, C, H, W) if
batchwise. Kept elements are scaled by mask.numel() / kept count, as in the
paper and timm.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import kernels, rng
from . import noise

__all__ = ["block_gamma", "block_keep", "drop_block2d"]


def block_gamma(p: float, block_size: int, h: int, w: int) -> float:
    """Seed rate that drops about a fraction p of an h x w map (block_size already clipped to h, w)."""
    return min(1.0, p * h * w / (block_size**2 * (h - block_size + 1) * (w - block_size + 1)))


def block_keep(shape: torch.Size, seed: int, offset: int, p: float, block_size: int, device: torch.device) -> Tensor:
    """Boolean keep mask of `shape` (..., H, W): False inside every dropped block."""
    if shape.numel() == 0:  # an empty map has no block to place (and its seed rate would divide by 0)
        return torch.ones(shape, dtype=torch.bool, device=device)
    h, w = shape[-2], shape[-1]
    bs = min(block_size, h, w)
    bits = kernels.for_device(device).random_bits(shape.numel(), seed, offset, device).to(device)
    seeds = (bits < rng.threshold(block_gamma(p, bs, h, w))).view(-1, 1, h, w)
    seeds[..., h - bs + 1 :, :] = False  # a block must fit inside the map
    seeds[..., :, w - bs + 1 :] = False
    # dropped(r, c) = any seed in [r-bs+1, r] x [c-bs+1, c]: pad before, pool without padding
    padded = F.pad(seeds.to(torch.float32), (bs - 1, 0, bs - 1, 0))
    dropped = F.max_pool2d(padded, kernel_size=bs, stride=1)
    return (dropped == 0).view(shape)


def _drop_block(x: Tensor, seed: int, offset: int, p: float, block_size: int, batchwise: bool, linear: bool) -> Tensor:
    # Linear in x, so `linear` changes nothing.
    shape = torch.Size((1, *x.shape[1:])) if batchwise and x.dim() == 4 else x.shape
    keep = block_keep(shape, seed, offset, p, block_size, x.device)
    scale = keep.numel() / keep.sum().clamp_min(1).to(x.dtype)
    return torch.where(keep, x * scale, torch.zeros((), dtype=x.dtype, device=x.device))


@torch.library.custom_op("dropkit::drop_block2d", mutates_args=())
def drop_block2d(
    x: Tensor, seed: Tensor, offset: int, p: float, block_size: int, batchwise: bool, linear: bool
) -> Tensor:
    """DropBlock of (N, C, H, W) or (C, H, W) x under (seed, offset), p < 1."""
    return noise.run(_drop_block, x, seed, offset, p, block_size, batchwise, linear)


noise.register(drop_block2d)
