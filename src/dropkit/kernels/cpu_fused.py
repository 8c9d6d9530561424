"""Fused bias + activation + dropout + residual on CPU (numba): one pass per direction.

Same chunked layout as cpu.py, whose Philox helpers it reuses: per chunk,
Philox fills a buffer of words, then one loop reads x, bias and residual and
writes the output. Half types run the float32 kernel and round once at the end.

Examples:
    >>> x, r = torch.ones(2, 4), torch.zeros(2, 4)
    >>> bias_dropout_add_fwd(x, torch.ones(4), r, seed=7, offset=0, p=0.5, activation="relu")
    tensor([[4., 4., 0., 0.],
            [0., 4., 0., 4.]])
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
import torch

from .. import rng
from ._contract import ACTIVATION_CODES
from .cpu_common import CHUNK, HALF, JIT, S32, U32, apply_activation, as_numpy, chunk_bits, launch

__all__ = ["bias_dropout_add_fwd", "bias_dropout_add_bwd"]


@nb.njit(inline="always", **JIT)
def _activation_grad(d: np.floating, h: np.floating, act: int) -> np.floating:
    """d * activation'(h), as torch writes the relu and exact-gelu backward."""
    T = type(h)
    if act == 1:
        return d if h > T(0) else T(0)
    if act == 2:
        cdf = T(0.5) * (T(1) + T(math.erf(h * T(0.7071067811865476))))
        pdf = T(math.exp(T(-0.5) * h * h)) * T(0.3989422804014327)
        return d * (cdf + h * pdf)  # type: ignore[no-any-return]  # numpy's stubs for Python 3.10 give Any
    return d


@nb.njit(**JIT)
def _fused_chunks(
    a: np.ndarray,
    bias: np.ndarray,
    b: np.ndarray,
    y: np.ndarray,
    forward: bool,
    act: int,
    seed: np.uint64,
    offset: np.uint64,
    t: np.uint64,
    drop: bool,
    scale: np.floating,
    c0: int,
    c1: int,
) -> None:
    """Chunks c0 .. c1-1 of: forward: y = b + dropout(act(a + bias)) with a = x, b = residual;
    backward: y = act'(b + bias) * dropout(a) with a = grad, b = x. An empty bias means no bias.
    """
    n = a.size
    H = bias.size
    k0 = seed & U32
    k1 = seed >> S32
    zero = a.dtype.type(0)
    buf = np.empty(CHUNK + 8, dtype=np.uint32)
    for c in range(c0, c1):
        start = c * CHUNK
        stop = min(start + CHUNK, n)
        s = np.int64(0)
        if drop:
            s = np.int64(chunk_bits(buf, offset, start, stop, k0, k1))
        col = start % H if H else 0
        for i in range(stop - start):
            h = a[start + i] if forward else b[start + i]
            if H:
                h = h + bias[col]
                col = col + 1 if col + 1 < H else 0
            v = apply_activation(h, act) if forward else a[start + i]
            kept = not drop or np.uint64(buf[s + i]) >= t
            if drop:
                v = v * scale if kept else zero
            # a dropped gradient is 0 also where activation'(h) is not finite (0 * NaN is NaN)
            y[start + i] = b[start + i] + v if forward else (_activation_grad(v, h, act) if kept else zero)


@nb.njit(parallel=True, **JIT)
def _fused_parallel(
    a: np.ndarray,
    bias: np.ndarray,
    b: np.ndarray,
    y: np.ndarray,
    forward: bool,
    act: int,
    seed: np.uint64,
    offset: np.uint64,
    t: np.uint64,
    drop: bool,
    scale: np.floating,
    nthreads: int,
) -> None:
    nchunks = (a.size + CHUNK - 1) // CHUNK
    for tid in nb.prange(nthreads):
        _fused_chunks(
            a,
            bias,
            b,
            y,
            forward,
            act,
            seed,
            offset,
            t,
            drop,
            scale,
            tid * nchunks // nthreads,
            (tid + 1) * nchunks // nthreads,
        )


def _compute(t: torch.Tensor | None) -> np.ndarray:
    """A flat numpy view in the compute type: float32 for half types, else the tensor's own."""
    if t is None:
        return np.zeros(0, dtype=np.float32)
    return as_numpy((t.float() if t.dtype in HALF else t).contiguous())


def _run(
    like: torch.Tensor,
    a: torch.Tensor,
    bias: torch.Tensor | None,
    b: torch.Tensor | None,
    forward: bool,
    seed: int,
    offset: int,
    p: float,
    activation: str | None,
) -> torch.Tensor:
    an = _compute(a)
    y = np.empty(like.shape, an.dtype)  # numpy's allocation: see cpu._apply
    launch(
        _fused_chunks,
        _fused_parallel,
        an.size,
        an,
        _compute(bias).astype(an.dtype, copy=False),
        an if b is None else _compute(b),
        y.reshape(-1),
        forward,
        ACTIVATION_CODES[activation],
        np.uint64(seed),
        np.uint64(offset),
        np.uint64(rng.threshold(p)),
        p > 0.0,
        an.dtype.type(rng.scale(p)),
    )
    return torch.from_numpy(y).to(like.dtype)


def bias_dropout_add_fwd(
    x: torch.Tensor,
    bias: torch.Tensor | None,
    residual: torch.Tensor,
    seed: int,
    offset: int,
    p: float,
    activation: str | None = None,
) -> torch.Tensor:
    """residual + dropout(activation(x + bias)) for x and residual of one shape; bias of x's last dim or None.

    Half types compute in float32 and round once at the end; float32 and float64 in their own type.
    """
    return _run(x, x, bias, residual, True, seed, offset, p, activation)


def bias_dropout_add_bwd(
    grad: torch.Tensor,
    x: torch.Tensor | None,
    bias: torch.Tensor | None,
    seed: int,
    offset: int,
    p: float,
    activation: str | None = None,
) -> torch.Tensor:
    """Gradient of bias_dropout_add_fwd with respect to x + bias (the mask recomputed from seed and offset).

    x and bias are read only to recompute h = x + bias for relu and gelu; with no activation they may be None.
    """
    if activation is None:
        x, bias = None, None
    return _run(grad, grad, bias, x, False, seed, offset, p, activation)
