"""Triton kernels (GPU; CPU tensors too under TRITON_INTERPRET=1): one pass, masks made on the fly.

Every kernel works on tiles of [BLOCK // 8, 8] elements in logical order. A
row of 8 elements covers two Philox blocks (b = g >> 2) when the stream offset
is a multiple of 4, and three when it is not; `_words` runs Philox once per
block it needs and places the four words of each block on their elements. The
shift (offset & 3) is a compile-time constant, so the placement folds to
register moves. A row of 8 also keeps bf16 loads 16 bytes wide.

Philox is tl.randint4x(seed, b) with b a uint64: since Triton 3.4 (PR 6832) it
runs 32-bit Philox on counter (b mod 2^32, b >> 32, 0, 0), the spec's counter.

Floating-point contraction is switched off (enable_fp_fusion=False): a fused
multiply-add would round once where the spec rounds twice.

Examples:
    >>> import os; os.environ["TRITON_INTERPRET"] = "1"   # before importing triton
    >>> from dropkit.kernels import triton as K
    >>> K.dropout_fwd(torch.ones(6), seed=7, offset=0, p=0.5)
    tensor([2., 2., 0., 0., 0., 2.])
"""

from __future__ import annotations

import numpy as np
import torch
import triton
import triton.language as tl

from .. import rng
from ._contract import ACTIVATION_CODES
from .torch import relu_dropout_bwd

__all__ = [
    "dropout_fwd",
    "dropout_fwd_packed",
    "dropout_bwd_packed",
    "relu_dropout_bwd",
    "random_bits",
    "bias_dropout_add_fwd",
    "bias_dropout_add_bwd",
]

BLOCK = 4096  # elements per program: 256 threads x 16 elements
NUM_WARPS = 8
_ROW = 8  # elements per tile row: two Philox blocks, one 16-byte bf16 vector
_LAUNCH = dict(num_warps=NUM_WARPS, enable_fp_fusion=False)
_UNSPECIALIZED = ["seed", "offset", "t", "scale_bits"]  # runtime values; n and H keep their divisibility hints


# ----------------------------------------------------------------------------- device helpers


