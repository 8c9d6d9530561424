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

import torch
from torch import Tensor

from .. import _mode, consistent, kernels, rng
from .seed import seed_tensor, stream

__all__ = ["apply_dropout", "dropout", "dropout_", "dropout_bitpacked", "dropout_from_bits", "keep_mask"]


def _like(x: Tensor, y: Tensor) -> Tensor:
    """y (contiguous, x's shape) laid out in x's memory format, as empty_like(x) would be."""
    if x.is_contiguous():
        return y
    return torch.empty_like(x).copy_(y)


def _args(seed: Tensor, offset: int) -> tuple[int, int]:
    return stream(seed, offset)


def dropout_impl(x: Tensor, seed: int, offset: int, p: float) -> Tensor:
    """Spec dropout of x (seed and offset as uint64); the output keeps x's memory format."""
    return _like(x, kernels.for_tensor(x).dropout_fwd(x.contiguous(), seed, offset, p))


def dropout_bitpacked_impl(x: Tensor, seed: int, offset: int, p: float) -> tuple[Tensor, Tensor]:
    """Spec dropout of x, plus its keep mask packed 1 bit per element (uint8, logical order)."""
    y, bits = kernels.for_tensor(x).dropout_fwd_packed(x.contiguous(), seed, offset, p)
    return _like(x, y), bits


def dropout_from_bits_impl(grad: Tensor, bits: Tensor, p: float) -> Tensor:
    """grad * scale where the packed keep bit is set, else 0."""
    return _like(grad, kernels.for_tensor(grad).dropout_bwd_packed(grad.contiguous(), bits, p))


@torch.library.custom_op("dropkit::dropout", mutates_args=())
def dropout(x: Tensor, seed: Tensor, offset: int, p: float) -> Tensor:
    """Spec dropout of x; the output keeps x's memory format."""
    return dropout_impl(x, *_args(seed, offset), p)


@dropout.register_fake
def _(x, seed, offset, p):
    return torch.empty_like(x)


def _dropout_setup(ctx, inputs, output):
    _, seed, offset, p = inputs
    ctx.save_for_backward(seed)  # a scalar: the mask is recomputed, never stored
    ctx.offset, ctx.p = offset, p


def _dropout_backward(ctx, grad):
    (seed,) = ctx.saved_tensors
    return dropout(grad, seed, ctx.offset, ctx.p), None, None, None


dropout.register_autograd(_dropout_backward, setup_context=_dropout_setup)


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
    dropout_inplace_impl(x, *_args(seed, offset), p)


@dropout_.register_fake
def _(x, seed, offset, p):
    return None


@torch.library.custom_op("dropkit::dropout_bitpacked", mutates_args=())
def dropout_bitpacked(x: Tensor, seed: Tensor, offset: int, p: float) -> tuple[Tensor, Tensor]:
    """Spec dropout of x, plus its keep mask packed 1 bit per element (uint8, logical order)."""
    return dropout_bitpacked_impl(x, *_args(seed, offset), p)


