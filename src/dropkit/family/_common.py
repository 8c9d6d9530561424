"""What every variant shares: the training flag and masks drawn on a small shape and broadcast."""

from __future__ import annotations

import torch
from torch import Tensor

from .. import _mode, _validate, addressing, ops

__all__ = ["DropoutBase", "active", "check", "small_mask", "apply_small_mask"]


class DropoutBase(torch.nn.Module):
    """Marker base of every dropkit dropout-family module, so is_dropout() is one isinstance check."""


def active(training: bool) -> bool:
    """Whether a variant is stochastic: in training, or inside dropkit.mc_dropout."""
    return bool(training) or _mode.mc_active()


def check(input: Tensor, p: float, seed, offset, name: str = "input") -> tuple[float, int | None, int]:
    """Validate the arguments every variant takes; returns (p, seed, offset).

    `name` is the tensor's argument name in messages ("weight" for the variants that drop weights).
    """
    _validate.float_tensor(input, name)
    return _validate.p(p), _validate.seed(seed), _validate.offset(offset)


def small_mask(
    input: Tensor,
    shape,
    p: float,
    seed: int | None,
    offset: int,
    generator: torch.Generator | None,
    batch_dim: int | None = 0,
) -> Tensor:
    """The spec's scaled keep mask (0 or 1/(1-p)) of a small `shape`, in input's dtype and device.

    Its element i is the spec dropout of 1 at stream index offset + i, so a
    per-channel or per-sample mask is a spec mask of the (N, C) or (N,) grid.
    `batch_dim` is the grid's sample dimension for sample addressing (None: one mask for the whole batch).
    """
    seed, offset = addressing.resolve(seed, offset, shape, batch_dim)
    ones = torch.ones(shape, dtype=input.dtype, device=input.device)
    return ops.apply_dropout(ones, p, seed, offset, generator, inplace=False, bitpacked=False)


def apply_small_mask(
    input: Tensor,
    mask_shape,
    p: float,
    inplace: bool,
    seed: int | None,
    offset: int,
    generator: torch.Generator | None,
    batch_dim: int | None = 0,
) -> Tensor:
    """input * mask, the mask drawn on `mask_shape` (broadcastable to input) and never saved at input's size."""
    if inplace:
        _validate.inplace_target(input)
    mask = small_mask(input, mask_shape, p, seed, offset, generator, batch_dim)
    return input.mul_(mask) if inplace else input * mask
