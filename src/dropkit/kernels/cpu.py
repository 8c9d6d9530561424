"""Fused CPU kernels (numba): one pass reads x and writes y, masks made on the fly.

Work is split in chunks of CHUNK elements. Per chunk, Philox fills a small
buffer of random words, then a second loop applies the keep rule. Written
this way LLVM vectorizes both loops; a single loop with tuple returns did
not and ran 2.4x slower. Threads own contiguous runs of chunks, so fresh
output pages are first touched in parallel.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numba as nb
import numpy as np
import torch
from numba.core import cgutils, types
from numba.extending import intrinsic

from .. import rng
from ._contract import ACTIVATION_CODES
from .cpu_common import CHUNK, HALF, JIT, PARALLEL_MIN, S32, U32, as_numpy, chunk_bits, keep_apply, launch

__all__ = ["dropout_fwd", "dropout_fwd_packed", "dropout_bwd_packed", "relu_dropout_bwd", "random_bits"]

# _SPREAD[b] holds bit k of b in its byte k (little-endian, as .view(np.uint8) reads it).
_SPREAD = np.array([sum(((b >> k) & 1) << (8 * k) for k in range(8)) for b in range(256)], dtype=np.uint64)
_NO_BITS = np.empty(0, dtype=np.uint8)


@nb.njit(**JIT)
def _pack_bits(rs: np.ndarray, t32: np.uint32, drop_all: bool | np.bool_, keep: np.ndarray, out: np.ndarray) -> None:
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


@nb.njit(**JIT)
def _dropout_chunks(
    x: np.ndarray,
    y: np.ndarray,
    bits: np.ndarray,
    seed: np.uint64,
    offset: np.uint64,
    t: np.uint64,
    act: int,
    scale: np.floating,
    c0: int,
    c1: int,
) -> None:
    """Chunks c0 .. c1-1 of y = spec dropout of x, and of the packed keep mask unless bits is empty."""
    n = x.size
    k0 = seed & U32
    k1 = seed >> S32
    drop_all = t > U32
    t32 = np.uint32(t & U32)
    buf = np.empty(CHUNK + 8, dtype=np.uint32)
    keep = np.empty(CHUNK, dtype=np.uint8)
    for c in range(c0, c1):
        start = c * CHUNK
        stop = min(start + CHUNK, n)
        s = chunk_bits(buf, offset, start, stop, k0, k1)
        rs = buf[s : s + stop - start]
        keep_apply(x[start:stop], y[start:stop], rs, t32, drop_all, act, scale)
        if bits.size:
            _pack_bits(rs, t32, drop_all, keep, bits[start // 8 : (stop + 7) // 8])


@nb.njit(parallel=True, **JIT)
def _dropout_parallel(
    x: np.ndarray,
    y: np.ndarray,
    bits: np.ndarray,
    seed: np.uint64,
    offset: np.uint64,
    t: np.uint64,
    act: int,
    scale: np.floating,
    nthreads: int,
) -> None:
    nchunks = (x.size + CHUNK - 1) // CHUNK
    for tid in nb.prange(nthreads):
        _dropout_chunks(
            x, y, bits, seed, offset, t, act, scale, tid * nchunks // nthreads, (tid + 1) * nchunks // nthreads
        )


@nb.njit(**JIT)
def _unpack_chunks(g: np.ndarray, y: np.ndarray, bits: np.ndarray, scale: np.floating, c0: int, c1: int) -> None:
    """Chunks c0 .. c1-1 of y = g * scale where the packed keep bit is set, else 0.

    Bits are first spread to one byte each through a 256-entry table, so the
    select loop vectorizes like keep_apply's; a shift per element did not.
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


