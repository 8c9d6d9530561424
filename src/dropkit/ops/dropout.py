"""Custom ops for plain dropout: dropkit::dropout, its in-place and bit-packed forms.

Each op has a fake (meta) kernel and, where differentiable, an autograd
formula, so torch.compile(fullgraph=True) traces through them without a
graph break. Seeds travel as int64 scalar tensors holding the uint64 seed's
bits; offsets as int64 with the same two's-complement mapping (rng.to_int64).

Examples:
    >>> x = torch.ones(4)
    >>> torch.ops.dropkit.dropout(x, torch.tensor(7), 0, 0.5)
    tensor([2., 2., 0., 0.])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar, cast

import torch
from torch import Tensor

from .. import _mode, kernels, rng
from . import compiled, consistent
from .layout import like
from .seed import seed_tensor, stream

__all__ = [
    "apply_dropout",
    "dropout",
    "dropout_",
    "dropout_bitpacked",
    "dropout_from_bits",
    "keep_mask",
    "dropout_impl",
    "dropout_inplace_impl",
    "dropout_bitpacked_impl",
    "dropout_from_bits_impl",
    "eager_function",
    "register_formula",
    "Backward",
    "EagerFunction",
    "Formula",
    "SetupContext",
]

_R = TypeVar("_R")
_R_co = TypeVar("_R_co", covariant=True)

# An op's autograd, as torch.library's register_autograd takes it: formula(again) -> (setup_context, backward).
# ctx is Any: each formula sets its own attributes on it. `again`, what backward calls, is one callable or a
# tuple of them (ops.fused).
SetupContext = Callable[[Any, tuple[Any, ...], Any], None]
Backward = Callable[..., tuple[Tensor | None, ...]]
Formula = Callable[[Any], tuple[SetupContext, Backward]]


class EagerFunction(Protocol[_R_co]):
    """An autograd.Function made by eager_function, as the type checker sees it: apply returns what impl does.

    torch leaves Function.apply unannotated; this says what it returns here.
    """

    def apply(self, *args: Any) -> _R_co: ...


def dropout_impl(x: Tensor, seed: int, offset: int, p: float) -> Tensor:
    """Spec dropout of x (seed and offset as uint64); the output keeps x's memory format."""
    return like(x, kernels.for_tensor(x).dropout_fwd(x.contiguous(), seed, offset, p))


def dropout_bitpacked_impl(x: Tensor, seed: int, offset: int, p: float) -> tuple[Tensor, Tensor]:
    """Spec dropout of x, plus its keep mask packed 1 bit per element (uint8, logical order)."""
    y, bits = kernels.for_tensor(x).dropout_fwd_packed(x.contiguous(), seed, offset, p)
    return like(x, y), bits


def dropout_from_bits_impl(grad: Tensor, bits: Tensor, p: float) -> Tensor:
    """grad * scale where the packed keep bit is set, else 0."""
    return like(grad, kernels.for_tensor(grad).dropout_bwd_packed(grad.contiguous(), bits, p))


@torch.library.custom_op("dropkit::dropout", mutates_args=())
def dropout(x: Tensor, seed: Tensor, offset: int, p: float) -> Tensor:
    """Spec dropout of x; the output keeps x's memory format."""
    return dropout_impl(x, *stream(seed, offset), p)


@dropout.register_fake
def _(x: Tensor, seed: Tensor, offset: int, p: float) -> Tensor:
    return torch.empty_like(x)


