"""dropkit::concrete_dropout: the concrete (relaxed Bernoulli) dropout of Gal, Hron and Kendall (2017).

With u uniform in (0, 1) and temperature t, the soft drop weight is
d = sigmoid((logit(p) + logit(u)) / t) and y = x * (1 - d) / (1 - p). u comes
from the spec's stream, u = (r + 0.5) / 2^32, so the op recomputes it in
backward; it saves the seed, p and the input itself (needed for dL/dp), never
a mask. p = 1 gives zeros and zero gradients.

Examples:
    >>> y = concrete_dropout(torch.ones(4), torch.tensor(0.5), torch.tensor(7), 0, 0.1)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .. import kernels
from .layout import like
from .seed import stream

__all__ = ["concrete_dropout", "concrete_dropout_backward"]


def _keep_weight(x: Tensor, p: Tensor, seed: Tensor, offset: int, temperature: float) -> tuple[Tensor, Tensor, Tensor]:
    """(1 - d, d, p) in x's compute dtype, laid out in x's logical order."""
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    bits = kernels.for_tensor(x).random_bits(x.numel(), *stream(seed, offset), x.device)
    u = (bits.to(device=x.device, dtype=torch.float64) + 0.5) * 2.0**-32
    p = p.to(dtype).reshape(())
    z = ((torch.logit(p) + torch.logit(u).to(dtype)) / temperature).view(x.shape)
    return torch.sigmoid(-z), torch.sigmoid(z), p


@torch.library.custom_op("dropkit::concrete_dropout", mutates_args=())
def concrete_dropout(x: Tensor, p: Tensor, seed: Tensor, offset: int, temperature: float) -> Tensor:
    """x * (1 - d) / (1 - p), the soft mask d recomputed from (seed, offset)."""
    keep, _, p = _keep_weight(x, p, seed, offset, temperature)
    scale = torch.where(p < 1, keep / (1 - p), torch.zeros_like(keep))
    # a select, not only a product: a weight of exactly 0 (p = 1) gives 0 also for inf and NaN inputs
    y = torch.where(scale != 0, x.contiguous().to(keep.dtype) * scale, torch.zeros_like(scale))
    return like(x, y.to(x.dtype))


@concrete_dropout.register_fake
def _(x: Tensor, p: Tensor, seed: Tensor, offset: int, temperature: float) -> Tensor:
    return torch.empty_like(x)


@torch.library.custom_op("dropkit::concrete_dropout_backward", mutates_args=())
def concrete_dropout_backward(
    grad: Tensor, x: Tensor, p: Tensor, seed: Tensor, offset: int, temperature: float
) -> tuple[Tensor, Tensor]:
    """(dL/dx, dL/dp) of concrete_dropout."""
    keep, drop, pc = _keep_weight(x, p, seed, offset, temperature)
    inside = (pc > 0) & (pc < 1)
    safe = torch.where(inside, pc, torch.full_like(pc, 0.5))  # keeps the unused branch finite
    scale = torch.where(pc < 1, keep / (1 - safe), torch.zeros_like(keep))
    g = grad.contiguous().to(keep.dtype)
    grad_x = like(grad, (g * scale).to(grad.dtype))
    # d/dp [(1-d)/(1-p)] = (1-d)/(1-p)^2 * (1 - d/(t p))
    dscale = keep / (1 - safe) ** 2 * (1 - drop / (temperature * safe))
    grad_p = torch.where(inside, (g * x.contiguous().to(keep.dtype) * dscale).sum(), torch.zeros_like(pc))
    return grad_x, grad_p.to(p.dtype).reshape(p.shape)


@concrete_dropout_backward.register_fake
def _(grad: Tensor, x: Tensor, p: Tensor, seed: Tensor, offset: int, temperature: float) -> tuple[Tensor, Tensor]:
    return torch.empty_like(grad), torch.empty_like(p)


def _setup(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    x, p, seed, offset, temperature = inputs
    ctx.save_for_backward(x, p, seed)  # x is the input itself, not a copy or a mask
    ctx.offset, ctx.temperature = offset, temperature


def _backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
    x, p, seed = ctx.saved_tensors
    grad_x, grad_p = concrete_dropout_backward(grad, x, p, seed, ctx.offset, ctx.temperature)
    return grad_x, grad_p, None, None, None


concrete_dropout.register_autograd(_backward, setup_context=_setup)
