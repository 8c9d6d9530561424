"""dropkit::attention: scaled dot-product attention with spec dropout on the probabilities, and its backward op.

Saved for backward: q, k, v, the output, the row log-sum-exp and the seed (a
scalar); the mask is regenerated from (seed, offset), so nothing of size
L_q x L_k is kept. The fake kernels let torch.compile(fullgraph=True) trace it.

Examples:
    >>> q = torch.randn(1, 2, 3, 4)
    >>> out, lse = torch.ops.dropkit.attention(q, q, q, None, torch.tensor(7), 0, 0.1, False, 0.5)
"""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import Tensor

from .. import kernels
from .seed import stream

__all__ = ["attention", "attention_backward"]


def _compute_dtype(t: Tensor) -> torch.dtype:
    return torch.float64 if t.dtype == torch.float64 else torch.float32


@torch.library.custom_op("dropkit::attention", mutates_args=())
def attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None,
    seed: Tensor,
    offset: int,
    p: float,
    is_causal: bool,
    scale: float,
) -> tuple[Tensor, Tensor]:
    """(output, row log-sum-exp) of softmax(q k^T * scale + mask) with spec dropout, times v."""
    return kernels.attention_for_tensor(q, mask, False).attention_fwd(
        q, k, v, mask, *stream(seed, offset), p, is_causal, scale
    )


@attention.register_fake
def _(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None,
    seed: Tensor,
    offset: int,
    p: float,
    is_causal: bool,
    scale: float,
) -> tuple[Tensor, Tensor]:
    out = q.new_empty(*q.shape[:-1], v.shape[-1])
    return out, q.new_empty(q.shape[:-1], dtype=_compute_dtype(q))


@torch.library.custom_op("dropkit::attention_backward", mutates_args=())
def attention_backward(
    grad: Tensor,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    out: Tensor,
    lse: Tensor,
    mask: Tensor | None,
    seed: Tensor,
    offset: int,
    p: float,
    is_causal: bool,
    scale: float,
    mask_grad: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(dq, dk, dv, dmask) of dropkit::attention; dmask is empty unless mask_grad."""
    dq, dk, dv, dmask = kernels.attention_for_tensor(q, mask, mask_grad).attention_bwd(
        grad, q, k, v, out, lse, mask, *stream(seed, offset), p, is_causal, scale, mask_grad
    )
    return dq, dk, dv, q.new_empty(0) if dmask is None else dmask


@attention_backward.register_fake
def _(
    grad: Tensor,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    out: Tensor,
    lse: Tensor,
    mask: Tensor | None,
    seed: Tensor,
    offset: int,
    p: float,
    is_causal: bool,
    scale: float,
    mask_grad: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    # mask_grad is True only for a float mask (ops.attention's _setup)
    dmask = q.new_empty(*q.shape[:-1], k.shape[-2], dtype=cast(Tensor, mask).dtype) if mask_grad else q.new_empty(0)
    return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v), dmask


def _setup(ctx: Any, inputs: tuple[Any, ...], output: tuple[Tensor, Tensor]) -> None:
    q, k, v, mask, seed, offset, p, is_causal, scale = inputs
    out, lse = output
    ctx.mask_grad = mask is not None and mask.dtype != torch.bool and ctx.needs_input_grad[3]
    ctx.save_for_backward(q, k, v, out, lse, mask, seed)
    ctx.args = (offset, p, is_causal, scale)


def _backward(ctx: Any, grad: Tensor, _grad_lse: Tensor | None) -> tuple[Tensor | None, ...]:
    q, k, v, out, lse, mask, seed = ctx.saved_tensors
    dq, dk, dv, dmask = attention_backward(grad.contiguous(), q, k, v, out, lse, mask, seed, *ctx.args, ctx.mask_grad)
    return dq, dk, dv, dmask if ctx.mask_grad else None, None, None, None, None, None


attention.register_autograd(_backward, setup_context=_setup)
