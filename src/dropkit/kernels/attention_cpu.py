"""Attention with spec dropout, blocked over query rows: the L_q x L_k matrix never exists at once.

Forward keeps the row log-sum-exp; backward recomputes scores, probabilities and
the dropout mask block by block from (seed, offset), as FlashAttention-2 does
(Dao 2023), so nothing of size L_q x L_k is saved. Matmuls are torch's; the
mask of a block is applied in place by a numba kernel under the "cpu" backend
and by the plain-torch spec (kernels.torch) otherwise.

Element (b, i, j) of the probability tensor, b the flattened batch index, has
stream index offset + (b * L_q + i) * L_k + j: a block of rows [i0, i1) of b
is the contiguous run that starts at offset + (b * L_q + i0) * L_k.
"""

from __future__ import annotations

from typing import cast

import numba as nb
import numpy as np
import torch
from torch import Tensor

from .. import rng
from . import backend_name
from . import torch as torch_backend
from .cpu_common import CHUNK, JIT, S32, U32, chunk_bits, keep_apply, pool_threads

__all__ = ["supports", "attention_fwd", "attention_bwd", "drop_runs", "BLOCK_ELEMENTS"]

# Elements of one block of scores (4 MiB of float32): large enough for the
# matmuls to run at full speed, small enough to stay in the last-level cache.
BLOCK_ELEMENTS = 2**20


@nb.njit(**JIT)
def _drop_runs_range(
    y: np.ndarray,
    seed: np.uint64,
    offset: np.uint64,
    run_stride: np.uint64,
    start: np.uint64,
    t: np.uint64,
    scale: np.floating,
    r0: int,
    r1: int,
) -> None:
    """Runs r0 .. r1-1 of y (runs, m): y[r] *= scale where kept, run r at stream offset + r * run_stride + start."""
    k0 = seed & U32
    k1 = seed >> S32
    drop_all = t > U32
    t32 = np.uint32(t & U32)
    m = y.shape[1]
    buf = np.empty(CHUNK + 8, dtype=np.uint32)
    for r in range(r0, r1):
        base = offset + np.uint64(r) * run_stride + start
        row = y[r]
        for c0 in range(0, m, CHUNK):
            c1 = min(c0 + CHUNK, m)
            s = chunk_bits(buf, base, c0, c1, k0, k1)
            keep_apply(row[c0:c1], row[c0:c1], buf[s : s + c1 - c0], t32, drop_all, 0, scale)


@nb.njit(parallel=True, **JIT)
def _drop_runs_parallel(
    y: np.ndarray,
    seed: np.uint64,
    offset: np.uint64,
    run_stride: np.uint64,
    start: np.uint64,
    t: np.uint64,
    scale: np.floating,
    nthreads: int,
) -> None:
    runs = y.shape[0]
    for tid in nb.prange(nthreads):
        _drop_runs_range(
            y, seed, offset, run_stride, start, t, scale, tid * runs // nthreads, (tid + 1) * runs // nthreads
        )


def _drop_runs_torch(y: Tensor, seed: int, offset: int, run_stride: int, start: int, p: float) -> None:
    runs, m = y.shape
    g = torch.arange(runs, dtype=torch.int64, device=y.device).view(-1, 1) * run_stride
    g = g + torch.arange(m, dtype=torch.int64, device=y.device) + rng.to_int64((offset + start) % 2**64)
    keep = torch_backend.random_bits_at(g.view(-1), seed) >= rng.threshold(p)
    y.mul_(torch.where(keep.view(runs, m), rng.scale(p), 0.0).to(y.dtype))


def drop_runs(y: Tensor, seed: int, offset: int, run_stride: int, start: int, p: float) -> None:
    """Spec dropout of y (runs, m), contiguous, in place; run r starts at stream index offset + r * run_stride + start."""
    if not y.is_cpu or backend_name(y) != "cpu":
        return _drop_runs_torch(y, seed, offset, run_stride, start, p)
    yn = y.detach().numpy()
    args = (
        yn,
        np.uint64(seed),
        np.uint64(offset),
        np.uint64(run_stride % 2**64),
        np.uint64(start),
        np.uint64(rng.threshold(p)),
        yn.dtype.type(rng.scale(p)),
    )
    threads = pool_threads(y.numel(), y.shape[0])
    if threads <= 1:
        _drop_runs_range(*args, 0, y.shape[0])
    else:
        _drop_runs_parallel(*args, threads)


def _compute(t: Tensor) -> Tensor:
    return t if t.dtype == torch.float64 else t.float()


