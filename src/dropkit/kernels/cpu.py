"""Fused CPU kernels (numba): one pass reads x and writes y, masks made on the fly.

Work is split in chunks of CHUNK elements. Per chunk, Philox fills a small
buffer of random words, then a second loop applies the keep rule. Written
this way LLVM vectorizes both loops; a single loop with tuple returns did
not and ran 2.4x slower. Threads own contiguous runs of chunks, so fresh
output pages are first touched in parallel.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
import torch
from numba.core import cgutils, types
from numba.extending import intrinsic

from .. import rng
from ._contract import ACTIVATION_CODES

__all__ = ["dropout_fwd", "dropout_fwd_packed", "dropout_bwd_packed", "relu_dropout_bwd", "random_bits"]

CHUNK = 4096  # elements per chunk; a multiple of 8 so packed bytes never straddle chunks
_U32 = np.uint64(0xFFFFFFFF)
_M0, _M1 = np.uint64(rng.M0), np.uint64(rng.M1)
_W0, _W1 = np.uint64(rng.W0), np.uint64(rng.W1)
_S32 = np.uint64(32)
_B62 = np.uint64(2**62 - 1)
# _SPREAD[b] holds bit k of b in its byte k (little-endian, as .view(np.uint8) reads it).
_SPREAD = np.array([sum(((b >> k) & 1) << (8 * k) for k in range(8)) for b in range(256)], dtype=np.uint64)
_JIT = dict(nogil=True, cache=True, fastmath=False, error_model="numpy")
_NO_BITS = np.empty(0, dtype=np.uint8)


@nb.njit(**_JIT)
def _fill_bits(buf, b0, nblocks, k0, k1):
    """buf[4j + lane] = philox(ctr=(b0+j), key)[lane] for j < nblocks."""
    for j in range(nblocks):
        b = (b0 + np.uint64(j)) & _B62  # block of g mod 2^64: a stream may wrap past 2^64
        c0 = b & _U32
        c1 = b >> _S32
        c2 = np.uint64(0)
        c3 = np.uint64(0)
        key0 = k0
        key1 = k1
        for _ in range(10):
            p0 = c0 * _M0
            p1 = c2 * _M1
            n0 = (p1 >> _S32) ^ c1 ^ key0
            n2 = (p0 >> _S32) ^ c3 ^ key1
            c1 = p1 & _U32
            c3 = p0 & _U32
            c0 = n0
            c2 = n2
            key0 = (key0 + _W0) & _U32
            key1 = (key1 + _W1) & _U32
        buf[4 * j] = np.uint32(c0)
        buf[4 * j + 1] = np.uint32(c1)
        buf[4 * j + 2] = np.uint32(c2)
        buf[4 * j + 3] = np.uint32(c3)


@nb.njit(**_JIT)
def _chunk_bits(buf, offset, start, stop, k0, k1):
    """Fill buf with random words and return where element `start` reads in it."""
    g0 = offset + np.uint64(start)
    s = int(g0 & np.uint64(3))
    _fill_bits(buf, g0 >> np.uint64(2), (s + stop - start + 3) // 4, k0, k1)
    return s


@nb.njit(inline="always", **_JIT)
def _activation(h, act):
    """act 0: h; 1: relu(h) = 0 where h < 0 (NaN and -0.0 pass through); 2: gelu(h) = h/2 * (1 + erf(h / sqrt 2))."""
    T = type(h)
    if act == 1:
        return T(0) if h < T(0) else h
    if act == 2:
        return (h * T(0.5)) * (T(1) + T(math.erf(h * T(0.7071067811865476))))
    return h


@nb.njit(**_JIT)
def _keep_apply(xs, ys, rs, t32, drop_all, act, scale):
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
            ys[i] = _activation(xs[i], 1) * scale if rs[i] >= t32 else zero
    else:
        for i in range(xs.size):
            ys[i] = _activation(xs[i], act) * scale if rs[i] >= t32 else zero


@nb.njit(**_JIT)
def _pack_bits(rs, t32, drop_all, keep, out):
    """out[j] = keep bits of the chunk's elements 8j .. 8j+7 (bit b for element 8j+b)."""
    m = rs.size
    for i in range(m):
        keep[i] = 0 if drop_all else rs[i] >= t32
    keep[m:] = 0
    for j in range(out.size):
        byte = 0
        for b in range(8):
            byte |= keep[8 * j + b] << b
        out[j] = byte


