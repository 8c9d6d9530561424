"""Custom ops for activation + dropout in one pass: dropkit::activation_dropout and its relu backward.

dropout(activation(x)) with the spec's mask over x's elements, so the same
elements are kept as by dropout(activation(x), p, seed=seed, offset=offset).
Forward is one pass over memory. Backward for relu draws no random numbers:
y = dropout(relu(x)) is > 0 exactly where the element was kept and x > 0, so
dx = grad * scale where y > 0 (y is what torch's relu keeps for backward
anyway). Backward for gelu recomputes the mask and keeps x, as gelu does.

Examples:
    >>> torch.ops.dropkit.activation_dropout(torch.tensor([1.0, -1.0, 1.0, 1.0]), torch.tensor(7), 0, 0.5, "relu")
    tensor([2., 0., 0., 0.])
"""

from __future__ import annotations

import torch
from torch import Tensor

from .. import kernels, rng
from . import compiled
from .dropout import _args, _like, eager_function, register_formula
from .fused import backward_impl, bias_dropout_add_backward
from .seed import seed_tensor

__all__ = ["activation_dropout", "apply_activation_dropout", "relu_dropout_backward"]


def forward_impl(x: Tensor, seed: int, offset: int, p: float, activation: str) -> Tensor:
    """dropout(activation(x)) (seed and offset as uint64); the output keeps x's memory format."""
    return _like(x, kernels.for_tensor(x).dropout_fwd(x.contiguous(), seed, offset, p, activation=activation))


def relu_backward_impl(grad: Tensor, y: Tensor, p: float) -> Tensor:
    """Gradient of dropout(relu(x)) from its output y: grad * scale where y > 0, else 0."""
    return _like(grad, kernels.for_tensor(grad).relu_dropout_bwd(grad.contiguous(), y.contiguous(), p))


@torch.library.custom_op("dropkit::activation_dropout", mutates_args=())
def activation_dropout(x: Tensor, seed: Tensor, offset: int, p: float, activation: str) -> Tensor:
    """dropout(activation(x)), activation "relu" or "gelu"; the output keeps x's memory format."""
    return forward_impl(x, *_args(seed, offset), p, activation)


@activation_dropout.register_fake
def _(x, seed, offset, p, activation):
    return torch.empty_like(x)


@torch.library.custom_op("dropkit::relu_dropout_backward", mutates_args=())
def relu_dropout_backward(grad: Tensor, y: Tensor, p: float) -> Tensor:
    """Gradient of dropkit::activation_dropout(x, ..., "relu") from its output y."""
    return relu_backward_impl(grad, y, p)


@relu_dropout_backward.register_fake
def _(grad, y, p):
    return torch.empty_like(grad)


def _formula(again):
    """dropkit::activation_dropout's autograd; again = (relu gradient from y, gradient of x + bias of the fused op)."""
    relu_grad, gelu_grad = again

    def setup(ctx, inputs, output):
        x, seed, offset, p, activation = inputs
        ctx.save_for_backward(output if activation == "relu" else x)
        ctx.args = (seed, offset, p, activation)

    def backward(ctx, grad):
        (saved,) = ctx.saved_tensors
        seed, offset, p, activation = ctx.args
        if activation == "relu":
            dx = relu_grad(grad, saved, p)
        else:
            dx = gelu_grad(grad, saved, None, seed, offset, p, activation)
        return dx, None, None, None, None

    return setup, backward


register_formula(activation_dropout, _formula, (relu_dropout_backward, bias_dropout_add_backward))
# No double backward (the relu formula's derivative in y is not defined by it): raise, never return zeros.
_ActivationDropout = eager_function(
    "_ActivationDropout", forward_impl, _formula, (relu_backward_impl, backward_impl), once=True
)


def apply_activation_dropout(x: Tensor, p: float, seed: int | Tensor, offset: int, activation: str) -> Tensor:
    """Run the op on validated arguments (0 < p) and a resolved seed (dropkit.family._common.resolve_seed).

    As apply_dropout: compiled code goes through the custom ops, eager code
    reaches the same *_impl functions and formula through an autograd.Function.
    """
    if compiled.active(rng.to_int64(offset)):
        return compiled.activation_dropout(x, seed_tensor(seed), rng.to_int64(offset), p, activation)
    if torch.compiler.is_compiling():
        return activation_dropout(x, seed_tensor(seed), rng.to_int64(offset), p, activation)
    if torch.is_grad_enabled() and x.requires_grad:
        return _ActivationDropout.apply(x, seed, offset, p, activation)
    return forward_impl(x, seed, offset, p, activation)
