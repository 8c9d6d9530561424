"""Apply a small broadcast keep mask on CPU (numba): y = x * scale where kept, exact 0 where dropped, one pass.

The variants whose mask is drawn on a small shape (channel dropout, DropPath,
LockedDropout) keep one draw per (sample, channel), sample or (sample, unit).
A product with a 0-or-scale mask would take one pass too, but inf * 0 is NaN;
this select keeps the spec's exact zeros at the product's speed. x is read as
(A, B, C) with the mask (A, 1, C): C == 1 for channel and path masks (each
mask entry covers a run of B elements), A == 1 for LockedDropout (a row of C
entries repeated B times).

Examples:
    >>> x = torch.tensor([[float("inf"), 1.0], [2.0, 3.0]])
    >>> select_fwd(x, torch.tensor([[False], [True]]), 2.0)
    tensor([[0., 0.],
            [4., 6.]])
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
import torch

from .cpu_common import JIT, pool_threads

__all__ = ["select_fwd", "supports"]

_DTYPES = (torch.float32, torch.float64)


@nb.njit(**JIT)
def _runs(x: np.ndarray, keep: np.ndarray, scale: np.floating, y: np.ndarray, B: int, a0: int, a1: int) -> None:
    """C == 1: mask entry a covers elements a*B .. a*B+B-1; runs a0 .. a1-1."""
    zero = type(scale)(0)
    for a in range(a0, a1):
        # Slices indexed from 0 let LLVM vectorize; x[a * B + j] costs a wraparound check per element.
        xs, ys = x[a * B : (a + 1) * B], y[a * B : (a + 1) * B]
        if keep[a]:
            for j in range(B):
                ys[j] = xs[j] * scale
        else:
            for j in range(B):
                ys[j] = zero


@nb.njit(**JIT)
def _rows(x: np.ndarray, keep: np.ndarray, scale: np.floating, y: np.ndarray, B: int, C: int, r0: int, r1: int) -> None:
    """Rows r0 .. r1-1 of C elements; row r uses mask row r // B."""
    zero = type(scale)(0)
    for r in range(r0, r1):
        xs, ys = x[r * C : (r + 1) * C], y[r * C : (r + 1) * C]
        ks = keep[(r // B) * C : (r // B + 1) * C]
        for c in range(C):
            ys[c] = xs[c] * scale if ks[c] else zero


@nb.njit(parallel=True, **JIT)
def _runs_parallel(x: np.ndarray, keep: np.ndarray, scale: np.floating, y: np.ndarray, B: int, nthreads: int) -> None:
    A = keep.size
    for tid in nb.prange(nthreads):
        _runs(x, keep, scale, y, B, tid * A // nthreads, (tid + 1) * A // nthreads)


@nb.njit(parallel=True, **JIT)
def _rows_parallel(
    x: np.ndarray, keep: np.ndarray, scale: np.floating, y: np.ndarray, B: int, C: int, nthreads: int
) -> None:
    R = x.size // C
    for tid in nb.prange(nthreads):
        _rows(x, keep, scale, y, B, C, tid * R // nthreads, (tid + 1) * R // nthreads)


def _layout(x: torch.Tensor, keep: torch.Tensor) -> tuple[int, int, int] | None:
    """(A, B, C) when contiguous x reads as (A, B, C) with keep as (A, 1, C), else None."""
    if keep.dim() != x.dim():
        return None
    broadcast = [d for d in range(x.dim()) if keep.shape[d] != x.shape[d]]
    if any(keep.shape[d] != 1 for d in broadcast) or (broadcast and broadcast[-1] - broadcast[0] + 1 != len(broadcast)):
        return None  # not one block of broadcast dimensions
    if not broadcast:
        return x.numel(), 1, 1
    first, last = broadcast[0], broadcast[-1] + 1
    return math.prod(x.shape[:first]), math.prod(x.shape[first:last]), math.prod(x.shape[last:])


def supports(x: torch.Tensor, keep: torch.Tensor) -> bool:
    """Whether select_fwd takes this call: a float32/float64 CPU tensor, contiguous, keep in the (A, 1, C) layout."""
    return x.dtype in _DTYPES and x.is_cpu and x.numel() > 0 and x.is_contiguous() and _layout(x, keep) is not None


def select_fwd(x: torch.Tensor, keep: torch.Tensor, scale: float, out: torch.Tensor | None = None) -> torch.Tensor:
    """x * scale where keep (broadcast) holds, else 0, into `out` (may be x) or a new tensor; supports(x, keep) must hold."""
    layout = _layout(x, keep)
    if layout is None:
        raise ValueError(
            f"select_fwd: keep of shape {tuple(keep.shape)} does not broadcast as (A, 1, C) to x of shape {tuple(x.shape)}"
        )
    A, B, C = layout
    xn = x.detach().numpy().reshape(-1)
    # numpy's allocation, as kernels.cpu._apply's: large arrays get transparent huge pages, torch's fault per 4 KiB
    y = torch.from_numpy(np.empty(x.shape, xn.dtype)) if out is None else out
    yn = y.detach().numpy().reshape(-1)
    kn = keep.contiguous().numpy().reshape(-1)
    s = xn.dtype.type(scale)
    n = xn.size
    if C == 1:
        threads = pool_threads(n, A)
        if threads <= 1:
            _runs(xn, kn, s, yn, B, 0, A)
        else:
            _runs_parallel(xn, kn, s, yn, B, threads)
    else:
        threads = pool_threads(n, A * B)
        if threads <= 1:
            _rows(xn, kn, s, yn, B, C, 0, A * B)
        else:
            _rows_parallel(xn, kn, s, yn, B, C, threads)
    return y
