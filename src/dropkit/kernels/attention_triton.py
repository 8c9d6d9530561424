"""Flash attention in Triton (FlashAttention-2, Dao 2023) with the spec's Philox dropout inside the kernels.

Forward: one program per (block of query rows, batch-head) streams over key blocks
with an online softmax and writes the output and the row log-sum-exp. Backward:
one program per key block accumulates dK and dV, one per query block dQ (no
atomics: deterministic); both regenerate the scores, probabilities and the
dropout mask from (seed, offset). Element (b, i, j) of the probabilities has stream
index offset + (b * L_q + i) * L_k + j; each element runs tl.randint4x on its own
block g >> 2 and takes its lane (g & 3). float16, bfloat16 and float32; the matmuls
accumulate in float32. Masks: causal (top-left, as torch), bool or additive.

Example:
    >>> import os; os.environ["TRITON_INTERPRET"] = "1"   # before importing triton
    >>> from dropkit.kernels import attention_triton as K
    >>> q = torch.randn(1, 2, 16, 16)
    >>> out, lse = K.attention_fwd(q, q, q, None, seed=1, offset=0, p=0.1, is_causal=False, scale=0.25)
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl
from torch import Tensor

from .. import rng

__all__ = ["attention_fwd", "attention_bwd", "supports"]

# Tiles: tl.dot needs sides >= 16; the interpreter runs tiny shapes, so it gets the smallest tiles.
_INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
_BLOCK = 16 if _INTERPRET else 64
_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


def supports(q: Tensor, mask: Tensor | None, mask_grad: bool) -> bool:
    """Whether these kernels take the call (float64 and additive-mask gradients go to the blocked kernels)."""
    return q.dtype in _DTYPES and not mask_grad


@triton.jit
def _up(x, UPCAST: tl.constexpr):
    """x in float32 where the interpreter cannot multiply bfloat16 matrices (Triton 3.9), else as loaded."""
    if UPCAST:
        return x.to(tl.float32)
    else:
        return x


@triton.jit
def _keep(seed, offset, bh, m, n, Lq, Lk, t):
    """Keep mask of the [BLOCK_M, BLOCK_N] tile of batch-head bh at rows m, columns n (spec stream order)."""
    lq, lk = Lq.to(tl.uint64), Lk.to(tl.uint64)
    g = offset.to(tl.uint64) + ((bh.to(tl.uint64) * lq + m.to(tl.uint64)[:, None]) * lk + n.to(tl.uint64)[None, :])
    r0, r1, r2, r3 = tl.randint4x(seed.to(tl.uint64), (g >> 2) & 0x3FFFFFFFFFFFFFFF)
    lane = g & 3
    r = tl.where(lane == 0, r0, tl.where(lane == 1, r1, tl.where(lane == 2, r2, r3)))
    return r.to(tl.int64) >= t.to(tl.int64)


@triton.jit
def _scores(
    q,
    k_ptrs,
    mask_ptr,
    bh,
    m,
    n,
    Lq,
    Lk,
    E,
    H1,
    smb,
    smh,
    smm,
    smn,
    scale,
    CAUSAL: tl.constexpr,
    HAS_MASK: tl.constexpr,
    MASK_BOOL: tl.constexpr,
    BLOCK_E: tl.constexpr,
):
    """Scaled, masked scores of the tile (float32); positions outside L_k are -inf."""
    e = tl.arange(0, BLOCK_E)
    k = tl.load(k_ptrs, mask=(n < Lk)[:, None] & (e < E)[None, :], other=0.0).to(q.dtype)
    s = tl.dot(q, tl.trans(k), input_precision="ieee") * scale
    s = tl.where((n < Lk)[None, :], s, float("-inf"))
    if CAUSAL:
        s = tl.where(n[None, :] <= m[:, None], s, float("-inf"))
    if HAS_MASK:
        ptrs = mask_ptr + (bh // H1) * smb + (bh % H1) * smh + m[:, None] * smm + n[None, :] * smn
        inside = (m < Lq)[:, None] & (n < Lk)[None, :]
        if MASK_BOOL:
            allowed = tl.load(ptrs, mask=inside, other=0).to(tl.int1)
            s = tl.where(allowed, s, float("-inf"))
        else:
            s = s + tl.load(ptrs, mask=inside, other=0.0).to(tl.float32)
    return s


@triton.jit
def _attention_fwd_kernel(
    q_ptr,
    k_ptr,
    v_ptr,
    o_ptr,
    lse_ptr,
    mask_ptr,
    Lq,
    Lk,
    E,
    Ev,
    H1,
    smb,
    smh,
    smm,
    smn,
    seed,
    offset,
    t,
    keep_scale,
    scale,
    CAUSAL: tl.constexpr,
    HAS_MASK: tl.constexpr,
    MASK_BOOL: tl.constexpr,
    DROP: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_E: tl.constexpr,
    BLOCK_EV: tl.constexpr,
    UPCAST: tl.constexpr,
):
    bh = tl.program_id(1)
    m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    e, ev = tl.arange(0, BLOCK_E), tl.arange(0, BLOCK_EV)
    base = bh.to(tl.int64)
    q = _tile(q_ptr, base, m, Lq, e, E, UPCAST)
    row_max = tl.full((BLOCK_M,), float("-inf"), tl.float32)
    row_sum = tl.zeros((BLOCK_M,), tl.float32)
    acc = tl.zeros((BLOCK_M, BLOCK_EV), tl.float32)
    for start in range(0, Lk, BLOCK_N):
        n = start + tl.arange(0, BLOCK_N)
        k_ptrs = k_ptr + base * Lk * E + n[:, None] * E + e[None, :]
        s = _scores(
            q,
            k_ptrs,
            mask_ptr,
            bh,
            m,
            n,
            Lq,
            Lk,
            E,
            H1,
            smb,
            smh,
            smm,
            smn,
            scale,
            CAUSAL,
            HAS_MASK,
            MASK_BOOL,
            BLOCK_E,
        )
        new_max = tl.maximum(row_max, tl.max(s, 1))
        safe = tl.where(new_max == float("-inf"), 0.0, new_max)  # rows with no key yet: nothing to rescale
        pr = tl.exp(s - safe[:, None])
        alpha = tl.exp(row_max - safe)
        row_sum = row_sum * alpha + tl.sum(pr, 1)
        if DROP:
            pr = tl.where(_keep(seed, offset, bh, m, n, Lq, Lk, t), pr * keep_scale, 0.0)
        v = _tile(v_ptr, base, n, Lk, ev, Ev, UPCAST)
        acc = acc * alpha[:, None] + tl.dot(pr.to(v.dtype), v, input_precision="ieee")
        row_max = new_max
    out = tl.where((row_sum > 0)[:, None], acc / row_sum[:, None], 0.0)
    lse = tl.where(row_sum > 0, row_max + tl.log(row_sum), float("-inf"))
    _store(o_ptr, out, base, m, Lq, ev, Ev)
    tl.store(lse_ptr + base * Lq + m, lse, mask=m < Lq)


@triton.jit
def _tile(ptr, base, idx, L, cols, D, UPCAST: tl.constexpr):
    """Rows idx, columns cols of the (batch-head base) slice of a contiguous (BH, L, D) tensor; zeros outside."""
    inside = (idx < L)[:, None] & (cols < D)[None, :]
    return _up(tl.load(ptr + base * L * D + idx[:, None] * D + cols[None, :], mask=inside, other=0.0), UPCAST)


@triton.jit
def _store(ptr, value, base, idx, L, cols, D):
    inside = (idx < L)[:, None] & (cols < D)[None, :]
    tl.store(ptr + base * L * D + idx[:, None] * D + cols[None, :], value.to(ptr.dtype.element_ty), mask=inside)


@triton.jit
def _grad_tile(
    q,
    g,
    lse_ptr,
    delta_ptr,
    v,
    k_ptrs,
    mask_ptr,
    bh,
    base,
    m,
    n,
    Lq,
    Lk,
    E,
    H1,
    smb,
    smh,
    smm,
    smn,
    seed,
    offset,
    t,
    keep_scale,
    scale,
    CAUSAL: tl.constexpr,
    HAS_MASK: tl.constexpr,
    MASK_BOOL: tl.constexpr,
    DROP: tl.constexpr,
    BLOCK_E: tl.constexpr,
):
    """(dropped probabilities, dS) of one tile, everything regenerated: FlashAttention-2's backward step."""
    lse = tl.load(lse_ptr + base * Lq + m, mask=m < Lq, other=float("-inf"))
    delta = tl.load(delta_ptr + base * Lq + m, mask=m < Lq, other=0.0)
    s = _scores(
        q, k_ptrs, mask_ptr, bh, m, n, Lq, Lk, E, H1, smb, smh, smm, smn, scale, CAUSAL, HAS_MASK, MASK_BOOL, BLOCK_E
    )
    pr = tl.exp(s - tl.where(lse == float("-inf"), 0.0, lse)[:, None])
    dp = tl.dot(g, tl.trans(v), input_precision="ieee")
    pd = pr
    if DROP:
        keep = _keep(seed, offset, bh, m, n, Lq, Lk, t)
        pd = tl.where(keep, pr * keep_scale, 0.0)
        dp = tl.where(keep, dp * keep_scale, 0.0)
    return pd, pr * (dp - delta[:, None])


