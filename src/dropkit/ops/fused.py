"""Custom ops for activation + dropout, fused: dropkit::activation_dropout and dropkit::bias_dropout_add.

activation_dropout: dropout(activation(x)) with the spec's mask over x's
elements, so the same elements are kept as by dropout(activation(x), p,
seed=seed, offset=offset). Forward is one pass over memory. Backward for relu
draws no random numbers: y = dropout(relu(x)) is > 0 exactly where the element
was kept and x > 0, so dx = grad * scale where y > 0 (y is what torch's relu
keeps for backward anyway). Backward for gelu recomputes the mask and keeps x,
as gelu does.

bias_dropout_add: out = residual + dropout(activation(x + bias)), one kernel
pass forward and one backward. Backward recomputes the mask from (seed,
offset). What it keeps for backward: the seed (a scalar); with relu or gelu
also x and bias themselves (references to the inputs, no new memory), to
recompute h = x + bias. With no activation nothing of x's size is kept.

Examples:
    >>> torch.ops.dropkit.activation_dropout(torch.tensor([1.0, -1.0, 1.0, 1.0]), torch.tensor(7), 0, 0.5, "relu")
    tensor([2., 0., 0., 0.])
    >>> x, r = torch.ones(2, 4), torch.zeros(2, 4)
    >>> torch.ops.dropkit.bias_dropout_add(x, torch.ones(4), r, torch.tensor(7), 0, 0.5, "relu")
    tensor([[4., 4., 0., 0.],
            [0., 4., 0., 4.]])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import torch
from torch import Tensor

from .. import kernels, rng
from . import compiled
from .dropout import Backward, SetupContext, eager_function, register_formula
from .layout import like
from .seed import seed_tensor, stream

__all__ = [
    "apply_bias_dropout_add",
    "bias_dropout_add",
    "bias_dropout_add_backward",
    "apply_activation_dropout",
    "activation_dropout",
    "relu_dropout_backward",
    "forward_impl",
    "backward_impl",
    "activation_forward_impl",
    "relu_backward_impl",
]


def _contiguous(t: Tensor | None) -> Tensor | None:
    return None if t is None else t.contiguous()


def forward_impl(
    x: Tensor, bias: Tensor | None, residual: Tensor, seed: int, offset: int, p: float, activation: str | None
) -> Tensor:
    """residual + dropout(activation(x + bias)) (seed and offset as uint64); the output keeps x's memory format."""
    k = kernels.fused_for_tensor(x)
    y = k.bias_dropout_add_fwd(x.contiguous(), _contiguous(bias), residual.contiguous(), seed, offset, p, activation)
    return like(x, y)


def backward_impl(
    grad: Tensor, x: Tensor | None, bias: Tensor | None, seed: int, offset: int, p: float, activation: str | None
) -> Tensor:
    """Gradient with respect to x + bias: activation'(x + bias) * dropout(grad), the mask recomputed."""
    k = kernels.fused_for_tensor(grad)
    g = k.bias_dropout_add_bwd(grad.contiguous(), _contiguous(x), _contiguous(bias), seed, offset, p, activation)
    return like(grad, g)


def _grads(ctx: Any, grad: Tensor, grad_h: Tensor) -> tuple[Tensor | None, ...]:
    """Gradients of all seven op inputs from the gradient of x + bias; bias sums over the leading dims."""
    needs_bias = ctx.bias_size is not None and ctx.needs_input_grad[1]
    grad_bias = grad_h.reshape(-1, ctx.bias_size).sum(0) if needs_bias else None
    return grad_h, grad_bias, grad, None, None, None, None


@torch.library.custom_op("dropkit::bias_dropout_add", mutates_args=())
def bias_dropout_add(
    x: Tensor, bias: Tensor | None, residual: Tensor, seed: Tensor, offset: int, p: float, activation: str | None
) -> Tensor:
    """residual + dropout(activation(x + bias)); the output keeps x's memory format."""
    return forward_impl(x, bias, residual, *stream(seed, offset), p, activation)


@bias_dropout_add.register_fake
def _(
    x: Tensor, bias: Tensor | None, residual: Tensor, seed: Tensor, offset: int, p: float, activation: str | None
) -> Tensor:
    return torch.empty_like(x)


@torch.library.custom_op("dropkit::bias_dropout_add_backward", mutates_args=())
def bias_dropout_add_backward(
    grad: Tensor,
    x: Tensor | None,
    bias: Tensor | None,
    seed: Tensor,
    offset: int,
    p: float,
    activation: str | None,
) -> Tensor:
    """Gradient of dropkit::bias_dropout_add with respect to x + bias."""
    return backward_impl(grad, x, bias, *stream(seed, offset), p, activation)


@bias_dropout_add_backward.register_fake
def _(
    grad: Tensor, x: Tensor | None, bias: Tensor | None, seed: Tensor, offset: int, p: float, activation: str | None
) -> Tensor:
    return torch.empty_like(grad)


