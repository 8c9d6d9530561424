"""The mask spec: Philox4x32-10, the keep rule, and how seeds are drawn.

The numpy functions here are the reference every backend is tested against
(docs/mask-spec.md). They favour clarity over speed.

Examples:
    >>> from dropkit import rng
    >>> [hex(v) for v in rng.philox4x32((0, 0, 0, 0), (0, 0))]
    ['0x6627e8d5', '0xe169c58d', '0xbc57ac4c', '0x9b00dbd8']
"""

from __future__ import annotations

import math
import threading
from typing import Any, TypeVar

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "philox4x32",
    "philox4x32_int",
    "random_bits",
    "keep_mask",
    "threshold",
    "scale",
    "draw_seed",
    "to_int64",
    "to_uint64",
]

M0, M1 = 0xD2511F53, 0xCD9E8D57
W0, W1 = 0x9E3779B9, 0xBB67AE85
ROUNDS = 10
_MASK32 = 0xFFFFFFFF

# _rounds runs on Python ints (one block) and on uint64 arrays (many blocks) alike.
_W = TypeVar("_W", int, "NDArray[Any]")


def _rounds(c0: _W, c1: _W, c2: _W, c3: _W, k0: _W, k1: _W) -> tuple[_W, _W, _W, _W]:
    """Ten Philox rounds; works on Python ints and on uint64 numpy arrays alike."""
    for _ in range(ROUNDS):
        p0 = c0 * M0  # < 2^64: 32-bit times 32-bit never wraps
        p1 = c2 * M1
        c0, c1, c2, c3 = (p1 >> 32) ^ c1 ^ k0, p1 & _MASK32, (p0 >> 32) ^ c3 ^ k1, p0 & _MASK32
        k0 = (k0 + W0) & _MASK32
        k1 = (k1 + W1) & _MASK32
    return c0, c1, c2, c3


def philox4x32(
    ctr: tuple[ArrayLike, ArrayLike, ArrayLike, ArrayLike], key: tuple[ArrayLike, ArrayLike]
) -> tuple[NDArray[np.uint32], ...]:
    """Philox4x32-10 of counter (c0, c1, c2, c3) under key (k0, k1).

    Each component may be an int or a numpy array (broadcast together); the
    result is a tuple of four uint32 arrays.
    """
    words = (np.asarray(v, dtype=np.uint64) for v in (*ctr, *key))
    return tuple(c.astype(np.uint32) for c in _rounds(*words))


def philox4x32_int(ctr: tuple[int, int, int, int], key: tuple[int, int]) -> tuple[int, int, int, int]:
    """philox4x32 of one counter, in Python ints (about 20x faster than numpy on a single block)."""
    return _rounds(*(int(v) for v in (*ctr, *key)))


def random_bits(n: int, seed: int, offset: int = 0) -> np.ndarray:
    """The spec's 32-bit random numbers r for stream indices offset .. offset+n-1."""
    g = np.uint64(offset) + np.arange(n, dtype=np.uint64)
    b = g >> np.uint64(2)
    lane = (g & np.uint64(3)).astype(np.intp)
    out = philox4x32(
        (b & np.uint64(_MASK32), b >> np.uint64(32), 0, 0),
        (seed & _MASK32, seed >> 32),
    )
    return np.stack(out)[lane, np.arange(n)] if n else np.zeros(0, np.uint32)


def threshold(p: float) -> int:
    """t(p) = floor(p * 2^32): an element is kept iff its r >= t(p)."""
    return math.floor(p * 2**32)


def scale(p: float) -> float:
    """1/(1-p) in float64 (0 at p = 1, where nothing is kept)."""
    return 0.0 if p >= 1.0 else 1.0 / (1.0 - p)


def keep_mask(shape: tuple[int, ...], p: float, seed: int, offset: int = 0) -> np.ndarray:
    """Reference boolean keep mask of a tensor of `shape` (logical row-major order)."""
    n = math.prod(shape)
    return (random_bits(n, seed, offset).astype(np.uint64) >= threshold(p)).reshape(shape)


def to_int64(u: int) -> int:
    """A uint64 as the int64 with the same bits (custom-op schemas carry int64)."""
    return u - 2**64 if u >= 2**63 else u


def to_uint64(i: int) -> int:
    """Inverse of to_int64."""
    return i + 2**64 if i < 0 else i


class _Words(threading.local):
    """A per-thread buffer for the two words of a seed: refilling it costs half of a new torch.randint."""

    def __init__(self) -> None:
        with torch.inference_mode(False):  # a buffer made in inference mode could not be refilled outside it
            self.buf = torch.empty(2, dtype=torch.int64)


_WORDS = _Words()


def draw_seed(generator: torch.Generator | None = None) -> int:
    """A 64-bit seed drawn from `generator` (torch's default one if None).

    The same draw as torch.randint(0, 2**32, (2,), generator=generator): low word first.
    """
    lo: int
    hi: int
    lo, hi = _WORDS.buf.random_(0, 2**32, generator=generator).tolist()
    return lo | (hi << 32)