@triton.jit
def _attention_bwd_kv_kernel(
    q_ptr,
    k_ptr,
    v_ptr,
    g_ptr,
    lse_ptr,
    delta_ptr,
    dk_ptr,
    dv_ptr,
    mask_ptr,
    Lq,
    Lk,
    E,
    Ev,
    H1,
    smb,
    smh,
    smm,
    smn,
    seed,
    offset,
    t,
    keep_scale,
    scale,
    CAUSAL: tl.constexpr,
    HAS_MASK: tl.constexpr,
    MASK_BOOL: tl.constexpr,
    DROP: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_E: tl.constexpr,
    BLOCK_EV: tl.constexpr,
    UPCAST: tl.constexpr,
):
    bh = tl.program_id(1)
    n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    e, ev = tl.arange(0, BLOCK_E), tl.arange(0, BLOCK_EV)
    base = bh.to(tl.int64)
    k_ptrs = k_ptr + base * Lk * E + n[:, None] * E + e[None, :]
    v = _tile(v_ptr, base, n, Lk, ev, Ev, UPCAST)
    dk = tl.zeros((BLOCK_N, BLOCK_E), tl.float32)
    dv = tl.zeros((BLOCK_N, BLOCK_EV), tl.float32)
    for start in range(0, Lq, BLOCK_M):
        m = start + tl.arange(0, BLOCK_M)
        q = _tile(q_ptr, base, m, Lq, e, E, UPCAST)
        g = _tile(g_ptr, base, m, Lq, ev, Ev, UPCAST)
        pd, ds = _grad_tile(
            q,
            g,
            lse_ptr,
            delta_ptr,
            v,
            k_ptrs,
            mask_ptr,
            bh,
            base,
            m,
            n,
            Lq,
            Lk,
            E,
            H1,
            smb,
            smh,
            smm,
            smn,
            seed,
            offset,
            t,
            keep_scale,
            scale,
            CAUSAL,
            HAS_MASK,
            MASK_BOOL,
            DROP,
            BLOCK_E,
        )
        dv += tl.dot(tl.trans(pd).to(g.dtype), g, input_precision="ieee")
        dk += tl.dot(tl.trans(ds).to(q.dtype), q, input_precision="ieee")
    _store(dk_ptr, dk * scale, base, n, Lk, e, E)
    _store(dv_ptr, dv, base, n, Lk, ev, Ev)


