"""The numba pieces every CPU kernel shares: Philox words per chunk, the keep rule, activations, the launch.

cpu.py (dropout), cpu_fused.py (bias + activation + dropout + residual) and
attention_cpu.py build their kernels from these, so the spec is written once
for the CPU. Work is split in chunks of CHUNK elements; threads own contiguous
runs of chunks (see cpu.py for why).

Examples:
    >>> pool_threads(1000, 1)  # a small input: the calling thread, and numba's pool stays unstarted
    1
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, TypedDict

import numba as nb
import numpy as np
import torch

from .. import rng

__all__ = [
    "CHUNK",
    "U32",
    "S32",
    "JIT",
    "JITOptions",
    "HALF",
    "PARALLEL_MIN",
    "fill_bits",
    "chunk_bits",
    "apply_activation",
    "keep_apply",
    "pool_threads",
    "launch",
    "as_numpy",
]

CHUNK = 4096  # elements per chunk; a multiple of 8 so packed bytes never straddle chunks
U32 = np.uint64(0xFFFFFFFF)
_M0, _M1 = np.uint64(rng.M0), np.uint64(rng.M1)
_W0, _W1 = np.uint64(rng.W0), np.uint64(rng.W1)
S32 = np.uint64(32)
_B62 = np.uint64(2**62 - 1)


class JITOptions(TypedDict):
    """The options every kernel's nb.njit takes (typed, so that njit's typed overloads apply to the kernels)."""

    nogil: bool
    cache: bool
    fastmath: bool
    error_model: Literal["python", "numpy"]


JIT: JITOptions = dict(nogil=True, cache=True, fastmath=False, error_model="numpy")


@nb.njit(**JIT)
def fill_bits(buf: np.ndarray, b0: np.uint64, nblocks: int, k0: np.uint64, k1: np.uint64) -> None:
    """buf[4j + lane] = philox(ctr=(b0+j), key)[lane] for j < nblocks."""
    for j in range(nblocks):
        b = (b0 + np.uint64(j)) & _B62  # block of g mod 2^64: a stream may wrap past 2^64
        c0 = b & U32
        c1 = b >> S32
        c2 = np.uint64(0)
        c3 = np.uint64(0)
        key0 = k0
        key1 = k1
        for _ in range(10):
            p0 = c0 * _M0
            p1 = c2 * _M1
            n0 = (p1 >> S32) ^ c1 ^ key0
            n2 = (p0 >> S32) ^ c3 ^ key1
            c1 = p1 & U32
            c3 = p0 & U32
            c0 = n0
            c2 = n2
            key0 = (key0 + _W0) & U32
            key1 = (key1 + _W1) & U32
        buf[4 * j] = np.uint32(c0)
        buf[4 * j + 1] = np.uint32(c1)
        buf[4 * j + 2] = np.uint32(c2)
        buf[4 * j + 3] = np.uint32(c3)


@nb.njit(**JIT)
def chunk_bits(buf: np.ndarray, offset: np.uint64, start: int, stop: int, k0: np.uint64, k1: np.uint64) -> int:
    """Fill buf with random words and return where element `start` reads in it."""
    g0 = offset + np.uint64(start)
    s = int(g0 & np.uint64(3))
    fill_bits(buf, g0 >> np.uint64(2), (s + stop - start + 3) // 4, k0, k1)
    return s


@nb.njit(inline="always", **JIT)
def apply_activation(h: np.floating, act: int) -> np.floating:
    """act 0: h; 1: relu(h) = 0 where h < 0 (NaN and -0.0 pass through); 2: gelu(h) = h/2 * (1 + erf(h / sqrt 2))."""
    T = type(h)
    if act == 1:
        return T(0) if h < T(0) else h
    if act == 2:
        # numpy's stubs, read for Python 3.10, type this arithmetic as Any
        return (h * T(0.5)) * (T(1) + T(math.erf(h * T(0.7071067811865476))))  # type: ignore[no-any-return]
    return h


@nb.njit(**JIT)
def keep_apply(
    xs: np.ndarray,
    ys: np.ndarray,
    rs: np.ndarray,
    t32: np.uint32,
    drop_all: bool | np.bool_,
    act: int,
    scale: np.floating,
) -> None:
    """ys = activation(xs) * scale where rs >= t32, else 0 (one chunk, as slices).

    Slices and a 32-bit compare let LLVM vectorize this loop; indexing the
    whole arrays with start + i and comparing in 64 bits ran 5x slower.
    """
    zero = xs.dtype.type(0)
    if drop_all:  # p = 1: t = 2^32 has no 32-bit form
        ys[:] = zero
        return
    if act == 0:  # one loop per activation, each vectorized on its own
        for i in range(xs.size):
            ys[i] = xs[i] * scale if rs[i] >= t32 else zero
    elif act == 1:
        for i in range(xs.size):
            ys[i] = apply_activation(xs[i], 1) * scale if rs[i] >= t32 else zero
    else:
        for i in range(xs.size):
            ys[i] = apply_activation(xs[i], act) * scale if rs[i] >= t32 else zero


# Below this many elements the calling thread does the work alone. Waking numba's
# OpenMP pool costs little by itself, but its threads and torch's spin-wait against
# each other on a small machine; small tensors then wait milliseconds, not microseconds.
PARALLEL_MIN = 2**18


def pool_threads(n: int, work_items: int) -> int:
    """Threads for a kernel over n elements in work_items parts: 1 below PARALLEL_MIN, else torch's
    thread count (torch.set_num_threads, the lab's --threads) capped by the work and numba's pool;
    numba's pool is then bound to that many threads, so a launch wakes no more of them.

    numba's pool starts only when more than one thread is wanted: started, its idle threads slowed
    two single-threaded trainings sharing 2 cores 3.5x (docs/benchmarks.md).

    Examples:
        >>> pool_threads(1000, 1)  # a small input: the calling thread, and numba's pool stays unstarted
        1
    """
    threads = 1 if n < PARALLEL_MIN else min(torch.get_num_threads(), work_items, nb.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]  # set from the environment at import
    if threads > 1:
        nb.set_num_threads(threads)  # this thread's launches use `threads` of the pool, not one per core
    return threads


def launch(chunks: Callable[..., None], parallel: Callable[..., None], n: int, *args: object) -> None:
    """Run a kernel serially on small inputs, on numba's thread pool on large ones."""
    nchunks = (n + CHUNK - 1) // CHUNK
    threads = pool_threads(n, nchunks)
    if threads <= 1:
        chunks(*args, 0, nchunks)
    else:
        parallel(*args, threads)


HALF = (torch.float16, torch.bfloat16)


def as_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy().reshape(-1)
