"""Custom ops for dropout followed by a linear layer: dropkit::dropout_linear and its backward.

y = linear(dropout(x), weight, bias) with the spec's mask over x's elements.
The dropped input is never kept: autograd saves x (which the layer before
usually keeps anyway, and which several LoRA adapters of one projection share),
the weight and the seed, and backward rebuilds dropout(x) from (seed, offset)
for the weight gradient, packing its mask to 1 bit per element on the way so
the input gradient dropout(grad @ weight) draws no random numbers again.

Forward is F.linear on exactly the tensor dropout(x) would give, and backward
runs the matmuls torch's linear backward runs (grad @ weight, grad^T @ dropped
input, on the 2-D views), so outputs and gradients equal those of Dropout
followed by Linear for the same seed whenever the two run the same matmul shapes.

Compiled code reaches the dropout through these opaque ops. Hook for the
Inductor-fusable form of the mask (the compiled-path issue): `_compiled` is the
one place the compiled route is chosen; a fusable mask can replace the op
there as long as the saved tensors stay x, weight and the seed.

Examples:
    >>> w = torch.ones(2, 4)
    >>> torch.ops.dropkit.dropout_linear(torch.ones(1, 4), w, None, torch.tensor(7), 0, 0.5)
    tensor([[4., 4.]])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import kernels, rng
from .dropout import Backward, SetupContext, eager_function, register_formula
from .layout import like
from .seed import seed_tensor, stream

__all__ = ["apply_dropout_linear", "backward_impl", "dropout_linear", "dropout_linear_backward", "forward_impl"]


def forward_impl(x: Tensor, weight: Tensor, bias: Tensor | None, seed: int, offset: int, p: float) -> Tensor:
    """F.linear(dropout(x), weight, bias) (seed and offset as uint64); the dropped input is a temporary."""
    dropped = like(x, kernels.for_tensor(x).dropout_fwd(x.contiguous(), seed, offset, p))
    return F.linear(dropped, weight, bias)


def backward_impl(
    grad: Tensor, x: Tensor, weight: Tensor | None, seed: int, offset: int, p: float, need_x: bool, need_w: bool
) -> tuple[Tensor | None, Tensor | None]:
    """(grad of x, grad of weight), each None where not needed; dropout(x) is rebuilt, never saved.

    weight is needed (and saved) only for the gradient of x.
    """
    k = kernels.for_tensor(x)
    g2 = grad.reshape(-1, grad.shape[-1])
    grad_x = grad_w = bits = None
    if need_w:
        if need_x:  # one Philox pass serves both gradients: the mask is packed for dx
            dropped, bits = k.dropout_fwd_packed(x.contiguous(), seed, offset, p)
        else:
            dropped = k.dropout_fwd(x.contiguous(), seed, offset, p)
        # torch's mm backward for linear(input, weight): grad^T @ input, on the 2-D views
        grad_w = g2.t().mm(dropped.view(-1, x.shape[-1]))
    if need_x:
        assert weight is not None, "weight is saved whenever x needs a gradient"
        grad_dropped = g2.mm(weight).view(x.shape)  # torch's mm backward: grad @ weight
        if bits is None:
            grad_x = k.dropout_fwd(grad_dropped, seed, offset, p)
        else:
            grad_x = k.dropout_bwd_packed(grad_dropped, bits, p)
        grad_x = like(x, grad_x)
    return grad_x, grad_w


@torch.library.custom_op("dropkit::dropout_linear", mutates_args=())
def dropout_linear(x: Tensor, weight: Tensor, bias: Tensor | None, seed: Tensor, offset: int, p: float) -> Tensor:
    """F.linear(dropout(x), weight, bias) with the spec's mask over x."""
    return forward_impl(x, weight, bias, *stream(seed, offset), p)


@dropout_linear.register_fake
def _(x: Tensor, weight: Tensor, bias: Tensor | None, seed: Tensor, offset: int, p: float) -> Tensor:
    return x.new_empty((*x.shape[:-1], weight.shape[0]))


@torch.library.custom_op("dropkit::dropout_linear_backward", mutates_args=())
def dropout_linear_backward(
    grad: Tensor, x: Tensor, weight: Tensor | None, seed: Tensor, offset: int, p: float, need_x: bool, need_w: bool
) -> tuple[Tensor, Tensor]:
    """(grad of x, grad of weight) of dropkit::dropout_linear; an empty tensor stands for one not needed."""
    grad_x, grad_w = backward_impl(grad, x, weight, *stream(seed, offset), p, need_x, need_w)
    return (x.new_empty(0) if grad_x is None else grad_x), (x.new_empty(0) if grad_w is None else grad_w)


@dropout_linear_backward.register_fake
def _(
    grad: Tensor, x: Tensor, weight: Tensor | None, seed: Tensor, offset: int, p: float, need_x: bool, need_w: bool
) -> tuple[Tensor, Tensor]:
    grad_w = x.new_empty((grad.shape[-1], x.shape[-1]) if need_w else 0)
    return (torch.empty_like(x) if need_x else x.new_empty(0)), grad_w


def _formula(again: Callable[..., tuple[Tensor | None, Tensor | None]]) -> tuple[SetupContext, Backward]:
    """dropkit::dropout_linear's autograd (setup_context, backward); again(grad, x, weight, seed, offset, p, need_x, need_w)."""

    def setup(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
        x, weight, bias, seed, offset, p = inputs
        # References to the inputs, no dropped copy; weight only for dx, as torch's linear keeps it.
        ctx.save_for_backward(x, weight if ctx.needs_input_grad[0] else None)
        ctx.args = (seed, offset, p)
        ctx.bias_out = None if bias is None else weight.shape[0]

    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        grad_x, grad_w = (None, None)
        if need_x or need_w:
            grad_x, grad_w = again(grad, x, weight, *ctx.args, need_x, need_w)
        # torch's linear backward reduces the bias gradient over the 2-D view's rows too
        grad_b = grad.reshape(-1, ctx.bias_out).sum(0) if ctx.bias_out is not None and need_b else None
        return (grad_x if need_x else None), (grad_w if need_w else None), grad_b, None, None, None

    return setup, backward


register_formula(dropout_linear, _formula, dropout_linear_backward)
# No double backward: raise, never return zeros.
_DropoutLinear = eager_function("_DropoutLinear", forward_impl, _formula, backward_impl, once=True)


def _compiled(x: Tensor, weight: Tensor, bias: Tensor | None, p: float, seed: int | Tensor, offset: int) -> Tensor:
    """The route compiled code takes (the hook for an Inductor-fusable mask: see the module docstring)."""
    # a custom op's call is untyped; its schema returns a Tensor
    return cast(Tensor, dropout_linear(x, weight, bias, seed_tensor(seed), rng.to_int64(offset), p))


def apply_dropout_linear(
    x: Tensor, weight: Tensor, bias: Tensor | None, p: float, seed: int | Tensor, offset: int
) -> Tensor:
    """Run the op on validated arguments (0 < p) and a resolved seed (dropkit.family._common.resolve_seed).

    As apply_dropout: compiled code goes through the custom ops, eager code
    reaches the same *_impl functions and formula through an autograd.Function.
    """
    if torch.compiler.is_compiling():
        return _compiled(x, weight, bias, p, seed, offset)
    seed = cast(int, seed)  # eager calls get an int seed (resolve_seed); only compiled code passes a tensor
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, weight, bias)):
        return _DropoutLinear.apply(x, weight, bias, seed, offset, p)
    return forward_impl(x, weight, bias, seed, offset, p)