@dropout_bitpacked.register_fake
def _(x, seed, offset, p):
    return torch.empty_like(x), x.new_empty((x.numel() + 7) // 8, dtype=torch.uint8)


@torch.library.custom_op("dropkit::dropout_from_bits", mutates_args=())
def dropout_from_bits(grad: Tensor, bits: Tensor, p: float) -> Tensor:
    """grad * scale where the packed keep bit is set, else 0."""
    return dropout_from_bits_impl(grad, bits, p)


@dropout_from_bits.register_fake
def _(grad, bits, p):
    return torch.empty_like(grad)


def _from_bits_setup(ctx, inputs, output):
    ctx.save_for_backward(inputs[1])
    ctx.p = inputs[2]


def _from_bits_backward(ctx, grad):
    (bits,) = ctx.saved_tensors  # linear in grad: its own derivative
    return dropout_from_bits(grad, bits, ctx.p), None, None


dropout_from_bits.register_autograd(_from_bits_backward, setup_context=_from_bits_setup)


def _bitpacked_setup(ctx, inputs, output):
    ctx.save_for_backward(output[1])  # n/8 bytes
    ctx.p = inputs[3]


def _bitpacked_backward(ctx, grad, _grad_bits):
    (bits,) = ctx.saved_tensors
    return dropout_from_bits(grad, bits, ctx.p), None, None, None


dropout_bitpacked.register_autograd(_bitpacked_backward, setup_context=_bitpacked_setup)


def keep_mask(shape: torch.Size, p: float, seed: int, offset: int, device) -> Tensor:
    """The spec's boolean keep mask for a tensor of `shape` (not differentiable)."""
    bits = kernels.for_device(device).random_bits(shape.numel(), seed, offset, device)
    return (bits >= rng.threshold(p)).view(shape)


class _EagerDropout(torch.autograd.Function):
    """dropkit::dropout's autograd without the custom-op dispatcher (about 15 us a call with torch 2.13)."""

    @staticmethod
    def forward(ctx, x, seed, offset, p):
        ctx.args = (seed, offset, p)
        return dropout_impl(x, seed, offset, p)

    @staticmethod
    def backward(ctx, grad):
        # Through apply only when a double backward needs the graph.
        dx = _EagerDropout.apply(grad, *ctx.args) if grad.requires_grad else dropout_impl(grad, *ctx.args)
        return dx, None, None, None


class _EagerBitpacked(torch.autograd.Function):
    """dropkit::dropout_bitpacked's autograd without the custom-op dispatch."""

    @staticmethod
    def forward(ctx, x, seed, offset, p):
        y, bits = dropout_bitpacked_impl(x, seed, offset, p)
        ctx.save_for_backward(bits)
        ctx.p = p
        return y

    @staticmethod
    def backward(ctx, grad):
        (bits,) = ctx.saved_tensors
        fn = _EagerFromBits.apply if grad.requires_grad else dropout_from_bits_impl
        return fn(grad, bits, ctx.p), None, None, None


class _EagerFromBits(torch.autograd.Function):
    """dropkit::dropout_from_bits's autograd (linear in grad, so double backward works)."""

    @staticmethod
    def forward(ctx, grad, bits, p):
        ctx.save_for_backward(bits)
        ctx.p = p
        return dropout_from_bits_impl(grad, bits, p)

    @staticmethod
    def backward(ctx, grad):
        (bits,) = ctx.saved_tensors
        fn = _EagerFromBits.apply if grad.requires_grad else dropout_from_bits_impl
        return fn(grad, bits, ctx.p), None, None


def apply_dropout(x: Tensor, p: float, seed: int | Tensor, offset: int, *, inplace: bool, bitpacked: bool) -> Tensor:
    """Run spec dropout on validated arguments and a resolved seed (dropkit.family._common.resolve_seed).

    Under torch.compile this goes through the custom ops. Eager calls skip the
    op dispatcher and reach the same *_impl functions through autograd.Function,
    which makes small calls 2-3x cheaper; tests check both paths give equal
    outputs and gradients.
    """
    if _mode.consistent_replicas() is not None:  # inside mc_predict(consistent=True): masks by replica
        return consistent.dropout(x, p, inplace=inplace)
    if torch.compiler.is_compiling():
        seed_t = seed_tensor(seed)
        off = rng.to_int64(offset)
        if inplace and not (torch.is_grad_enabled() and x.requires_grad):
            dropout_(x, seed_t, off, p)
            return x
        y = dropout_bitpacked(x, seed_t, off, p)[0] if bitpacked else dropout(x, seed_t, off, p)
        return x.copy_(y) if inplace else y
    if not (torch.is_grad_enabled() and x.requires_grad):
        if inplace:
            dropout_inplace_impl(x, seed, offset, p)
            return x
        return dropout_impl(x, seed, offset, p)  # no backward, so no packed mask either
    y = (_EagerBitpacked if bitpacked else _EagerDropout).apply(x, seed, offset, p)
    return x.copy_(y) if inplace else y