@triton.jit
def _attention_bwd_q_kernel(
    q_ptr,
    k_ptr,
    v_ptr,
    g_ptr,
    lse_ptr,
    delta_ptr,
    dq_ptr,
    mask_ptr,
    Lq,
    Lk,
    E,
    Ev,
    H1,
    smb,
    smh,
    smm,
    smn,
    seed,
    offset,
    t,
    keep_scale,
    scale,
    CAUSAL: tl.constexpr,
    HAS_MASK: tl.constexpr,
    MASK_BOOL: tl.constexpr,
    DROP: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_E: tl.constexpr,
    BLOCK_EV: tl.constexpr,
    UPCAST: tl.constexpr,
):
    bh = tl.program_id(1)
    m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    e, ev = tl.arange(0, BLOCK_E), tl.arange(0, BLOCK_EV)
    base = bh.to(tl.int64)
    q = _tile(q_ptr, base, m, Lq, e, E, UPCAST)
    g = _tile(g_ptr, base, m, Lq, ev, Ev, UPCAST)
    dq = tl.zeros((BLOCK_M, BLOCK_E), tl.float32)
    for start in range(0, Lk, BLOCK_N):
        n = start + tl.arange(0, BLOCK_N)
        k_ptrs = k_ptr + base * Lk * E + n[:, None] * E + e[None, :]
        v = _tile(v_ptr, base, n, Lk, ev, Ev, UPCAST)
        _, ds = _grad_tile(
            q,
            g,
            lse_ptr,
            delta_ptr,
            v,
            k_ptrs,
            mask_ptr,
            bh,
            base,
            m,
            n,
            Lq,
            Lk,
            E,
            H1,
            smb,
            smh,
            smm,
            smn,
            seed,
            offset,
            t,
            keep_scale,
            scale,
            CAUSAL,
            HAS_MASK,
            MASK_BOOL,
            DROP,
            BLOCK_E,
        )
        k = _tile(k_ptr, base, n, Lk, e, E, UPCAST)
        dq += tl.dot(ds.to(k.dtype), k, input_precision="ieee")
    _store(dq_ptr, dq * scale, base, m, Lq, e, E)