@nb.njit(parallel=True, **JIT)
def _unpack_parallel(g: np.ndarray, y: np.ndarray, bits: np.ndarray, scale: np.floating, nthreads: int) -> None:
    nchunks = (g.size + CHUNK - 1) // CHUNK
    for tid in nb.prange(nthreads):
        _unpack_chunks(g, y, bits, scale, tid * nchunks // nthreads, (tid + 1) * nchunks // nthreads)


@nb.njit(**JIT)
def _sign_chunks(g: np.ndarray, dx: np.ndarray, y: np.ndarray, scale: np.floating, c0: int, c1: int) -> None:
    """Chunks c0 .. c1-1 of dx = g * scale where y > 0, else 0: relu + dropout's backward read off its output."""
    n = g.size
    zero = g.dtype.type(0)
    for c in range(c0, c1):
        start = c * CHUNK
        stop = min(start + CHUNK, n)
        gs, ys, ds = g[start:stop], y[start:stop], dx[start:stop]
        for i in range(stop - start):
            ds[i] = gs[i] * scale if ys[i] > zero else zero


@nb.njit(parallel=True, **JIT)
def _sign_parallel(g: np.ndarray, dx: np.ndarray, y: np.ndarray, scale: np.floating, nthreads: int) -> None:
    nchunks = (g.size + CHUNK - 1) // CHUNK
    for tid in nb.prange(nthreads):
        _sign_chunks(g, dx, y, scale, tid * nchunks // nthreads, (tid + 1) * nchunks // nthreads)


@nb.njit(**JIT)
def _bits_chunks(out: np.ndarray, seed: np.uint64, offset: np.uint64, c0: int, c1: int) -> None:
    """Chunks c0 .. c1-1 of the spec's random words."""
    n = out.size
    k0 = seed & U32
    k1 = seed >> S32
    buf = np.empty(CHUNK + 8, dtype=np.uint32)
    for c in range(c0, c1):
        start = c * CHUNK
        stop = min(start + CHUNK, n)
        s = chunk_bits(buf, offset, start, stop, k0, k1)
        out[start:stop] = buf[s : s + stop - start]


@nb.njit(parallel=True, **JIT)
def _bits_parallel(out: np.ndarray, seed: np.uint64, offset: np.uint64, nthreads: int) -> None:
    nchunks = (out.size + CHUNK - 1) // CHUNK
    for tid in nb.prange(nthreads):
        _bits_chunks(out, seed, offset, tid * nchunks // nthreads, (tid + 1) * nchunks // nthreads)


@intrinsic
def _address(typingctx: object, addr: types.Integer) -> tuple[Any, Callable[..., Any]]:
    """The int64 address of a tensor's data as a void pointer (for nb.carray)."""

    def codegen(context: object, builder: Any, signature: object, args: Sequence[Any]) -> Any:
        return builder.inttoptr(args[0], cgutils.voidptr_t)

    return types.voidptr(types.int64), codegen


@nb.njit(**JIT)
def _dropout_direct(
    x_addr: int, y_addr: int, n: int, f64: bool, seed: int, offset: int, t: int, act: int, scale: float
) -> None:
    """Serial spec dropout between raw buffers of n float32 or float64 (seed, offset as int64 bits).

    Small tensors come here: the buffers are torch's own, reached by address,
    which skips the numpy views, numba's array typing and the thread count,
    about 4 us of a 6 us call on a (1, 16) tensor.
    """
    c1 = (n + CHUNK - 1) // CHUNK
    s, off, tt = np.uint64(seed), np.uint64(offset), np.uint64(t)
    no_bits = np.empty(0, dtype=np.uint8)
    # numba's stub types an intrinsic's call with its typing context too; jitted code passes only addr
    if f64:
        x: np.ndarray = nb.carray(_address(x_addr), n, np.float64)  # type: ignore[call-arg]
        y = nb.carray(_address(y_addr), n, np.float64)
        _dropout_chunks(x, y, no_bits, s, off, tt, act, np.float64(scale), 0, c1)
    else:
        x = nb.carray(_address(x_addr), n, np.float32)  # type: ignore[call-arg]
        y = nb.carray(_address(y_addr), n, np.float32)
        _dropout_chunks(x, y, no_bits, s, off, tt, act, np.float32(scale), 0, c1)


_DIRECT = {torch.float32: False, torch.float64: True}
_DROPOUT = (_dropout_chunks, _dropout_parallel)
_UNPACK = (_unpack_chunks, _unpack_parallel)
_SIGN = (_sign_chunks, _sign_parallel)


def _apply(
    kernels: tuple[Callable[..., None], Callable[..., None]], x: torch.Tensor, out: torch.Tensor | None, *args: object
) -> torch.Tensor:
    """Run an elementwise kernel pair (chunks, parallel) on contiguous x: kernel(x, y, *args, ...).

    The output is allocated by numpy, which asks the OS for transparent huge
    pages on large arrays; a fresh torch allocation takes a page fault per
    4 KiB, which at 2^24 elements cost as much as the kernel itself (30 ms vs
    16 ms on 2 cores). Half types go through float32: the spec computes them as
    round(float32(x) * float32(scale)), exactly a float32 pass and one cast.
    """
    if x.dtype in HALF:
        y = _apply(kernels, x.float(), None, *args).to(x.dtype)
        return y if out is None else out.copy_(y)
    xn = as_numpy(x)
    scale = xn.dtype.type(args[-1])
    if out is not None:
        launch(*kernels, xn.size, xn, as_numpy(out), *args[:-1], scale)
        return out
    yn = np.empty(x.shape, xn.dtype)  # shaped by numpy: torch's .view costs 2 us a call
    launch(*kernels, xn.size, xn, yn.reshape(-1), *args[:-1], scale)
    return torch.from_numpy(yn)


def dropout_fwd(
    x: torch.Tensor, seed: int, offset: int, p: float, out: torch.Tensor | None = None, activation: str | None = None
) -> torch.Tensor:
    """Spec dropout of activation(x) for contiguous x, into `out` (may be x itself) or a new tensor.

    activation: None, "relu" or "gelu", applied in the compute type (float32 for half types).
    """
    n = x.numel()
    f64 = _DIRECT.get(x.dtype)
    act = ACTIVATION_CODES[activation]
    if n < PARALLEL_MIN and f64 is not None:
        y = torch.empty_like(x) if out is None else out
        _dropout_direct(
            x.data_ptr(),
            y.data_ptr(),
            n,
            f64,
            rng.to_int64(seed),
            rng.to_int64(offset),
            rng.threshold(p),
            act,
            rng.scale(p),
        )
        return y
    t = np.uint64(rng.threshold(p))
    return _apply(_DROPOUT, x, out, _NO_BITS, np.uint64(seed), np.uint64(offset), t, act, rng.scale(p))


def dropout_fwd_packed(x: torch.Tensor, seed: int, offset: int, p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """dropout_fwd that also returns the keep mask packed 1 bit per element (uint8)."""
    bits = torch.empty((x.numel() + 7) // 8, dtype=torch.uint8)
    y = _apply(
        _DROPOUT,
        x,
        None,
        as_numpy(bits),
        np.uint64(seed),
        np.uint64(offset),
        np.uint64(rng.threshold(p)),
        0,
        rng.scale(p),
    )
    return y, bits


def dropout_bwd_packed(grad: torch.Tensor, bits: torch.Tensor, p: float) -> torch.Tensor:
    """grad * scale where the packed keep bit is set, else 0 (grad contiguous)."""
    return _apply(_UNPACK, grad, None, as_numpy(bits), rng.scale(p))


def relu_dropout_bwd(grad: torch.Tensor, y: torch.Tensor, p: float) -> torch.Tensor:
    """Gradient of dropout(relu(x)) from its output y: grad * scale where y > 0, else 0 (both contiguous).

    y > 0 exactly where the element was kept and x > 0, so no random number is drawn.
    """
    return _apply(_SIGN, grad, None, as_numpy(y.float() if y.dtype in HALF else y), rng.scale(p))


def random_bits(n: int, seed: int, offset: int, device: torch.device | str | None = None) -> torch.Tensor:
    """The spec's random words for stream indices offset .. offset+n-1, as int64."""
    out = np.empty(n, dtype=np.uint32)
    launch(_bits_chunks, _bits_parallel, n, out, np.uint64(seed), np.uint64(offset))
    return torch.from_numpy(out.astype(np.int64))
