"""Dropout under torch.compile as ops Inductor fuses: the mask spec decomposed, the mask recomputed in backward.

Under torch.compile the apply_* functions of dropkit.ops come here (while
`form()` is "decomposed", the default). The forward computes the mask from
(seed tensor, offset, element index) with dropkit.kernels.decomposed, which
Inductor fuses into the neighbouring pointwise loop; the backward rebuilds
the mask from the saved seed scalar inside the gradient loop, so no mask is
saved (relu's backward reads it off the output, as the eager kernel does). Seeds still come from
dropkit::draw_seed, so compiled and eager code draw the same seeds and get
the same masks and outputs, bit for bit (tests/ops/test_compiled_form.py).

form "kernel" keeps the opaque custom ops (dropkit::dropout, ...), which
call the numba or Triton kernels: each is then one pass of its own, which
Inductor cannot fuse. On GPUs the two are measured by benchmarks/bench_gpu.py.

Examples:
    >>> form()
    'decomposed'
    >>> with use_form("kernel"):
    ...     form()
    'kernel'
"""

from __future__ import annotations

import contextlib
import os

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from .. import _validate
from ..kernels import decomposed

__all__ = [
    "FORMS",
    "activation_dropout",
    "active",
    "bias_dropout_add",
    "dropout",
    "form",
    "keep_mask",
    "use_form",
    "with_normal",
]

FORMS = ("decomposed", "kernel")
# A module global, not a ContextVar: compiled code reads it at trace time and Dynamo
# guards on it, so changing it recompiles instead of running a stale graph.
_form = _validate.choice(os.environ.get("DROPKIT_COMPILED", "decomposed"), FORMS, "DROPKIT_COMPILED")


def form() -> str:
    """How dropout is compiled: "decomposed" (integer tensor ops, fused by Inductor) or "kernel" (custom ops)."""
    return _form


@contextlib.contextmanager
def use_form(name: str):
    """Compile dropout in form `name` inside a with block (process-wide; graphs compiled before recompile)."""
    global _form
    previous, _form = _form, _validate.choice(name, FORMS, "name")
    try:
        yield
    finally:
        _form = previous


# Inductor folds a constant offset into its index arithmetic on the element index; past
# 2^31 that printed a constant beyond int64 and failed to compile (torch 2.13). Larger
# offsets take the kernel form; offsets that travel as tensor data (dropkit.addressing)
# are exact at any size (tests/kernels/test_decomposed.py).
_MAX_CONSTANT_OFFSET = 2**31


def active(offset: int = 0) -> bool:
    """Whether a dropout at int64 `offset` goes through the decomposed form: compiling, in form "decomposed"."""
    return torch.compiler.is_compiling() and _form == "decomposed" and 0 <= offset < _MAX_CONSTANT_OFFSET


def _compute(t: Tensor) -> Tensor:
    """t in the compute type: float32 for half types, else its own."""
    return t if t.dtype == torch.float64 else t.float()


def _keep(shape, p: float, seed: Tensor, offset: int, device, recompute: bool) -> Tensor:
    """The spec's keep mask; recompute: built in a checkpoint region, so backward rebuilds it from the seed.

    Outside one, AOTAutograd's partitioner saves the bool mask for backward: it
    will not recompute a compare that shrinks its input (its reduction rule).
    """
    return _drawn(decomposed.keep_mask, shape, p, seed, offset, device, recompute=recompute)


def _drawn(fn, *args, recompute: bool) -> Tensor:
    """fn(*args), in a checkpoint region when recompute: then nothing it returns is saved for backward."""
    return checkpoint(fn, *args, use_reentrant=False) if recompute else fn(*args)


def keep_mask(shape, p: float, seed: Tensor, offset: int, like: Tensor) -> Tensor:
    """The spec's keep mask of `shape` on like's device; rebuilt in backward, never saved, when like needs a gradient."""
    return _keep(shape, p, seed, offset, like.device, _needs_grad(like))


def with_normal(fn, x: Tensor, seed: Tensor, offset: int, *args) -> Tensor:
    """fn(x, z, *args), z the spec's standard normals (float64) of x's shape; rebuilt in backward when x needs a gradient.

    All of fn runs in the checkpoint region: what fn derives from z (the float
    multiplier of Gaussian dropout) would otherwise be saved at x's size.
    """
    return _drawn(_apply_normal, fn, x, seed, offset, *args, recompute=_needs_grad(x))


def _apply_normal(fn, x: Tensor, seed: Tensor, offset: int, *args) -> Tensor:
    return fn(x, decomposed.normal(x.shape, seed, offset, x.device), *args)


def _needs_grad(x: Tensor) -> bool:
    return torch.is_grad_enabled() and x.requires_grad


def dropout(x: Tensor, seed: Tensor, offset: int, p: float, *, inplace: bool) -> Tensor:
    """Spec dropout of x in the decomposed form; inplace writes the result into x.

    Its backward (derived by autograd: the same where over grad) rebuilds the mask; nothing of x's size is saved.
    """
    keep = _keep(x.shape, p, seed, offset, x.device, _needs_grad(x))
    y = decomposed.scaled_where(_compute(x), keep, p, x.dtype)
    return x.copy_(y) if inplace else y


def _activation(h: Tensor, activation: str) -> Tensor:
    """relu(h) = 0 where h < 0 (NaN and -0.0 pass through); gelu(h) = h/2 * (1 + erf(h / sqrt 2)), as the kernels write them."""
    if activation == "relu":
        return torch.where(h < 0, torch.zeros((), dtype=h.dtype, device=h.device), h)
    return (h * 0.5) * (1.0 + torch.special.erf(h * 0.7071067811865476))


class _ReLUDropout(torch.autograd.Function):
    """dropout(relu(x)); backward reads the mask off the output (y > 0: kept and x > 0), as the eager kernels do.

    The output is what relu saves without dropout, so no mask and no bool of x's size is kept.
    """

    @staticmethod
    def forward(ctx, x, seed, offset, p):
        keep = decomposed.keep_mask(x.shape, p, seed, offset, x.device)
        y = decomposed.scaled_where(_activation(_compute(x), "relu"), keep, p, x.dtype)
        ctx.save_for_backward(y)
        ctx.p = p
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return decomposed.scaled_where(_compute(grad), y > 0, ctx.p, grad.dtype), None, None, None


def activation_dropout(x: Tensor, seed: Tensor, offset: int, p: float, activation: str) -> Tensor:
    """dropout(activation(x)) in the decomposed form, activation "relu" or "gelu".

    gelu's backward is autograd's, through the same ops; it keeps x, as gelu does, and rebuilds the mask.
    """
    if activation == "relu" and _needs_grad(x):
        return _ReLUDropout.apply(x, seed, offset, p)
    keep = _keep(x.shape, p, seed, offset, x.device, _needs_grad(x))
    return decomposed.scaled_where(_activation(_compute(x), activation), keep, p, x.dtype)


def bias_dropout_add(
    x: Tensor, bias: Tensor | None, residual: Tensor, seed: Tensor, offset: int, p: float, activation: str | None
) -> Tensor:
    """residual + dropout(activation(x + bias)) in the decomposed form: the ops above, which Inductor fuses into one loop."""
    h = x if bias is None else x + bias
    y = (
        dropout(h, seed, offset, p, inplace=False)
        if activation is None
        else activation_dropout(h, seed, offset, p, activation)
    )
    return residual + y