def _formula(grad_of_h: Callable[..., Tensor]) -> tuple[SetupContext, Backward]:
    """dropkit::bias_dropout_add's autograd (setup_context, backward); grad_of_h computes the gradient of x + bias."""

    def setup(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
        x, bias, _, seed, offset, p, activation = inputs
        needs_h = activation is not None
        ctx.save_for_backward(x if needs_h else None, bias if needs_h else None)
        ctx.bias_size = None if bias is None else bias.shape[0]
        ctx.args = (seed, offset, p, activation)  # a scalar seed: the mask is recomputed

    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, bias = ctx.saved_tensors
        return _grads(ctx, grad, grad_of_h(grad, x, bias, *ctx.args))

    return setup, backward


register_formula(bias_dropout_add, _formula, bias_dropout_add_backward)
# No double backward: raise, never return zeros.
_BiasDropoutAdd = eager_function("_BiasDropoutAdd", forward_impl, _formula, backward_impl, once=True)


def apply_bias_dropout_add(
    x: Tensor, bias: Tensor | None, residual: Tensor, p: float, seed: int | Tensor, offset: int, activation: str | None
) -> Tensor:
    """Run the fused op on validated arguments and a resolved seed (dropkit.family._common.resolve_seed).

    As apply_dropout: compiled code goes through the custom ops, eager code
    reaches the same *_impl functions and formula through an autograd.Function.
    """
    # gelu keeps the op: Inductor's erf is not the kernels', and the fused op promises eager's values
    if activation != "gelu" and compiled.active(rng.to_int64(offset)):
        return compiled.bias_dropout_add(x, bias, residual, seed_tensor(seed), rng.to_int64(offset), p, activation)
    if torch.compiler.is_compiling():
        # a custom op's call is untyped; its schema returns a Tensor
        return cast(Tensor, bias_dropout_add(x, bias, residual, seed_tensor(seed), rng.to_int64(offset), p, activation))
    seed = cast(int, seed)  # eager calls get an int seed (resolve_seed); only compiled code passes a tensor
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, bias, residual)):
        return _BiasDropoutAdd.apply(x, bias, residual, seed, offset, p, activation)
    return forward_impl(x, bias, residual, seed, offset, p, activation)


def activation_forward_impl(x: Tensor, seed: int, offset: int, p: float, activation: str) -> Tensor:
    """dropout(activation(x)) (seed and offset as uint64); the output keeps x's memory format."""
    return like(x, kernels.for_tensor(x).dropout_fwd(x.contiguous(), seed, offset, p, activation=activation))


def relu_backward_impl(grad: Tensor, y: Tensor, p: float) -> Tensor:
    """Gradient of dropout(relu(x)) from its output y: grad * scale where y > 0, else 0."""
    return like(grad, kernels.for_tensor(grad).relu_dropout_bwd(grad.contiguous(), y.contiguous(), p))


@torch.library.custom_op("dropkit::activation_dropout", mutates_args=())
def activation_dropout(x: Tensor, seed: Tensor, offset: int, p: float, activation: str) -> Tensor:
    """dropout(activation(x)), activation "relu" or "gelu"; the output keeps x's memory format."""
    return activation_forward_impl(x, *stream(seed, offset), p, activation)


@activation_dropout.register_fake
def _(x: Tensor, seed: Tensor, offset: int, p: float, activation: str) -> Tensor:
    return torch.empty_like(x)


@torch.library.custom_op("dropkit::relu_dropout_backward", mutates_args=())
def relu_dropout_backward(grad: Tensor, y: Tensor, p: float) -> Tensor:
    """Gradient of dropkit::activation_dropout(x, ..., "relu") from its output y."""
    return relu_backward_impl(grad, y, p)


@relu_dropout_backward.register_fake
def _(grad: Tensor, y: Tensor, p: float) -> Tensor:
    return torch.empty_like(grad)


def _activation_formula(
    again: tuple[Callable[..., Tensor], Callable[..., Tensor]],
) -> tuple[SetupContext, Backward]:
    """dropkit::activation_dropout's autograd; again = (relu gradient from y, gradient of x + bias of the fused op)."""
    relu_grad, gelu_grad = again

    def setup(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
        x, seed, offset, p, activation = inputs
        ctx.save_for_backward(output if activation == "relu" else x)
        ctx.args = (seed, offset, p, activation)

    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        (saved,) = ctx.saved_tensors
        seed, offset, p, activation = ctx.args
        if activation == "relu":
            dx = relu_grad(grad, saved, p)
        else:
            dx = gelu_grad(grad, saved, None, seed, offset, p, activation)
        return dx, None, None, None, None

    return setup, backward


register_formula(activation_dropout, _activation_formula, (relu_dropout_backward, bias_dropout_add_backward))
# No double backward (the relu formula's derivative in y is not defined by it): raise, never return zeros.
_ActivationDropout = eager_function(
    "_ActivationDropout", activation_forward_impl, _activation_formula, (relu_backward_impl, backward_impl), once=True
)


def apply_activation_dropout(x: Tensor, p: float, seed: int | Tensor, offset: int, activation: str) -> Tensor:
    """Run the op on validated arguments (0 < p) and a resolved seed (dropkit.family._common.resolve_seed).

    As apply_dropout: compiled code goes through the custom ops, eager code
    reaches the same *_impl functions and formula through an autograd.Function.
    """
    if compiled.active(rng.to_int64(offset)):
        return compiled.activation_dropout(x, seed_tensor(seed), rng.to_int64(offset), p, activation)
    if torch.compiler.is_compiling():
        # a custom op's call is untyped; its schema returns a Tensor
        return cast(Tensor, activation_dropout(x, seed_tensor(seed), rng.to_int64(offset), p, activation))
    seed = cast(int, seed)  # eager calls get an int seed (resolve_seed); only compiled code passes a tensor
    if torch.is_grad_enabled() and x.requires_grad:
        return _ActivationDropout.apply(x, seed, offset, p, activation)
    return activation_forward_impl(x, seed, offset, p, activation)
