"""The mask spec as integer tensor ops that Inductor fuses: the backend in the form the compiler sees.

Philox4x32-10 on int64 tensors holding 32-bit words, once per block of four
elements (as the eager kernels draw), its words interleaved into element order.
Every intermediate stays in [0, 2^63): a 32x32-bit product is formed from two
32x16-bit products (each < 2^48), and the 64-bit stream index is added in
32-bit halves, so Inductor's C++ backend, where signed overflow is undefined
behaviour, computes the same bits as eager. The seed is a tensor (dropkit::draw_seed's output,
or dropkit.addressing's (seed, offset shift) pair), so a new seed never
recompiles; the block index is an arange that Inductor turns into the loop
index. Values: the same bits as rng.random_bits (tests/kernels/test_decomposed.py).

Examples:
    >>> [hex(int(w)) for w in philox((torch.tensor(0), 0, 0, 0), (torch.tensor(0), 0))]
    ['0x6627e8d5', '0xe169c58d', '0xbc57ac4c', '0x9b00dbd8']
    >>> random_bits((3,), torch.tensor(7), 0).tolist() == rng.random_bits(3, 7).tolist()
    True
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .. import rng

__all__ = ["keep_mask", "normal", "philox", "random_bits", "scaled_where", "stream"]

_U32 = 0xFFFFFFFF
_U16 = 0xFFFF
_U30 = 0x3FFFFFFF
_TWO_M32 = 2.0**-32


def _mul(a, m: int):
    """(hi, lo) 32-bit words of a * m, a a 32-bit word (int64 tensor or int), m a 32-bit constant.

    a * m itself may reach 2^64; a * (m's 16-bit halves) stays below 2^48, and
    t + (u's low 16 bits << 16) below 2^49.
    """
    t = a * (m & _U16)
    u = a * (m >> 16)
    s = t + ((u & _U16) << 16)
    return (s >> 32) + (u >> 16), s & _U32


def _words(v):
    """(lo, hi) 32-bit words of an int64 (tensor or int) holding uint64 bits."""
    return v & _U32, (v >> 32) & _U32


def _add(a, b):
    """(lo, hi) words of a + b mod 2^64, from their (lo, hi) words."""
    lo = a[0] + b[0]
    return lo & _U32, (a[1] + b[1] + (lo >> 32)) & _U32


def philox(ctr, key) -> tuple:
    """Philox4x32-10 of counter (c0, c1, c2, c3) under key (k0, k1): four int64 tensors of 32-bit words.

    Each word is an int64 tensor or an int; the spec's zero c2 and c3 as the int 0 save two products.
    """
    (c0, c1, c2, c3), (k0, k1) = ctr, key
    for _ in range(rng.ROUNDS):
        hi0, lo0 = _mul(c0, rng.M0)
        hi1, lo1 = _mul(c2, rng.M1)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0, k1 = (k0 + rng.W0) & _U32, (k1 + rng.W1) & _U32
    return c0, c1, c2, c3


def stream(seed: Tensor, offset: int) -> Tensor:
    """seed and offset as one int64 tensor (seed, shift...): the offset as data, as dropkit.addressing passes it.

    seed: a scalar seed tensor, or dropkit.addressing's (seed, shift) pair.
    """
    return torch.cat((seed.reshape(-1), torch.tensor([offset], dtype=torch.int64, device=seed.device)))


def _per_element(shape, seed: Tensor, offset: int, device, fn) -> Tensor:
    """fn's four per-lane values of each Philox block, laid out as the elements of `shape` they belong to.

    One Philox per block of four elements, not per element: fn maps a block's
    words (r0, r1, r2, r3) to the values of its lanes 0-3, which are interleaved
    and sliced from the first element's lane. At offset 0 with a scalar seed
    (every module's call) that lane is 0; otherwise it is data (exact for an
    offset Dynamo made dynamic, where slicing by a symbolic lane failed to
    compile) and a select over four slices picks it.
    """
    device = seed.device if device is None else device
    seed = seed.to(device).reshape(-1)
    static = offset == 0 and seed.numel() == 1
    # The offset goes in as data even when it is 0: with a constant seed and no load in
    # the counter's chain, Inductor inlines the whole Philox DAG and its lowering never ends.
    seed = stream(seed, offset)
    n = math.prod(shape)
    g = _words(seed[1])
    for k in range(2, seed.numel()):
        g = _add(g, _words(seed[k]))
    base = ((g[0] >> 2) | ((g[1] & 3) << 30), g[1] >> 2)
    lane, blocks = (None, (n + 3) // 4) if static else (g[0] & 3, (n + 3) // 4 + 1)
    b = torch.arange(blocks, dtype=torch.int64, device=device)
    c = _add(base, (b & _U32, b >> 32))
    v = torch.stack(fn(*philox((c[0], c[1] & _U30, 0, 0), _words(seed[0]))), -1).reshape(-1)
    if lane is None:
        return v[:n].view(shape)
    at = [v[k : k + n] for k in range(4)]
    return torch.where(lane == 0, at[0], torch.where(lane == 1, at[1], torch.where(lane == 2, at[2], at[3]))).view(
        shape
    )


def random_bits(shape, seed: Tensor, offset: int = 0, device=None) -> Tensor:
    """The spec's random words (int64) of a tensor of `shape`: element i at stream index offset + i.

    seed: int64 scalar tensor holding a uint64 seed, or (seed, shift...) adding each shift to
    the offset (mod 2^64). offset: int holding uint64 (or int64 two's-complement) bits.
    """
    return _per_element(shape, seed, offset, device, lambda *words: words)


def normal(shape, seed: Tensor, offset: int = 0, device=None) -> Tensor:
    """The spec's standard normals (float64) of a tensor of `shape`, as dropkit.ops.gaussian.normal draws them.

    Box-Muller on the word pair (2k, 2k+1) holding the element, which lies in its own Philox
    block: element 2k gets R cos T, element 2k+1 gets R sin T. Seed and offset as random_bits.
    """

    def box_muller(r0, r1, r2, r3):
        z = []
        for u1, u2 in ((r0, r1), (r2, r3)):
            radius = torch.sqrt(-2.0 * torch.log((u1.to(torch.float64) + 1.0) * _TWO_M32))
            angle = (2.0 * math.pi * _TWO_M32) * u2.to(torch.float64)
            z += [radius * torch.cos(angle), radius * torch.sin(angle)]
        return z

    return _per_element(shape, seed, offset, device, box_muller)


def keep_mask(shape, p: float, seed: Tensor, offset: int, device=None) -> Tensor:
    """The spec's boolean keep mask of a tensor of `shape`: r >= floor(p * 2^32)."""
    return random_bits(shape, seed, offset, device) >= rng.threshold(p)


def scaled_where(v: Tensor, keep: Tensor, p: float, dtype: torch.dtype) -> Tensor:
    """v * scale where keep, exact 0 elsewhere (also where v is inf or NaN), rounded once to `dtype`.

    v is in the compute type (float32 for half types); the scale is rounded to it once, as the kernels do.
    """
    s = torch.tensor(rng.scale(p), dtype=v.dtype, device=v.device)
    return torch.where(keep, v * s, torch.zeros((), dtype=v.dtype, device=v.device)).to(dtype)
