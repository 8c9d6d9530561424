"""What the elementwise variants' custom ops share: y = J(x) + b, with J linear and J, b pure functions of (seed, offset).

Each variant registers its own typed op (dropkit::alpha_dropout, dropkit::gaussian,
dropkit::drop_block2d), so traces and profiles name it; `register` gives each op the
same fake kernel and autograd: backward is J(grad), recomputed from the seed by the
op itself called with linear=True, so nothing of the input's size is saved. Half
types compute in float32 and round once, as the mask spec does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import torch
from torch import Tensor

from .. import rng
from .layout import like
from .seed import seed_tensor, stream

__all__ = ["run", "register", "apply"]


def run(fn: Callable[..., Tensor], x: Tensor, seed: Tensor, offset: int, *args: object) -> Tensor:
    """fn(x, seed, offset, *args) on x made contiguous (float32 for half types), in x's dtype and layout."""
    half = x.dtype in (torch.float16, torch.bfloat16)
    xc = x.contiguous().float() if half else x.contiguous()
    return like(x, fn(xc, *stream(seed, offset), *args).to(x.dtype))


def register(op: torch.library.CustomOpDef) -> None:
    """Fake kernel and autograd for an op called as op(x, seed, offset, *args, linear)."""

    op.register_fake(lambda x, *rest: torch.empty_like(x))

    def setup(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
        ctx.save_for_backward(inputs[1])  # the seed, a scalar: the noise is recomputed, never stored
        ctx.rest = inputs[2:-1]

    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        (seed,) = ctx.saved_tensors
        return (op(grad, seed, *ctx.rest, True),) + (None,) * (len(ctx.rest) + 2)

    op.register_autograd(backward, setup_context=setup)


def apply(op: torch.library.CustomOpDef, x: Tensor, seed: int | Tensor, offset: int, *args: object) -> Tensor:
    """Call a variant's op on validated arguments and a resolved seed (int, or a tensor under torch.compile)."""
    # a custom op's call is untyped; the variants' schemas return a Tensor
    return cast(Tensor, op(x, seed_tensor(seed), rng.to_int64(offset), *args, False))