@nb.njit(**_JIT)
def _dropout_chunks(x, y, bits, seed, offset, t, act, scale, c0, c1):
    """Chunks c0 .. c1-1 of y = spec dropout of x, and of the packed keep mask unless bits is empty."""
    n = x.size
    k0 = seed & _U32
    k1 = seed >> _S32
    drop_all = t > _U32
    t32 = np.uint32(t & _U32)
    buf = np.empty(CHUNK + 8, dtype=np.uint32)
    keep = np.empty(CHUNK, dtype=np.uint8)
    for c in range(c0, c1):
        start = c * CHUNK
        stop = min(start + CHUNK, n)
        s = _chunk_bits(buf, offset, start, stop, k0, k1)
        rs = buf[s : s + stop - start]
        _keep_apply(x[start:stop], y[start:stop], rs, t32, drop_all, act, scale)
        if bits.size:
            _pack_bits(rs, t32, drop_all, keep, bits[start // 8 : (stop + 7) // 8])


@nb.njit(parallel=True, **_JIT)
def _dropout_parallel(x, y, bits, seed, offset, t, act, scale, nthreads):
    nchunks = (x.size + CHUNK - 1) // CHUNK
    for tid in nb.prange(nthreads):
        _dropout_chunks(x, y, bits, seed, offset, t, act, scale, tid * nchunks // nthreads, (tid + 1) * nchunks // nthreads)


@nb.njit(**_JIT)
def _unpack_chunks(g, y, bits, scale, c0, c1):
    """Chunks c0 .. c1-1 of y = g * scale where the packed keep bit is set, else 0.

    Bits are first spread to one byte each through a 256-entry table, so the
    select loop vectorizes like _keep_apply's; a shift per element did not.
    """
    n = g.size
    zero = g.dtype.type(0)
    spread = np.empty(CHUNK // 8, dtype=np.uint64)
    keep = spread.view(np.uint8)
    for c in range(c0, c1):
        start = c * CHUNK
        stop = min(start + CHUNK, n)
        for j in range((stop - start + 7) // 8):
            spread[j] = _SPREAD[bits[start // 8 + j]]
        gs = g[start:stop]
        ys = y[start:stop]
        for i in range(stop - start):
            ys[i] = gs[i] * scale if keep[i] else zero


@nb.njit(parallel=True, **_JIT)
def _unpack_parallel(g, y, bits, scale, nthreads):
    nchunks = (g.size + CHUNK - 1) // CHUNK
    for tid in nb.prange(nthreads):
        _unpack_chunks(g, y, bits, scale, tid * nchunks // nthreads, (tid + 1) * nchunks // nthreads)


@nb.njit(**_JIT)
def _sign_chunks(g, dx, y, scale, c0, c1):
    """Chunks c0 .. c1-1 of dx = g * scale where y > 0, else 0: relu + dropout's backward read off its output."""
    n = g.size
    zero = g.dtype.type(0)
    for c in range(c0, c1):
        start = c * CHUNK
        stop = min(start + CHUNK, n)
        gs, ys, ds = g[start:stop], y[start:stop], dx[start:stop]
        for i in range(stop - start):
            ds[i] = gs[i] * scale if ys[i] > zero else zero


@nb.njit(parallel=True, **_JIT)
def _sign_parallel(g, dx, y, scale, nthreads):
    nchunks = (g.size + CHUNK - 1) // CHUNK
    for tid in nb.prange(nthreads):
        _sign_chunks(g, dx, y, scale, tid * nchunks // nthreads, (tid + 1) * nchunks // nthreads)


@nb.njit(**_JIT)
def _bits_chunks(out, seed, offset, c0, c1):
    """Chunks c0 .. c1-1 of the spec's random words."""
    n = out.size
    k0 = seed & _U32
    k1 = seed >> _S32
    buf = np.empty(CHUNK + 8, dtype=np.uint32)
    for c in range(c0, c1):
        start = c * CHUNK
        stop = min(start + CHUNK, n)
        s = _chunk_bits(buf, offset, start, stop, k0, k1)
        out[start:stop] = buf[s : s + stop - start]


@nb.njit(parallel=True, **_JIT)
def _bits_parallel(out, seed, offset, nthreads):
    nchunks = (out.size + CHUNK - 1) // CHUNK
    for tid in nb.prange(nthreads):
        _bits_chunks(out, seed, offset, tid * nchunks // nthreads, (tid + 1) * nchunks // nthreads)


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
    threads = 1 if n < PARALLEL_MIN else min(torch.get_num_threads(), work_items, nb.config.NUMBA_NUM_THREADS)
    if threads > 1:
        nb.set_num_threads(threads)  # this thread's launches use `threads` of the pool, not one per core
    return threads


def _launch(chunks, parallel, n: int, *args) -> None:
    """Run a kernel serially on small inputs, on numba's thread pool on large ones."""
    nchunks = (n + CHUNK - 1) // CHUNK
    threads = pool_threads(n, nchunks)
    if threads <= 1:
        chunks(*args, 0, nchunks)
    else:
        parallel(*args, threads)


@intrinsic
def _address(typingctx, addr):
    """The int64 address of a tensor's data as a void pointer (for nb.carray)."""

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], cgutils.voidptr_t)

    return types.voidptr(types.int64), codegen


@nb.njit(**_JIT)
def _dropout_direct(x_addr, y_addr, n, f64, seed, offset, t, act, scale):
    """Serial spec dropout between raw buffers of n float32 or float64 (seed, offset as int64 bits).

    Small tensors come here: the buffers are torch's own, reached by address,
    which skips the numpy views, numba's array typing and the thread count,
    about 4 us of a 6 us call on a (1, 16) tensor.
    """
    c1 = (n + CHUNK - 1) // CHUNK
    s, off, tt = np.uint64(seed), np.uint64(offset), np.uint64(t)
    no_bits = np.empty(0, dtype=np.uint8)
    if f64:
        x = nb.carray(_address(x_addr), n, np.float64)
        y = nb.carray(_address(y_addr), n, np.float64)
        _dropout_chunks(x, y, no_bits, s, off, tt, act, np.float64(scale), 0, c1)
    else:
        x = nb.carray(_address(x_addr), n, np.float32)
        y = nb.carray(_address(y_addr), n, np.float32)
        _dropout_chunks(x, y, no_bits, s, off, tt, act, np.float32(scale), 0, c1)


_HALF = (torch.float16, torch.bfloat16)
_DIRECT = {torch.float32: False, torch.float64: True}
_DROPOUT = (_dropout_chunks, _dropout_parallel)
_UNPACK = (_unpack_chunks, _unpack_parallel)
_SIGN = (_sign_chunks, _sign_parallel)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy().reshape(-1)


def _apply(kernels, x: torch.Tensor, out: torch.Tensor | None, *args) -> torch.Tensor:
    """Run an elementwise kernel pair (chunks, parallel) on contiguous x: kernel(x, y, *args, ...).

    The output is allocated by numpy, which asks the OS for transparent huge
    pages on large arrays; a fresh torch allocation takes a page fault per
    4 KiB, which at 2^24 elements cost as much as the kernel itself (30 ms vs
    16 ms on 2 cores). Half types go through float32: the spec computes them as
    round(float32(x) * float32(scale)), exactly a float32 pass and one cast.
    """
    if x.dtype in _HALF:
        y = _apply(kernels, x.float(), None, *args).to(x.dtype)
        return y if out is None else out.copy_(y)
    xn = _np(x)
    scale = xn.dtype.type(args[-1])
    if out is not None:
        _launch(*kernels, xn.size, xn, _np(out), *args[:-1], scale)
        return out
    y = np.empty(x.shape, xn.dtype)  # shaped by numpy: torch's .view costs 2 us a call
    _launch(*kernels, xn.size, xn, y.reshape(-1), *args[:-1], scale)
    return torch.from_numpy(y)


def dropout_fwd(x: torch.Tensor, seed: int, offset: int, p: float, out=None, activation=None) -> torch.Tensor:
    """Spec dropout of activation(x) for contiguous x, into `out` (may be x itself) or a new tensor.

    activation: None, "relu" or "gelu", applied in the compute type (float32 for half types).
    """
    n = x.numel()
    f64 = _DIRECT.get(x.dtype)
    act = ACTIVATION_CODES[activation]
    if n < PARALLEL_MIN and f64 is not None:
        y = torch.empty_like(x) if out is None else out
        _dropout_direct(
            x.data_ptr(), y.data_ptr(), n, f64, rng.to_int64(seed), rng.to_int64(offset), rng.threshold(p), act, rng.scale(p)
        )
        return y
    t = np.uint64(rng.threshold(p))
    return _apply(_DROPOUT, x, out, _NO_BITS, np.uint64(seed), np.uint64(offset), t, act, rng.scale(p))


def dropout_fwd_packed(x: torch.Tensor, seed: int, offset: int, p: float):
    """dropout_fwd that also returns the keep mask packed 1 bit per element (uint8)."""
    bits = torch.empty((x.numel() + 7) // 8, dtype=torch.uint8)
    y = _apply(_DROPOUT, x, None, _np(bits), np.uint64(seed), np.uint64(offset), np.uint64(rng.threshold(p)), 0, rng.scale(p))
    return y, bits


def dropout_bwd_packed(grad: torch.Tensor, bits: torch.Tensor, p: float) -> torch.Tensor:
    """grad * scale where the packed keep bit is set, else 0 (grad contiguous)."""
    return _apply(_UNPACK, grad, None, _np(bits), rng.scale(p))


def relu_dropout_bwd(grad: torch.Tensor, y: torch.Tensor, p: float) -> torch.Tensor:
    """Gradient of dropout(relu(x)) from its output y: grad * scale where y > 0, else 0 (both contiguous).

    y > 0 exactly where the element was kept and x > 0, so no random number is drawn.
    """
    return _apply(_SIGN, grad, None, _np(y.float() if y.dtype in _HALF else y), rng.scale(p))


def random_bits(n: int, seed: int, offset: int, device=None) -> torch.Tensor:
    """The spec's random words for stream indices offset .. offset+n-1, as int64."""
    out = np.empty(n, dtype=np.uint32)
    _launch(_bits_chunks, _bits_parallel, n, out, np.uint64(seed), np.uint64(offset))
    return torch.from_numpy(out.astype(np.int64))
