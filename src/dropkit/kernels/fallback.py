"""The mask spec in plain torch ops: runs on any device, slower, same bits.

Philox works on int64 tensors holding 32-bit words; a 32x32-bit product wraps
in int64 but its low 64 bits, which are all Philox needs, stay exact.
"""

from __future__ import annotations

import torch

from .. import rng

__all__ = ["dropout_fwd", "dropout_fwd_packed", "dropout_bwd_packed", "random_bits"]

_U32 = 0xFFFFFFFF
_BIT_WEIGHTS = [1 << b for b in range(8)]


def random_bits(n: int, seed: int, offset: int, device=None) -> torch.Tensor:
    """The spec's random words for stream indices offset .. offset+n-1, as int64."""
    g = torch.arange(n, dtype=torch.int64, device=device) + rng.to_int64(offset)
    b = (g >> 2) & ((1 << 62) - 1)  # a logical shift of the uint64 g
    c0, c1 = b & _U32, (b >> 32) & _U32
    c2 = torch.zeros_like(c0)
    c3 = torch.zeros_like(c0)
    k0, k1 = seed & _U32, seed >> 32
    for _ in range(rng.ROUNDS):
        p0 = c0 * rng.M0
        p1 = c2 * rng.M1
        c0, c1, c2, c3 = ((p1 >> 32) & _U32) ^ c1 ^ k0, p1 & _U32, ((p0 >> 32) & _U32) ^ c3 ^ k1, p0 & _U32
        k0, k1 = (k0 + rng.W0) & _U32, (k1 + rng.W1) & _U32
    return torch.stack((c0, c1, c2, c3)).gather(0, (g & 3).view(1, -1)).view(-1)


def _keep(n: int, seed: int, offset: int, p: float, device) -> torch.Tensor:
    return random_bits(n, seed, offset, device) >= rng.threshold(p)


def _scaled(x: torch.Tensor, keep: torch.Tensor, p: float) -> torch.Tensor:
    # Half types: round(float32(x) * float32(scale)); others in their own dtype.
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    s = torch.tensor(rng.scale(p), dtype=dtype, device=x.device)
    y = torch.where(keep.view(x.shape), x.to(dtype) * s, torch.zeros((), dtype=dtype, device=x.device))
    return y.to(x.dtype)


def dropout_fwd(x: torch.Tensor, seed: int, offset: int, p: float, out=None) -> torch.Tensor:
    """Spec dropout of contiguous x, into `out` (may be x itself) or a new tensor."""
    y = _scaled(x, _keep(x.numel(), seed, offset, p, x.device), p)
    return y if out is None else out.copy_(y)


def _pack(keep: torch.Tensor) -> torch.Tensor:
    padded = torch.nn.functional.pad(keep.to(torch.uint8), (0, -keep.numel() % 8))
    weights = torch.tensor(_BIT_WEIGHTS, dtype=torch.uint8, device=keep.device)
    return (padded.view(-1, 8) * weights).sum(1, dtype=torch.uint8)


def dropout_fwd_packed(x: torch.Tensor, seed: int, offset: int, p: float):
    """dropout_fwd that also returns the keep mask packed 1 bit per element (uint8)."""
    keep = _keep(x.numel(), seed, offset, p, x.device)
    return _scaled(x, keep, p), _pack(keep)


def dropout_bwd_packed(grad: torch.Tensor, bits: torch.Tensor, p: float) -> torch.Tensor:
    """grad * scale where the packed keep bit is set, else 0 (grad contiguous)."""
    weights = torch.tensor(_BIT_WEIGHTS, dtype=torch.uint8, device=bits.device)
    keep = (bits.view(-1, 1) & weights).ne(0).view(-1)[: grad.numel()]
    return _scaled(grad, keep, p)
