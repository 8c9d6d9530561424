"""The mask spec in plain torch ops: runs on any device, slower, same bits.

Philox works on int64 tensors holding 32-bit words; a 32x32-bit product wraps
in int64 but its low 64 bits, which are all Philox needs, stay exact.
"""

from __future__ import annotations

from typing import cast

import torch

from .. import rng

__all__ = [
    "dropout_fwd",
    "dropout_fwd_packed",
    "dropout_bwd_packed",
    "relu_dropout_bwd",
    "random_bits",
    "random_bits_at",
    "bias_dropout_add_fwd",
    "bias_dropout_add_bwd",
]

_U32 = 0xFFFFFFFF
_BIT_WEIGHTS = [1 << b for b in range(8)]


def random_bits(n: int, seed: int, offset: int, device: torch.device | str | None = None) -> torch.Tensor:
    """The spec's random words for stream indices offset .. offset+n-1, as int64."""
    return random_bits_at(torch.arange(n, dtype=torch.int64, device=device) + rng.to_int64(offset), seed)


def random_bits_at(g: torch.Tensor, seed: int) -> torch.Tensor:
    """The spec's random words at the stream indices g (1-D int64 holding uint64 bits)."""
    b = (g >> 2) & ((1 << 62) - 1)  # a logical shift of the uint64 g
    c0, c1 = b & _U32, (b >> 32) & _U32
    c2 = torch.zeros_like(c0)
    c3 = torch.zeros_like(c0)
    k0, k1 = seed & _U32, seed >> 32
    for _ in range(rng.ROUNDS):
        p0 = c0 * rng.M0
        p1 = c2 * rng.M1
        c0, c1, c2, c3 = ((p1 >> 32) & _U32) ^ c1 ^ k0, p1 & _U32, ((p0 >> 32) & _U32) ^ c3 ^ k1, p0 & _U32
        k0, k1 = (k0 + rng.W0) & _U32, (k1 + rng.W1) & _U32
    return torch.stack((c0, c1, c2, c3)).gather(0, (g & 3).view(1, -1)).view(-1)


def _keep(n: int, seed: int, offset: int, p: float, device: torch.device) -> torch.Tensor:
    return random_bits(n, seed, offset, device) >= rng.threshold(p)


def _scaled(x: torch.Tensor, keep: torch.Tensor, p: float) -> torch.Tensor:
    # Half types: round(float32(x) * float32(scale)); others in their own dtype.
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    s = torch.tensor(rng.scale(p), dtype=dtype, device=x.device)
    y = torch.where(keep.view(x.shape), x.to(dtype) * s, torch.zeros((), dtype=dtype, device=x.device))
    return y.to(x.dtype)


def dropout_fwd(
    x: torch.Tensor, seed: int, offset: int, p: float, out: torch.Tensor | None = None, activation: str | None = None
) -> torch.Tensor:
    """Spec dropout of activation(x) for contiguous x, into `out` (may be x itself) or a new tensor.

    activation: None, "relu" or "gelu", applied in the compute type (float32 for half types).
    """
    a = x if activation is None else _activation(_compute(x), activation)
    y = _scaled(a, _keep(x.numel(), seed, offset, p, x.device), p).to(x.dtype)
    return y if out is None else out.copy_(y)


def relu_dropout_bwd(grad: torch.Tensor, y: torch.Tensor, p: float) -> torch.Tensor:
    """Gradient of dropout(relu(x)) from its output y: grad * scale where y > 0, else 0 (no random numbers)."""
    return _scaled(grad, y > 0, p)


def _pack(keep: torch.Tensor) -> torch.Tensor:
    padded = torch.nn.functional.pad(keep.to(torch.uint8), (0, -keep.numel() % 8))
    weights = torch.tensor(_BIT_WEIGHTS, dtype=torch.uint8, device=keep.device)
    return (padded.view(-1, 8) * weights).sum(1, dtype=torch.uint8)


def dropout_fwd_packed(x: torch.Tensor, seed: int, offset: int, p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """dropout_fwd that also returns the keep mask packed 1 bit per element (uint8)."""
    keep = _keep(x.numel(), seed, offset, p, x.device)
    return _scaled(x, keep, p), _pack(keep)


def dropout_bwd_packed(grad: torch.Tensor, bits: torch.Tensor, p: float) -> torch.Tensor:
    """grad * scale where the packed keep bit is set, else 0 (grad contiguous)."""
    weights = torch.tensor(_BIT_WEIGHTS, dtype=torch.uint8, device=bits.device)
    keep = (bits.view(-1, 1) & weights).ne(0).view(-1)[: grad.numel()]
    return _scaled(grad, keep, p)


def _compute(t: torch.Tensor) -> torch.Tensor:
    """t in the compute type: float32 for half types, else its own."""
    return t if t.dtype == torch.float64 else t.float()


def _activation(h: torch.Tensor, activation: str | None) -> torch.Tensor:
    """relu(h) = 0 where h < 0 (NaN and -0.0 pass through); gelu(h) = h/2 * (1 + erf(h / sqrt 2))."""
    if activation == "relu":
        return torch.where(h < 0, torch.zeros((), dtype=h.dtype, device=h.device), h)
    if activation == "gelu":
        # torch.special.erf is untyped (made by torch._C._add_docstr); it returns a Tensor
        return cast(torch.Tensor, (h * 0.5) * (1.0 + torch.special.erf(h * 0.7071067811865476)))
    return h


def _activation_grad(d: torch.Tensor, h: torch.Tensor, activation: str | None) -> torch.Tensor:
    """d * activation'(h), as torch writes the relu and exact-gelu backward."""
    if activation == "relu":
        return torch.where(h > 0, d, torch.zeros((), dtype=d.dtype, device=d.device))
    if activation == "gelu":
        cdf: torch.Tensor = 0.5 * (1.0 + torch.special.erf(h * 0.7071067811865476))  # erf is untyped in torch
        pdf = torch.exp(-0.5 * h * h) * 0.3989422804014327
        return d * (cdf + h * pdf)
    return d


def _pre_activation(x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    h = _compute(x)
    return h if bias is None else h + _compute(bias)


def _dropped(v: torch.Tensor, seed: int, offset: int, p: float) -> torch.Tensor:
    return _scaled(v, _keep(v.numel(), seed, offset, p, v.device), p) if p > 0.0 else v


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
    a = _dropped(_activation(_pre_activation(x, bias), activation), seed, offset, p)
    return (_compute(residual) + a).to(x.dtype)


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
    g = _compute(grad)
    keep = _keep(g.numel(), seed, offset, p, g.device).view(g.shape) if p > 0.0 else None
    d = g if keep is None else _scaled(g, keep, p)
    if activation is not None:
        assert x is not None, "x is given whenever there is an activation"
        d = _activation_grad(d, _pre_activation(x, bias), activation)
        if keep is not None:  # dropped: 0, also where activation'(h) is not finite (0 * NaN is NaN)
            d = torch.where(keep, d, torch.zeros((), dtype=d.dtype, device=d.device))
    return d.to(grad.dtype)