def _flat(t: Tensor) -> Tensor:
    return t.reshape(-1, *t.shape[-2:]).contiguous()


def _mask_args(mask: Tensor | None, q: Tensor) -> tuple:
    """The mask as (tensor, H1, stride_b, stride_h, stride_m, stride_n) over two folded batch dims."""
    if mask is None:
        return (q, 1, 0, 0, 0, 0)
    batch = mask.shape[:-2]
    m4 = mask.view(1, 1, *mask.shape[-2:]) if len(batch) == 0 else mask.unsqueeze(0) if len(batch) == 1 else mask
    if m4.dim() > 4:
        m4 = m4.reshape(-1, *m4.shape[-3:])  # copies only where the leading dims cannot fold
    return (m4, m4.shape[1], *m4.stride())


def _common(q, k, v, mask, seed, offset, p, is_causal, scale):
    batch, lq, lk, e, ev = q.shape[:-2].numel(), q.shape[-2], k.shape[-2], q.shape[-1], v.shape[-1]
    drop = p > 0.0
    consts = dict(
        CAUSAL=bool(is_causal), HAS_MASK=mask is not None, MASK_BOOL=mask is not None and mask.dtype == torch.bool,
        DROP=drop, BLOCK_M=_BLOCK, BLOCK_N=_BLOCK,
        BLOCK_E=max(16, triton.next_power_of_2(e)), BLOCK_EV=max(16, triton.next_power_of_2(ev)),
        UPCAST=_INTERPRET and q.dtype == torch.bfloat16,
    )  # fmt: skip
    rand = (rng.to_int64(seed), rng.to_int64(offset), rng.threshold(p), float(rng.scale(p)), float(scale))
    return batch, lq, lk, e, ev, _mask_args(mask, q), rand, consts


def attention_fwd(
    q, k, v, mask, seed: int, offset: int, p: float, is_causal: bool, scale: float
) -> tuple[Tensor, Tensor]:
    """As kernels.attention_cpu.attention_fwd; the log-sum-exp in float32."""
    batch, lq, lk, e, ev, margs, rand, consts = _common(q, k, v, mask, seed, offset, p, is_causal, scale)
    out = torch.empty(*q.shape[:-1], ev, dtype=q.dtype, device=q.device)
    lse = torch.empty(q.shape[:-1], dtype=torch.float32, device=q.device)
    grid = (triton.cdiv(lq, _BLOCK), batch)
    _attention_fwd_kernel[grid](
        _flat(q), _flat(k), _flat(v), out, lse, margs[0], lq, lk, e, ev, *margs[1:], *rand, **consts
    )
    return out, lse


def attention_bwd(
    grad, q, k, v, out, lse, mask, seed: int, offset: int, p: float, is_causal: bool, scale: float, mask_grad: bool
):
    """As kernels.attention_cpu.attention_bwd (without the additive mask's gradient: see `supports`)."""
    batch, lq, lk, e, ev, margs, rand, consts = _common(q, k, v, mask, seed, offset, p, is_causal, scale)
    qf, kf, vf, gf = _flat(q), _flat(k), _flat(v), _flat(grad)
    delta = (gf.float() * _flat(out).float()).sum(-1)
    dq, dk, dv = torch.empty_like(qf), torch.empty_like(kf), torch.empty_like(vf)
    lse = lse.reshape(batch, lq).contiguous()
    _attention_bwd_kv_kernel[(triton.cdiv(lk, _BLOCK), batch)](
        qf, kf, vf, gf, lse, delta, dk, dv, margs[0], lq, lk, e, ev, *margs[1:], *rand, **consts
    )
    _attention_bwd_q_kernel[(triton.cdiv(lq, _BLOCK), batch)](
        qf, kf, vf, gf, lse, delta, dq, margs[0], lq, lk, e, ev, *margs[1:], *rand, **consts
    )
    return dq.view(q.shape), dk.view(k.shape), dv.view(v.shape), None
