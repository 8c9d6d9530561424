"""Seeds as the ops take them: int64 scalar tensors holding a uint64 seed's bits.

Examples:
    >>> seed_value(seed_tensor(2**64 - 1))
    18446744073709551615
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import cast

import torch
from torch import Tensor
from torch.utils.checkpoint import CheckpointPolicy, checkpoint, create_selective_checkpoint_contexts

from .. import _validate, rng

__all__ = ["seed_tensor", "seed_value", "stream"]


# Counts seed draws. Each draw mutates it, which chains the draws in a compiled
# graph: without that link a compiler may merge two draws (both ops look pure
# and take the same arguments) or reorder them; both were seen with torch 2.13.
_DRAWS = torch.zeros((), dtype=torch.int64)


@torch.library.custom_op("dropkit::draw_seed", mutates_args=("draws",), tags=(torch.Tag.nondeterministic_seeded,))
def _draw_seed_op(draws: Tensor) -> Tensor:
    """A fresh 64-bit seed from torch's default generator, as an int64 scalar tensor.

    Drawn inside an op so that torch.compile runs it eagerly: compiled code then
    consumes torch's generator exactly as eager code does.
    """
    draws.add_(1)
    return torch.tensor(rng.to_int64(rng.draw_seed()), dtype=torch.int64)


@_draw_seed_op.register_fake
def _(draws: Tensor) -> Tensor:
    return torch.empty((), dtype=torch.int64)


def _must_save(ctx: object, op: object, *args: object, **kwargs: object) -> CheckpointPolicy:
    return CheckpointPolicy.MUST_SAVE


def _saving_context() -> tuple[AbstractContextManager[None], AbstractContextManager[None]]:
    contexts = create_selective_checkpoint_contexts(_must_save)  # type: ignore[no-untyped-call]  # unannotated in torch
    return cast(tuple[AbstractContextManager[None], AbstractContextManager[None]], contexts)


def _draw_saved() -> Tensor:
    """dropkit::draw_seed in compiled code, its result marked must-save: a compiled backward never draws again.

    Otherwise AOTAutograd's partitioner may recompute the draw in backward, inside a
    torch.utils.checkpoint region or under an activation memory budget below 1.0 (the
    functionalized op is on no list of random ops it knows), and a second draw is a new
    seed: silently different gradients. Saving it costs 8 bytes.
    """
    # checkpoint is untyped; the draw's schema returns a Tensor
    return cast(Tensor, checkpoint(_draw_seed_op, _DRAWS, use_reentrant=False, context_fn=_saving_context))


def seed_tensor(seed: int | Tensor | None, generator: torch.Generator | None = None) -> Tensor:
    """A seed as the ops take it (int64 scalar tensor): `seed`, or drawn from `generator` or torch's default.

    Works under torch.compile: a draw from the default generator goes through
    dropkit::draw_seed, so compiled code draws exactly as eager code does.
    A tensor (a (seed, offset shift) pair from dropkit.scale.addressing) passes through.
    """
    if isinstance(seed, Tensor):
        return seed
    if seed is None and generator is None:
        # a custom op's call is untyped; its schema returns a Tensor
        return _draw_saved() if torch.compiler.is_compiling() else cast(Tensor, _draw_seed_op(_DRAWS))
    if seed is None:
        seed = rng.draw_seed(_validate.eager_generator(generator))
    return torch.tensor(rng.to_int64(seed), dtype=torch.int64)


def seed_value(seed: Tensor) -> int:
    """The uint64 seed held by a seed tensor."""
    return rng.to_uint64(int(seed.item()))


def stream(seed: Tensor, offset: int) -> tuple[int, int]:
    """(seed, offset) as uint64 ints, from an op's seed tensor and int64 offset.

    The seed tensor is a scalar seed, or the (seed, offset shift) pair that
    dropkit.scale.addressing computes under torch.compile: the shift then travels as
    tensor data, so a new sample offset does not recompile the graph.
    """
    if seed.dim() == 0:
        return seed_value(seed), rng.to_uint64(offset)
    s, shift = seed.tolist()
    return rng.to_uint64(s), (rng.to_uint64(offset) + shift) % 2**64