def _dropout_formula(again: Callable[..., Tensor]) -> tuple[SetupContext, Backward]:
    """dropkit::dropout's autograd (setup_context, backward), dropout of grad done by `again`.

    Dropout is linear in x and its own adjoint: dx = dropout(grad) with the same
    (seed, offset, p). Only those scalars are kept: the mask is recomputed.
    """

    def setup(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
        ctx.args = inputs[1:]

    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        return again(grad, *ctx.args), None, None, None

    return setup, backward


def _from_bits_formula(again: Callable[..., Tensor]) -> tuple[SetupContext, Backward]:
    """The autograd of dropkit::dropout_bitpacked and dropkit::dropout_from_bits: dx = again(grad, bits, p)."""

    def setup(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        bits = (
            output[1] if len(inputs) == 4 else inputs[1]
        )  # dropout_bitpacked(x, seed, offset, p) or from_bits(grad, bits, p)
        ctx.save_for_backward(bits)  # n/8 bytes
        ctx.p = inputs[-1]

    def backward(ctx: Any, grad: Tensor, *_grad_bits: Tensor | None) -> tuple[Tensor | None, ...]:
        (bits,) = ctx.saved_tensors  # linear in grad: from_bits is its own derivative
        return (again(grad, bits, ctx.p),) + (None,) * (len(ctx.needs_input_grad) - 1)

    return setup, backward


def _eager_apply(function: EagerFunction[_R], impl: Callable[..., _R]) -> Callable[..., _R]:
    """Run `function` through autograd only when a double backward needs the graph, else its impl."""
    return lambda grad, *args: function.apply(grad, *args) if grad.requires_grad else impl(grad, *args)


def eager_function(
    name: str, impl: Callable[..., _R], formula: Formula, again: Any = None, *, once: bool = False
) -> EagerFunction[_R]:
    """The eager twin of a custom op: impl and the op's formula, without the op dispatcher (about 15 us a call).

    formula(again) returns the op's (setup_context, backward); `again` is what
    backward calls, None meaning this function itself (a self-adjoint op).
    once: backward is once_differentiable (a double backward raises).
    forward takes ctx and calls setup itself: a Function with a setup_context
    staticmethod binds its arguments through inspect.signature on every call.
    """

    def forward(ctx: Any, *args: Any) -> _R:
        output = impl(*args)
        setup(ctx, args, output)
        return output

    function = cast(EagerFunction[_R], type(name, (torch.autograd.Function,), {"forward": staticmethod(forward)}))
    setup, backward = formula(again or _eager_apply(function, impl))
    # backward needs the class itself (its `again` may be this function), so it is set after type() makes it
    function.backward = staticmethod(  # type: ignore[attr-defined]
        torch.autograd.function.once_differentiable(backward) if once else backward
    )
    return function


def register_formula(op: torch.library.CustomOpDef, formula: Formula, again: Any = None) -> None:
    """Register formula(again) as the custom op's autograd; `again` is a custom op (None: op itself), so compiled code traces backward."""
    setup, backward = formula(again or op)
    op.register_autograd(backward, setup_context=setup)


def dropout_inplace_impl(x: Tensor, seed: int, offset: int, p: float) -> None:
    """Overwrite x with its spec dropout."""
    k = kernels.for_tensor(x)
    if x.is_contiguous():
        k.dropout_fwd(x, seed, offset, p, out=x)
    else:
        x.copy_(k.dropout_fwd(x.contiguous(), seed, offset, p))


@torch.library.custom_op("dropkit::dropout_", mutates_args=("x",))
def dropout_(x: Tensor, seed: Tensor, offset: int, p: float) -> None:
    """In-place spec dropout of x (no autograd: apply_dropout handles that case)."""
    dropout_inplace_impl(x, *stream(seed, offset), p)


@dropout_.register_fake
def _(x: Tensor, seed: Tensor, offset: int, p: float) -> None:
    return None


@torch.library.custom_op("dropkit::dropout_bitpacked", mutates_args=())
def dropout_bitpacked(x: Tensor, seed: Tensor, offset: int, p: float) -> tuple[Tensor, Tensor]:
    """Spec dropout of x, plus its keep mask packed 1 bit per element (uint8, logical order)."""
    return dropout_bitpacked_impl(x, *stream(seed, offset), p)


@dropout_bitpacked.register_fake
def _(x: Tensor, seed: Tensor, offset: int, p: float) -> tuple[Tensor, Tensor]:
    return torch.empty_like(x), x.new_empty((x.numel() + 7) // 8, dtype=torch.uint8)


@torch.library.custom_op("dropkit::dropout_from_bits", mutates_args=())
def dropout_from_bits(grad: Tensor, bits: Tensor, p: float) -> Tensor:
    """grad * scale where the packed keep bit is set, else 0."""
    return dropout_from_bits_impl(grad, bits, p)


@dropout_from_bits.register_fake
def _(grad: Tensor, bits: Tensor, p: float) -> Tensor:
    return torch.empty_like(grad)


register_formula(dropout, _dropout_formula)
register_formula(dropout_bitpacked, _from_bits_formula, dropout_from_bits)
register_formula(dropout_from_bits, _from_bits_formula)
_Dropout = eager_function("_Dropout", dropout_impl, _dropout_formula)
_FromBits = eager_function("_FromBits", dropout_from_bits_impl, _from_bits_formula)
_Bitpacked = eager_function(
    "_Bitpacked", dropout_bitpacked_impl, _from_bits_formula, _eager_apply(_FromBits, dropout_from_bits_impl)
)


def keep_mask(shape: torch.Size, p: float, seed: int, offset: int, device: torch.device | str) -> Tensor:
    """The spec's boolean keep mask for a tensor of `shape` (not differentiable)."""
    bits = kernels.for_device(device).random_bits(shape.numel(), seed, offset, device)
    return (bits >= rng.threshold(p)).view(shape)


def apply_dropout(x: Tensor, p: float, seed: int | Tensor, offset: int, *, inplace: bool, bitpacked: bool) -> Tensor:
    """Run spec dropout on validated arguments and a resolved seed (dropkit.family._common.resolve_seed).

    Under torch.compile this goes through the custom ops. Eager calls skip the
    op dispatcher and reach the same *_impl functions and autograd formulas
    through autograd.Function, which makes small calls 2-3x cheaper; tests check
    both paths give equal outputs and gradients.
    """
    if _mode.consistent_replicas() is not None:  # inside mc_predict(consistent=True): masks by replica
        return consistent.dropout(x, p, inplace=inplace)
    if torch.compiler.is_compiling():
        seed_t = seed_tensor(seed)
        off = rng.to_int64(offset)
        if compiled.active(off):  # the spec as ops Inductor fuses into the neighbouring loops
            return compiled.dropout(x, seed_t, off, p, inplace=inplace)
        if inplace and not (torch.is_grad_enabled() and x.requires_grad):
            dropout_(x, seed_t, off, p)
            return x
        y = dropout_bitpacked(x, seed_t, off, p)[0] if bitpacked else dropout(x, seed_t, off, p)
        return x.copy_(y) if inplace else y
    seed = cast(int, seed)  # eager calls get an int seed (resolve_seed); only compiled code passes a tensor
    if not (torch.is_grad_enabled() and x.requires_grad):
        if inplace:
            dropout_inplace_impl(x, seed, offset, p)
            return x
        return dropout_impl(x, seed, offset, p)  # no backward, so no packed mask either
    y = _Bitpacked.apply(x, seed, offset, p)[0] if bitpacked else _Dropout.apply(x, seed, offset, p)
    return x.copy_(y) if inplace else y
