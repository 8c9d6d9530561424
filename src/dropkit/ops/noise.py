"""dropkit::noise, the custom op behind the elementwise dropout variants.

One op serves every variant whose output is y = J(x) + b: J is linear in x
and, like b, a pure function of (seed, offset). Backward is J(grad), which
the op recomputes from the seed (called with linear=True), so nothing of the
input's size is saved. Kinds: "alpha" (ops.alpha), "gaussian"
(ops.gaussian), "block2d" (ops.block). Half types compute in float32 and
round once, as the mask spec does.

Example:
    >>> y = apply_noise(torch.ones(4), "gaussian", [0.5, 0.0], seed=7, offset=0, generator=None)
"""

from __future__ import annotations

import torch
from torch import Tensor

from .. import rng
from .alpha import alpha
from .block import drop_block
from .dropout import _like
from .gaussian import gaussian
from .seed import seed_tensor, stream

__all__ = ["noise", "apply_noise"]

_KINDS = {"alpha": alpha, "gaussian": gaussian, "block2d": drop_block}


def noise_impl(x: Tensor, seed: int, offset: int, kind: str, args: list[float], linear: bool) -> Tensor:
    half = x.dtype in (torch.float16, torch.bfloat16)
    xc = x.contiguous().float() if half else x.contiguous()
    y = _KINDS[kind](xc, seed, offset, args, linear)
    return _like(x, y.to(x.dtype))


@torch.library.custom_op("dropkit::noise", mutates_args=())
def noise(x: Tensor, seed: Tensor, offset: int, kind: str, args: list[float], linear: bool) -> Tensor:
    """The `kind` variant of x under (seed, offset); linear=True applies only its Jacobian."""
    return noise_impl(x, *stream(seed, offset), kind, args, linear)


@noise.register_fake
def _(x, seed, offset, kind, args, linear):
    return torch.empty_like(x)


def _setup(ctx, inputs, output):
    _, seed, offset, kind, args, _ = inputs
    ctx.save_for_backward(seed)  # a scalar: the noise is recomputed, never stored
    ctx.offset, ctx.kind, ctx.args = offset, kind, args


def _backward(ctx, grad):
    (seed,) = ctx.saved_tensors
    return noise(grad, seed, ctx.offset, ctx.kind, ctx.args, True), None, None, None, None, None


noise.register_autograd(_backward, setup_context=_setup)


def apply_noise(
    x: Tensor, kind: str, args: list[float], *, seed: int | None, offset: int, generator: torch.Generator | None
) -> Tensor:
    """Run dropkit::noise on validated arguments, drawing the seed if none is given."""
    return noise(x, seed_tensor(seed, generator), rng.to_int64(offset), kind, [float(a) for a in args], False)