@triton.jit
def _tile(BLOCK: tl.constexpr):
    """Row and column indices of this program's [BLOCK // 8, 8] tile, and the elements' int64 indices."""
    rows = tl.arange(0, BLOCK // 8)
    cols = tl.arange(0, 8)
    idx = tl.program_id(0).to(tl.int64) * BLOCK + (rows * 8)[:, None] + cols[None, :]
    return rows, cols, idx


# The interpreter (Triton 3.9) truncates float32 -> bfloat16 casts instead of
# rounding to nearest even; compiled kernels round correctly with one cvt.rn.
_BF16_BY_HAND = tl.constexpr(type(_tile).__name__ == "InterpretedFunction")


@triton.jit
def _to(v, dtype: tl.constexpr):
    """v rounded to nearest even in `dtype` (the output's element type)."""
    if _BF16_BY_HAND and dtype == tl.bfloat16:
        bits = v.to(tl.uint32, bitcast=True)
        r = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
        r = tl.where(v != v, 0x7FC0, r)
        return r.to(tl.uint16).to(tl.bfloat16, bitcast=True)
    else:
        return v.to(dtype)


@triton.jit
def _words(seed, offset, rows, cols, BLOCK: tl.constexpr, SHIFT: tl.constexpr):
    """The spec's 32-bit words r for this program's tile (uint32, [BLOCK // 8, 8]).

    Element i has stream index g = offset + i; with offset = 4q + SHIFT the row
    starting at element 8j reads blocks q + 2j + d for d < 2 (+1 when SHIFT > 0).
    """
    # int -> uint64 keeps the bits (i64) or the value (positive i32); a bitcast would
    # break under the interpreter, which holds ints in [2^31, 2^32) as 4-byte data
    seed = seed.to(tl.uint64)
    quad = (offset.to(tl.uint64) >> 2) + tl.program_id(0).to(tl.uint64) * (BLOCK // 4)
    pos = cols + SHIFT  # stream position inside the row's first block, in words
    words = tl.zeros((BLOCK // 8, 8), dtype=tl.uint32)
    for d in tl.static_range(2 + (SHIFT > 0)):
        # g wraps modulo 2^64, so b = g >> 2 wraps modulo 2^62
        b = (quad + (rows * 2 + d).to(tl.uint64)) & 0x3FFFFFFFFFFFFFFF
        r0, r1, r2, r3 = tl.randint4x(seed, b)
        words = tl.where((pos == 4 * d)[None, :], r0[:, None], words)
        words = tl.where((pos == 4 * d + 1)[None, :], r1[:, None], words)
        words = tl.where((pos == 4 * d + 2)[None, :], r2[:, None], words)
        words = tl.where((pos == 4 * d + 3)[None, :], r3[:, None], words)
    return words


@triton.jit
def _keep(seed, offset, t, rows, cols, BLOCK: tl.constexpr, SHIFT: tl.constexpr):
    """Keep iff r >= t(p); compared in int64 so that t = 2^32 (p = 1) keeps nothing."""
    return _words(seed, offset, rows, cols, BLOCK, SHIFT).to(tl.int64) >= t.to(tl.int64)


@triton.jit
def _scale(scale_bits, F64: tl.constexpr):
    """The spec's scale as the compute type: float64 bits for float64, float32 bits otherwise."""
    if F64:
        return scale_bits.to(tl.int64).to(tl.float64, bitcast=True)
    else:
        return scale_bits.to(tl.int64).to(tl.int32).to(tl.float32, bitcast=True)


@triton.jit
def _apply(v, keep, s):
    """v * s where kept, else 0 (v already in the compute type)."""
    return tl.where(keep, v * s, 0.0)


@triton.jit
def _compute_type(v, F64: tl.constexpr):
    if F64:
        return v.to(tl.float64)
    else:
        return v.to(tl.float32)


# ----------------------------------------------------------------------------- dropout kernels


@triton.jit(do_not_specialize=_UNSPECIALIZED)
def _dropout_fwd_kernel(
    x_ptr,
    y_ptr,
    n,
    seed,
    offset,
    t,
    scale_bits,
    BLOCK: tl.constexpr,
    SHIFT: tl.constexpr,
    F64: tl.constexpr,
    ACT: tl.constexpr,
):
    rows, cols, idx = _tile(BLOCK)
    inside = idx < n
    keep = _keep(seed, offset, t, rows, cols, BLOCK, SHIFT)
    x = tl.load(x_ptr + idx, mask=inside)
    y = _apply(_activation(_compute_type(x, F64), ACT, F64), keep, _scale(scale_bits, F64))
    tl.store(y_ptr + idx, _to(y, y_ptr.dtype.element_ty), mask=inside)


@triton.jit(do_not_specialize=_UNSPECIALIZED)
def _dropout_fwd_packed_kernel(
    x_ptr, y_ptr, bits_ptr, n, seed, offset, t, scale_bits, BLOCK: tl.constexpr, SHIFT: tl.constexpr, F64: tl.constexpr
):
    rows, cols, idx = _tile(BLOCK)
    inside = idx < n
    keep = _keep(seed, offset, t, rows, cols, BLOCK, SHIFT) & inside  # padding bits are 0
    x = tl.load(x_ptr + idx, mask=inside)
    y = _apply(_compute_type(x, F64), keep, _scale(scale_bits, F64))
    tl.store(y_ptr + idx, _to(y, y_ptr.dtype.element_ty), mask=inside)
    byte = tl.sum(keep.to(tl.int32) << cols[None, :], axis=1).to(tl.uint8)
    byte_idx = tl.program_id(0).to(tl.int64) * (BLOCK // 8) + rows
    tl.store(bits_ptr + byte_idx, byte, mask=byte_idx * 8 < n)


@triton.jit(do_not_specialize=["scale_bits"])
def _dropout_bwd_packed_kernel(g_ptr, bits_ptr, y_ptr, n, scale_bits, BLOCK: tl.constexpr, F64: tl.constexpr):
    rows, cols, idx = _tile(BLOCK)
    inside = idx < n
    byte_idx = tl.program_id(0).to(tl.int64) * (BLOCK // 8) + rows
    byte = tl.load(bits_ptr + byte_idx, mask=byte_idx * 8 < n, other=0).to(tl.int32)
    keep = ((byte[:, None] >> cols[None, :]) & 1) != 0
    g = tl.load(g_ptr + idx, mask=inside)
    y = _apply(_compute_type(g, F64), keep, _scale(scale_bits, F64))
    tl.store(y_ptr + idx, _to(y, y_ptr.dtype.element_ty), mask=inside)


@triton.jit(do_not_specialize=["seed", "offset"])
def _random_bits_kernel(out_ptr, n, seed, offset, BLOCK: tl.constexpr, SHIFT: tl.constexpr):
    rows, cols, idx = _tile(BLOCK)
    words = _words(seed, offset, rows, cols, BLOCK, SHIFT)
    tl.store(out_ptr + idx, words.to(tl.int64), mask=idx < n)


# ----------------------------------------------------------------------------- fused bias + activation + dropout + residual


@triton.jit
def _columns(rows, cols, H, BLOCK: tl.constexpr, H_DIV8: tl.constexpr):
    """Index into the bias (the last dimension) of each tile element."""
    base = (tl.program_id(0).to(tl.int64) * BLOCK) % H
    if H_DIV8:
        # a row of 8 never crosses the end of a bias row: one modulo per row
        return ((base + rows * 8) % H)[:, None] + cols[None, :]
    else:
        return (base + (rows * 8)[:, None] + cols[None, :]) % H


@triton.jit
def _pre_activation(
    x_ptr,
    bias_ptr,
    idx,
    inside,
    rows,
    cols,
    H,
    BLOCK: tl.constexpr,
    H_DIV8: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    F64: tl.constexpr,
):
    """h = x + bias in the compute type."""
    h = _compute_type(tl.load(x_ptr + idx, mask=inside), F64)
    if HAS_BIAS:
        col = _columns(rows, cols, H, BLOCK, H_DIV8)
        h = h + _compute_type(tl.load(bias_ptr + col, mask=inside), F64)
    return h


@triton.jit
def _erf(z, F64: tl.constexpr):
    if F64:
        return tl.math.erf(z)
    else:
        return tl.math.erf(z.to(tl.float32))


@triton.jit
def _activation(h, ACT: tl.constexpr, F64: tl.constexpr):
    """relu(h) = 0 where h < 0 (NaN and -0.0 pass through); gelu(h) = h/2 * (1 + erf(h / sqrt 2))."""
    if ACT == 1:
        return tl.where(h < 0, 0.0, h)
    elif ACT == 2:
        return (h * 0.5) * (1.0 + _erf(h * 0.7071067811865476, F64))
    else:
        return h


@triton.jit
def _activation_grad(d, h, ACT: tl.constexpr, F64: tl.constexpr):
    """d * activation'(h), as torch writes the relu and exact-gelu backward."""
    if ACT == 1:
        return tl.where(h > 0, d, 0.0)
    elif ACT == 2:
        cdf = 0.5 * (1.0 + _erf(h * 0.7071067811865476, F64))
        pdf = tl.exp(-0.5 * h * h) * 0.3989422804014327
        return d * (cdf + h * pdf)
    else:
        return d


@triton.jit(do_not_specialize=_UNSPECIALIZED)
def _bias_dropout_add_fwd_kernel(
    x_ptr,
    bias_ptr,
    res_ptr,
    y_ptr,
    n,
    H,
    seed,
    offset,
    t,
    scale_bits,
    BLOCK: tl.constexpr,
    SHIFT: tl.constexpr,
    F64: tl.constexpr,
    ACT: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    H_DIV8: tl.constexpr,
    DROP: tl.constexpr,
):
    rows, cols, idx = _tile(BLOCK)
    inside = idx < n
    h = _pre_activation(x_ptr, bias_ptr, idx, inside, rows, cols, H, BLOCK, H_DIV8, HAS_BIAS, F64)
    a = _activation(h, ACT, F64)
    if DROP:  # p > 0; at p = 0 (eval) the scale is 1 and no words are needed
        a = _apply(a, _keep(seed, offset, t, rows, cols, BLOCK, SHIFT), _scale(scale_bits, F64))
    y = _compute_type(tl.load(res_ptr + idx, mask=inside), F64) + a
    tl.store(y_ptr + idx, _to(y, y_ptr.dtype.element_ty), mask=inside)


@triton.jit(do_not_specialize=_UNSPECIALIZED)
def _bias_dropout_add_bwd_kernel(
    g_ptr,
    x_ptr,
    bias_ptr,
    out_ptr,
    n,
    H,
    seed,
    offset,
    t,
    scale_bits,
    BLOCK: tl.constexpr,
    SHIFT: tl.constexpr,
    F64: tl.constexpr,
    ACT: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    H_DIV8: tl.constexpr,
    DROP: tl.constexpr,
):
    rows, cols, idx = _tile(BLOCK)
    inside = idx < n
    d = _compute_type(tl.load(g_ptr + idx, mask=inside), F64)
    if DROP:
        keep = _keep(seed, offset, t, rows, cols, BLOCK, SHIFT)
        d = _apply(d, keep, _scale(scale_bits, F64))
    if ACT != 0:
        h = _pre_activation(x_ptr, bias_ptr, idx, inside, rows, cols, H, BLOCK, H_DIV8, HAS_BIAS, F64)
        d = _activation_grad(d, h, ACT, F64)
        if DROP:  # dropped: 0, also where activation'(h) is not finite (0 * NaN is NaN)
            d = tl.where(keep, d, 0.0)
    tl.store(out_ptr + idx, _to(d, out_ptr.dtype.element_ty), mask=inside)


# ----------------------------------------------------------------------------- launchers


def _grid(n: int) -> tuple[int]:
    return (triton.cdiv(n, BLOCK),)


def _scale_bits(p: float, dtype: torch.dtype) -> int:
    """Bits of the spec's scale, rounded once from float64 to the compute type."""
    if dtype == torch.float64:
        return int(np.float64(rng.scale(p)).view(np.int64))
    return int(np.float32(rng.scale(p)).view(np.int32))


def _rule(seed: int, offset: int, p: float, dtype: torch.dtype) -> dict:
    """The runtime arguments every masking kernel takes, int64-typed where they hold uint64 bits."""
    return dict(
        seed=rng.to_int64(seed),
        offset=rng.to_int64(offset),
        t=rng.threshold(p),
        scale_bits=_scale_bits(p, dtype),
        SHIFT=offset & 3,
        F64=dtype == torch.float64,
    )


def dropout_fwd(x: torch.Tensor, seed: int, offset: int, p: float, out=None, activation=None) -> torch.Tensor:
    """Spec dropout of activation(x) for contiguous x, into `out` (may be x itself) or a new tensor.

    activation: None, "relu" or "gelu", applied in the compute type (float32 for half types).
    """
    y = torch.empty_like(x) if out is None else out
    if x.numel():
        _dropout_fwd_kernel[_grid(x.numel())](
            x, y, x.numel(), **_rule(seed, offset, p, x.dtype), BLOCK=BLOCK, ACT=ACTIVATION_CODES[activation], **_LAUNCH
        )
    return y


def dropout_fwd_packed(x: torch.Tensor, seed: int, offset: int, p: float):
    """dropout_fwd that also returns the keep mask packed 1 bit per element (uint8)."""
    y = torch.empty_like(x)
    bits = torch.empty((x.numel() + 7) // 8, dtype=torch.uint8, device=x.device)
    if x.numel():
        _dropout_fwd_packed_kernel[_grid(x.numel())](
            x, y, bits, x.numel(), **_rule(seed, offset, p, x.dtype), BLOCK=BLOCK, **_LAUNCH
        )
    return y, bits


def dropout_bwd_packed(grad: torch.Tensor, bits: torch.Tensor, p: float) -> torch.Tensor:
    """grad * scale where the packed keep bit is set, else 0 (grad contiguous)."""
    y = torch.empty_like(grad)
    if grad.numel():
        _dropout_bwd_packed_kernel[_grid(grad.numel())](
            grad,
            bits,
            y,
            grad.numel(),
            _scale_bits(p, grad.dtype),
            BLOCK=BLOCK,
            F64=grad.dtype == torch.float64,
            **_LAUNCH,
        )
    return y


def random_bits(n: int, seed: int, offset: int, device=None) -> torch.Tensor:
    """The spec's random words for stream indices offset .. offset+n-1, as int64."""
    out = torch.empty(n, dtype=torch.int64, device=device)
    if n:
        _random_bits_kernel[_grid(n)](
            out, n, rng.to_int64(seed), rng.to_int64(offset), BLOCK=BLOCK, SHIFT=offset & 3, **_LAUNCH
        )
    return out


def _fused_args(x: torch.Tensor, bias, seed: int, offset: int, p: float, activation) -> dict:
    H = x.shape[-1] if x.dim() else 1
    return dict(
        n=x.numel(),
        H=H,
        **_rule(seed, offset, p, x.dtype),
        BLOCK=BLOCK,
        ACT=ACTIVATION_CODES[activation],
        HAS_BIAS=bias is not None,
        H_DIV8=H % 8 == 0,
        DROP=p > 0.0,
        **_LAUNCH,
    )


def bias_dropout_add_fwd(x, bias, residual, seed: int, offset: int, p: float, activation=None) -> torch.Tensor:
    """residual + dropout(activation(x + bias)) for contiguous x and residual of one shape; bias of x's last dim or None.

    Half types compute in float32 and round once at the end; float32 and float64 in their own type.
    """
    y = torch.empty_like(x)
    if x.numel():
        _bias_dropout_add_fwd_kernel[_grid(x.numel())](
            x, x if bias is None else bias, residual, y, **_fused_args(x, bias, seed, offset, p, activation)
        )
    return y


def bias_dropout_add_bwd(grad, x, bias, seed: int, offset: int, p: float, activation=None) -> torch.Tensor:
    """Gradient of bias_dropout_add_fwd with respect to x + bias (the mask recomputed from seed and offset).

    x and bias are read only to recompute h = x + bias for relu and gelu; with no activation they may be None.
    """
    out = torch.empty_like(grad)
    if grad.numel():
        _bias_dropout_add_bwd_kernel[_grid(grad.numel())](
            grad,
            grad if x is None else x,
            grad if bias is None else bias,
            out,
            **_fused_args(grad, bias, seed, offset, p, activation),
        )
    return out
