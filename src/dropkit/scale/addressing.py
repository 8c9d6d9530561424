"""Sample-addressed masks: dropout that does not depend on how a batch is split.

Inside ``with sample_addressed(model, seed=base) as addr``, every dropout call
made by a module of `model` without an explicit seed takes its seed from
(base, layer, step) and its element offset from the global index of its first
sample. The mask of sample k, feature j, at step t, in layer L is then a
function of (base, L, t, k, j) alone: one process with a batch of 64, two
ranks with 32 each and four micro-batches of 16 draw bit-identical masks, and
a recompute of forward (activation checkpointing, with or without saved RNG
state) draws the same mask again.

- Layer L: a stable 64-bit hash of the module's qualified name in `model`
  (the n-th dropout call within one forward of a module adds n times a fixed
  odd constant), never object ids or the global call order.
- Step t: set by the training loop with ``addr.set_step(t, sample_offset=k0)``,
  never advanced by forward.
- Sample k: k0 plus the row's index in the local batch (dimension 0; the
  sequence dimension of time-first locked dropout is skipped). k0 is the
  position of the local batch in the global one: ``rank * local_batch +
  micro * micro_batch``.

The call's seed is derive_seed(base, L, t) and its offset is offset + k0 * E,
E the mask's elements per sample (features for elementwise dropout, channels
for dropout2d, 1 for DropPath). Masks shared by the whole batch (DropConnect's
weight mask, embedding rows, batchwise DropBlock) use the seed alone, so every
rank draws the same one. Under torch.compile the step and k0 are tensors the
loop overwrites in place: a new step does not recompile the graph.

Examples:
    >>> import torch, dropkit
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 4), dropkit.Dropout(0.5))
    >>> x = torch.ones(6, 4)
    >>> with dropkit.sample_addressed(model, seed=0) as addr:
    ...     addr.set_step(3)
    ...     whole = model(x)
    ...     addr.set_step(3, sample_offset=4)
    ...     tail = model(x[4:])
    >>> torch.equal(whole[4:], tail)
    True
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from .. import _validate, rng
from ..ops.address import address, derive_seed

__all__ = ["SampleAddressing", "sample_addressed", "layer_key", "derive_seed", "resolve", "refuse"]

_CALL_STRIDE = 0x9E3779B97F4A7C15  # odd, so n -> key + n * stride never repeats below 2^64 calls
_ACTIVE: SampleAddressing | None = None


def layer_key(name: str) -> int:
    """The stable 64-bit identity of the module called `name` (blake2b of its qualified name).

    Examples:
        >>> layer_key("0.drop") == layer_key("0.drop")
        True
    """
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little")


class SampleAddressing:
    """The state of one sample-addressed model: base seed, step, sample offset and the layer being run.

    Made by sample_addressed(); use it as a context manager.

    Args:
        model: the module whose dropout calls are addressed (its submodules' qualified names name the layers).
        seed: base seed, an int in [0, 2**64).
    """

    def __init__(self, model: torch.nn.Module, seed: int) -> None:
        _validate.module_type(model, (torch.nn.Module,), "model")
        if seed is None:
            raise TypeError("seed must be an int in [0, 2**64), got None: sample_addressed needs an explicit base seed")
        self.seed = _validate.offset(seed, "seed")  # the uint64 check of _validate.seed, None refused above
        self.model = model
        self.step = 0
        self.sample_offset = 0
        # Read by compiled graphs; overwritten in place so a new value is data, not a recompile.
        self.step_tensor = torch.zeros((), dtype=torch.int64)
        self.sample_tensor = torch.zeros((), dtype=torch.int64)
        self._seeds: dict[int, int] = {}
        self._frames: list[list[int]] = []
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def set_step(self, step: int, sample_offset: int = 0) -> None:
        """Address the next forward passes: training step `step`, local batch starting at global sample `sample_offset`."""
        self.step = _validate.offset(step, "step")
        self.sample_offset = _validate.offset(sample_offset, "sample_offset")
        self.step_tensor.fill_(rng.to_int64(self.step))
        self.sample_tensor.fill_(rng.to_int64(self.sample_offset))
        self._seeds.clear()

    def layer_seed(self, name: str) -> int:
        """The seed that layer `name` uses at the current step (its first call in a forward)."""
        return derive_seed(self.seed, layer_key(name), self.step)

    def __enter__(self) -> SampleAddressing:
        global _ACTIVE
        if _ACTIVE is not None:
            raise RuntimeError("sample_addressed blocks cannot be nested: one model's addressing is already active")
        for name, module in self.model.named_modules():
            self._handles.append(module.register_forward_pre_hook(self._enter_hook(layer_key(name))))
            self._handles.append(module.register_forward_hook(self._exit_hook, always_call=True))
        _ACTIVE = self
        return self

    def __exit__(self, *exc: object) -> None:
        global _ACTIVE
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._frames.clear()
        _ACTIVE = None

    def _enter_hook(self, key: int) -> Callable[[torch.nn.Module, tuple[Any, ...]], None]:
        def hook(module: torch.nn.Module, args: tuple[Any, ...]) -> None:
            self._frames.append([key, 0])

        return hook

    def _exit_hook(self, module: torch.nn.Module, args: tuple[Any, ...], output: Any) -> None:
        self._frames.pop()

    def resolve(self, offset: int, shape: Sequence[int], batch_dim: int | None) -> tuple[int | torch.Tensor, int]:
        """(seed, offset) of the current call; see the module docstring."""
        if not self._frames:
            raise RuntimeError(
                "sample-addressed dropout was called outside the forward of any module of the addressed model "
                "(for example a recompute of a checkpointed function that is not a module): "
                "pass seed= explicitly or make the function a module"
            )
        frame = self._frames[-1]
        key = (frame[0] + frame[1] * _CALL_STRIDE) % 2**64
        frame[1] += 1
        per_sample = 0 if batch_dim is None else math.prod(shape[batch_dim + 1 :])
        if torch.compiler.is_compiling():
            return address(
                self.step_tensor, self.sample_tensor, rng.to_int64(self.seed), rng.to_int64(key), per_sample
            ), offset
        seed = self._seeds.get(key)
        if seed is None:
            seed = self._seeds[key] = derive_seed(self.seed, key, self.step)
        return seed, (offset + self.sample_offset * per_sample) % 2**64


def sample_addressed(model: torch.nn.Module, *, seed: int) -> SampleAddressing:
    """Address `model`'s dropout masks by (seed, layer name, step, global sample index).

    Args:
        model: the module to address; every submodule's dropout calls are covered.
        seed: base seed, an int in [0, 2**64).

    Examples:
        >>> import dropkit
        >>> model = torch.nn.Sequential(torch.nn.Linear(4, 4), dropkit.Dropout(0.5))
        >>> with sample_addressed(model, seed=1) as addr:
        ...     addr.set_step(0)
        ...     y = model(torch.ones(2, 4))
    """
    return SampleAddressing(model, seed)


def resolve(
    seed: int | torch.Tensor | None, offset: int, shape: Sequence[int], batch_dim: int | None = 0
) -> tuple[int | torch.Tensor | None, int]:
    """The (seed, offset) a dropout call uses: unchanged outside sample_addressed or when `seed` is given.

    Args:
        seed: the call's validated seed (None: draw or address it).
        offset: the call's validated offset.
        shape: shape of the mask the call draws (the input's, or the small per-channel/per-sample grid).
        batch_dim: the mask's sample dimension (all dimensions before it of size 1), or None for a mask
            shared by the whole batch.

    Returns:
        (seed, offset): ints in eager code; under torch.compile in addressed mode the seed is
        dropkit::address's (seed, offset shift) tensor, which every op reads through ops.seed.stream.
    """
    if _ACTIVE is None or seed is not None:
        return seed, offset
    return _ACTIVE.resolve(offset, shape, batch_dim)


def refuse(fn: str, why: str) -> None:
    """Raise if sample-addressed mode is on: `fn`'s output cannot be made independent of the batch split."""
    if _ACTIVE is not None:
        raise ValueError(f"{fn} cannot be sample-addressed: {why}")
