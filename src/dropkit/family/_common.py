"""What every variant shares: the base class and its declarations, the seed, and masks drawn on a small shape."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, cast

import torch
from torch import Tensor

from .. import _mode, _validate, kernels, ops, rng
from ..kernels import cpu_select
from ..ops.layout import like
from ..scale import addressing

__all__ = [
    "DropoutBase",
    "init_rate",
    "active",
    "check",
    "resolve_seed",
    "small_mask",
    "apply_small_mask",
    "select_kept",
    "zeros_with_zero_grad",
]


class DropoutBase(torch.nn.Module):
    """Base of every dropkit dropout-family module: is_dropout() is one isinstance check, registries read its declarations.

    Attributes:
        kind: the name dropkit.nn.make_dropout builds it by, for a variant made from one
            rate; None for the ones that wrap a layer or take other arguments.
        mask_unit: what one draw of the mask covers: "element", "channel", "block",
            "sample", "sequence", "weight" or "row".
        has_rate: the constructor's first number is a drop rate (GaussianNoise's is a stddev).
        shares_mask_across_batch: one draw covers the whole batch (weights, embedding
            rows, batchwise blocks), so mc_predict cannot replicate the batch to sample.
    """

    kind: ClassVar[str | None] = None
    mask_unit: ClassVar[str] = "element"
    has_rate: ClassVar[bool] = True
    shares_mask_across_batch: bool = False
    generator: torch.Generator | None  # set by init_rate or the module's own __init__; declared for type checkers


def init_rate(
    module: torch.nn.modules.dropout._DropoutNd,
    torch_class: type[torch.nn.modules.dropout._DropoutNd],
    p: float,
    inplace: bool,
    generator: torch.Generator | None,
) -> None:
    """torch_class.__init__ (torch's _DropoutNd) after dropkit's own check of p, so the messages are dropkit's."""
    torch_class.__init__(module, _validate.p(p), inplace)
    # torch types Module.__setattr__'s value as Tensor | Module; DropoutBase declares generator
    module.generator = generator  # type: ignore[assignment]


def active(training: bool) -> bool:
    """Whether a variant is stochastic: in training, or inside dropkit.mc_dropout."""
    return bool(training) or _mode.mc_active()


def check(input: Tensor, p: float, seed: object, offset: object, name: str = "input") -> tuple[float, int | None, int]:
    """Validate the arguments every variant takes; returns (p, seed, offset).

    `name` is the tensor's argument name in messages ("weight" for the variants that drop weights).
    """
    _validate.float_tensor(input, name)
    return _validate.p(p), _validate.seed(seed), _validate.offset(offset)


def resolve_seed(
    seed: int | Tensor | None,
    offset: int,
    generator: torch.Generator | None,
    shape: Sequence[int],
    batch_dim: int | None = 0,
) -> tuple[int | Tensor, int]:
    """The one place a call's (seed, offset) is decided, before any op runs.

    `seed` if given; else, inside dropkit.sample_addressed, the addressed seed and offset
    (dropkit.scale.addressing.resolve: `shape` is the mask's, `batch_dim` its sample dimension,
    None for a mask shared by the whole batch); else a seed drawn from `generator` or
    torch's default. Eager calls get an int seed. Under torch.compile it is a tensor (a draw
    from torch's generator goes through the dropkit::draw_seed op, so compiled code draws
    as eager does).
    """
    seed, offset = addressing.resolve(seed, offset, shape, batch_dim)
    if torch.compiler.is_compiling():
        return ops.seed_tensor(seed, generator), offset
    return (rng.draw_seed(generator) if seed is None else seed), offset


def small_mask(input: Tensor, shape: Sequence[int], p: float, seed: int | Tensor, offset: int) -> Tensor:
    """The spec's scaled keep mask (0 or 1/(1-p)) of a small `shape`, in input's dtype and device.

    Its element i is the spec dropout of 1 at stream index offset + i, so a
    per-channel or per-sample mask is a spec mask of the (N, C) or (N,) grid.
    """
    ones = torch.ones(shape, dtype=input.dtype, device=input.device)
    return ops.apply_dropout(ones, p, seed, offset, inplace=False, bitpacked=False)


def apply_small_mask(
    input: Tensor, mask_shape: Sequence[int], p: float, inplace: bool, seed: int | Tensor, offset: int
) -> Tensor:
    """The spec's dropout of input with the mask drawn on `mask_shape` (broadcastable to input), never saved at input's size."""
    if inplace:
        _validate.inplace_target(input)
    keep = small_mask(input, mask_shape, p, seed, offset) != 0
    return select_kept(input, keep, rng.scale(p), inplace)


def select_kept(input: Tensor, keep: Tensor, scale: float, inplace: bool = False) -> Tensor:
    """input * scale where `keep` (broadcast) holds, and exact zeros elsewhere, gradient included.

    A select, not a product with a 0/scale mask: inf * 0 and NaN * 0 are NaN, and the spec
    promises 0 for every dropped element. Scaling by the Python float rounds as the spec
    does (in float32 for half types). Only the small `keep` is saved for backward. Eager
    float32/float64 CPU calls run one fused numba pass (dropkit.kernels.cpu_select); the
    rest, and torch.compile, which fuses it itself, a where and a multiply.

    Examples:
        >>> select_kept(torch.tensor([float("inf"), 1.0]), torch.tensor([False, True]), 2.0)
        tensor([0., 2.])
    """
    if not torch.compiler.is_compiling() and kernels.backend_name(input) == "cpu" and cpu_select.supports(input, keep):
        if not (torch.is_grad_enabled() and input.requires_grad):
            return cpu_select.select_fwd(input, keep, scale, out=input if inplace else None)
        if not inplace:
            # torch leaves Function.apply unannotated; forward returns a Tensor
            return cast(Tensor, _SelectKept.apply(input, keep, scale))  # type: ignore[no-untyped-call]
    if inplace:
        return input.masked_fill_(~keep, 0).mul_(scale)
    y = torch.where(keep, input, input.new_zeros(()))
    if y.stride() != input.stride():  # where takes keep's layout when keep has input's full shape
        y = like(input, y)
    return y if scale == 1.0 else y.mul_(scale)


class _SelectKept(torch.autograd.Function):
    """select_kept through the numba kernel; its gradient is the same select of grad."""

    @staticmethod
    def forward(ctx: Any, input: Tensor, keep: Tensor, scale: float) -> Tensor:
        ctx.save_for_backward(keep)
        ctx.scale = scale
        return cpu_select.select_fwd(input, keep, scale)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        (keep,) = ctx.saved_tensors
        return select_kept(grad.contiguous(), keep, ctx.scale), None, None


def zeros_with_zero_grad(input: Tensor, inplace: bool = False) -> Tensor:
    """What p = 1 gives: exact zeros (also where input is inf or NaN) whose gradient is zero, never NaN."""
    if inplace:
        return input.zero_()
    return torch.where(torch.zeros((), dtype=torch.bool, device=input.device), input, input.new_zeros(()))