def _block_rows(batch: int, lq: int, lk: int) -> int:
    return max(1, min(lq, BLOCK_ELEMENTS // max(1, batch * lk)))


def _scores(q: Tensor, kt: Tensor, mask: Tensor | None, is_causal: bool, scale: float, i0: int, i1: int) -> Tensor:
    """Scaled, masked scores of query rows [i0, i1): (*batch, i1 - i0, L_k) in the compute type."""
    s = torch.matmul(q[..., i0:i1, :], kt).mul_(scale)
    if is_causal:
        allowed = torch.ones(i1 - i0, s.shape[-1], dtype=torch.bool, device=s.device).tril_(i0)
        s.masked_fill_(~allowed, float("-inf"))
    elif mask is not None and mask.dtype == torch.bool:
        s.masked_fill_(~mask[..., i0:i1, :], float("-inf"))
    elif mask is not None:
        s.add_(mask[..., i0:i1, :])
    return s


def _probs(s: Tensor, lse: Tensor) -> Tensor:
    """exp(s - lse), 0 on rows with no allowed key (lse = -inf), as torch's SDPA gives there."""
    return torch.exp(s - torch.where(torch.isinf(lse), 0.0, lse).unsqueeze(-1))


def _mask_in(mask: Tensor | None, dtype: torch.dtype) -> Tensor | None:
    """An additive mask in the compute type; a bool mask as it is."""
    return mask if mask is None or mask.dtype == torch.bool else mask.to(dtype)


def _drop_block(pb: Tensor, seed: int, offset: int, lq: int, i0: int, p: float) -> None:
    lk = pb.shape[-1]
    drop_runs(pb.view(-1, pb.shape[-2] * lk), seed, offset, lq * lk, i0 * lk, p)


def supports(q: Tensor, mask: Tensor | None, mask_grad: bool) -> bool:
    """The blocked kernels take every call: any device, dtype and mask."""
    return True


def attention_fwd(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None,
    seed: int,
    offset: int,
    p: float,
    is_causal: bool,
    scale: float,
) -> tuple[Tensor, Tensor]:
    """softmax(q k^T * scale + mask) with spec dropout, times v; returns (out in q's dtype, row log-sum-exp).

    q (*B, L_q, E), k (*B, L_k, E), v (*B, L_k, E_v) share the batch dims *B; mask is None
    or bool/float of shape (*B, L_q, L_k) (a broadcast view is fine). Half types compute in float32.
    """
    qc, kc, vc = _compute(q), _compute(k), _compute(v)
    batch, lq, lk = q.shape[:-2].numel(), q.shape[-2], k.shape[-2]
    kt = kc.transpose(-2, -1)
    out = torch.empty(*q.shape[:-1], v.shape[-1], dtype=qc.dtype, device=q.device)
    lse = torch.empty(q.shape[:-1], dtype=qc.dtype, device=q.device)
    mask = _mask_in(mask, qc.dtype)
    rows = _block_rows(batch, lq, lk)
    for i0 in range(0, lq, rows):
        i1 = min(i0 + rows, lq)
        s = _scores(qc, kt, mask, is_causal, scale, i0, i1)
        lse_b = torch.logsumexp(s, -1)
        pb = _probs(s, lse_b).contiguous()
        _drop_block(pb, seed, offset, lq, i0, p)
        out[..., i0:i1, :] = torch.matmul(pb, vc)
        lse[..., i0:i1] = lse_b
    return out.to(q.dtype), lse


def attention_bwd(
    grad: Tensor,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    out: Tensor,
    lse: Tensor,
    mask: Tensor | None,
    seed: int,
    offset: int,
    p: float,
    is_causal: bool,
    scale: float,
    mask_grad: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """Gradients (dq, dk, dv, dmask) of attention_fwd, the mask regenerated from (seed, offset).

    dmask (the additive mask's gradient, of shape (*B, L_q, L_k)) only when mask_grad,
    else None. Uses rowsum(dP * P) = rowsum(dO * O) (FlashAttention-2), so the
    dropped probabilities are never needed whole.
    """
    qc, kc, vc, gc = _compute(q), _compute(k), _compute(v), _compute(grad)
    batch, lq, lk = q.shape[:-2].numel(), q.shape[-2], k.shape[-2]
    kt, vt = kc.transpose(-2, -1), vc.transpose(-2, -1)
    mask = _mask_in(mask, qc.dtype)
    delta = (gc * _compute(out)).sum(-1, keepdim=True)
    dq = torch.empty_like(qc)
    dk = torch.zeros_like(kc)
    dv = torch.zeros_like(vc)
    dmask = torch.empty(*q.shape[:-1], lk, dtype=qc.dtype, device=q.device) if mask_grad else None
    rows = _block_rows(batch, lq, lk)
    for i0 in range(0, lq, rows):
        i1 = min(i0 + rows, lq)
        pb = _probs(_scores(qc, kt, mask, is_causal, scale, i0, i1), lse[..., i0:i1]).contiguous()
        pd = pb.clone()
        _drop_block(pd, seed, offset, lq, i0, p)
        g = gc[..., i0:i1, :]
        dv += torch.matmul(pd.transpose(-2, -1), g)
        dp = torch.matmul(g, vt).contiguous()
        _drop_block(dp, seed, offset, lq, i0, p)
        ds = pb.mul_(dp.sub_(delta[..., i0:i1, :]))
        if dmask is not None:
            dmask[..., i0:i1, :] = ds
        dq[..., i0:i1, :] = torch.matmul(ds, kc).mul_(scale)
        dk += torch.matmul(ds.transpose(-2, -1), qc[..., i0:i1, :]).mul_(scale)
    # dmask exists only when mask_grad, which needs a float mask
    return dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype), None if dmask is None else dmask.to(cast(Tensor, mask).dtype)
