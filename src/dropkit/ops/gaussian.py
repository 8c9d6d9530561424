"""Normal noise from the Philox stream (Box-Muller), for Gaussian dropout and noise.

Stream words come in pairs (2k, 2k+1): u1 = (r[2k] + 1) / 2^32 in (0, 1], so
log(u1) is finite, and u2 = r[2k+1] / 2^32 in [0, 1). With R = sqrt(-2 log u1)
and T = 2 pi u2, element 2k gets R cos T and element 2k+1 gets R sin T
(in float64). An element's normal depends only on its own pair, so a shard
at offset + k gets exactly its slice of the whole batch's noise.

Examples:
    >>> normal(3, seed=7, offset=0, device="cpu").shape
    torch.Size([3])
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .. import kernels
from . import compiled, noise

__all__ = ["normal", "box_muller", "gaussian"]

_TWO_M32 = 2.0**-32


def normal(n: int, seed: int, offset: int, device: torch.device) -> Tensor:
    """Standard normals (float64) for stream indices offset .. offset+n-1."""
    start = offset & ~1  # the pair that holds element `offset`
    words = (offset + n - start + 1) & ~1
    bits = kernels.for_device(device).random_bits(words, seed, start, device)
    return box_muller(bits.to(device))[offset - start : offset - start + n]


def box_muller(bits: Tensor) -> Tensor:
    """Normals (float64) from an even number of 32-bit words (int64), two per pair (r[2k], r[2k+1])."""
    pairs = bits.to(torch.float64).view(-1, 2)
    radius = torch.sqrt(-2.0 * torch.log((pairs[:, 0] + 1.0) * _TWO_M32))
    angle = (2.0 * math.pi * _TWO_M32) * pairs[:, 1]
    return torch.stack((radius * torch.cos(angle), radius * torch.sin(angle)), dim=1).view(-1)


def _noisy(x: Tensor, z: Tensor, sigma: float, stddev: float, linear: bool) -> Tensor:
    """x * (1 + sigma * z) + stddev * z from float64 normals z; linear=True drops the additive part."""
    z = z.to(x.dtype)
    y = x * (1.0 + sigma * z) if sigma else x.clone()
    return y if linear or not stddev else y + stddev * z


def _gaussian(x: Tensor, seed: int, offset: int, sigma: float, stddev: float, linear: bool) -> Tensor:
    return _noisy(x, normal(x.numel(), seed, offset, x.device).view(x.shape), sigma, stddev, linear)


def _gaussian_compiled(x: Tensor, seed: Tensor, offset: int, sigma: float, stddev: float, linear: bool) -> Tensor:
    return compiled.with_normal(_noisy, x, seed, offset, sigma, stddev, linear)


@torch.library.custom_op("dropkit::gaussian", mutates_args=())
def gaussian(x: Tensor, seed: Tensor, offset: int, sigma: float, stddev: float, linear: bool) -> Tensor:
    """x * (1 + sigma * z) + stddev * z, z the spec's normals at (seed, offset); linear=True drops the additive part."""
    return noise.run(_gaussian, x, seed, offset, sigma, stddev, linear)


noise.register(gaussian, _gaussian_compiled)
