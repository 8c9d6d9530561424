"""What the elementwise variants' custom ops share: y = J(x) + b, with J linear and J, b pure functions of (seed, offset).

Each variant registers its own typed op (dropkit::alpha_dropout, dropkit::gaussian,
dropkit::drop_block2d), so traces and profiles name it; `register` gives each op the
same fake kernel and autograd: backward is J(grad), recomputed from the seed by the
op itself called with linear=True, so nothing of the input's size is saved. Half
types compute in float32 and round once, as the mask spec does.

A variant may also register its compiled form: the same formula on the mask or the
normals of dropkit.ops.compiled, plain tensor ops that Inductor fuses, which `apply`
takes under torch.compile (form "decomposed"); autograd then derives J from those ops.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import torch
from torch import Tensor

from .. import rng
from . import compiled
from .layout import like
from .seed import seed_tensor, stream

__all__ = ["run", "register", "apply"]

# op -> its compiled form, form(x, seed tensor, offset, *args, linear), x in the compute type
_COMPILED: dict[torch.library.CustomOpDef, Callable[..., Tensor]] = {}


def _compute_type(x: Tensor) -> Tensor:
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def run(fn: Callable[..., Tensor], x: Tensor, seed: Tensor, offset: int, *args: object) -> Tensor:
    """fn(x, seed, offset, *args) on x made contiguous (float32 for half types), in x's dtype and layout."""
    return like(x, fn(_compute_type(x.contiguous()), *stream(seed, offset), *args).to(x.dtype))


def register(op: torch.library.CustomOpDef, compiled_form: Callable[..., Tensor] | None = None) -> None:
    """Fake kernel and autograd for an op called as op(x, seed, offset, *args, linear), and its compiled form if any."""
    if compiled_form is not None:
        _COMPILED[op] = compiled_form

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
    seed_t, off = seed_tensor(seed), rng.to_int64(offset)
    if op in _COMPILED and compiled.active(off):
        return _COMPILED[op](_compute_type(x), seed_t, off, *args, False).to(x.dtype)
    # a custom op's call is untyped; the variants' schemas return a Tensor
    return cast(Tensor, op(x, seed_t, off, *args, False))
