"""Dropout (Hinton et al. 2012; Srivastava et al. 2014): the function, its keep mask and the module.

Inverted dropout: in training each element is kept with probability 1-p and
scaled by 1/(1-p), so expectations match eval mode, where nothing changes.
Which elements are kept is a pure function of (seed, offset, index): see
docs/mask-spec.md.

Examples:
    >>> dropout(torch.ones(6), 0.5, seed=7)
    tensor([2., 2., 0., 0., 0., 2.])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .. import _validate, ops
from ..scale import sharding
from ._common import DropoutBase, active, init_rate, resolve_seed

__all__ = ["BACKWARD_MODES", "dropout", "keep_mask", "Dropout"]

BACKWARD_MODES = ("recompute", "bitpacked")


def dropout(
    input: Tensor,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    *,
    seed: int | None = None,
    offset: int = 0,
    generator: torch.Generator | None = None,
    backward: str = "recompute",
) -> Tensor:
    """Inverted dropout: zero each element with probability p, scale the rest by 1/(1-p).

    Args:
        input: a floating tensor of any shape, layout and device.
        p: probability of an element being zeroed, in [0, 1].
        training: apply dropout if True; return `input` unchanged if False
            (unless inside dropkit.mc_dropout, which keeps dropout on).
        inplace: overwrite `input` with the result.
        seed: 64-bit seed of the mask; None draws one from `generator`, or from
            torch's default generator, so torch.manual_seed makes runs reproducible.
        offset: index of the first element in the random stream; a shard that
            starts at element k of a batch passes offset + k to get its slice of the mask.
            A DTensor input (any placements) needs an explicit seed and gets its block of
            the unsharded mask (dropkit.scale.sharding).
        generator: torch.Generator to draw the seed from when seed is None.
        backward: "recompute" (default) saves only the seed and recomputes the mask
            in backward: 0 bytes per element. "bitpacked" saves the mask at 1 bit per
            element (0.125 bytes) and skips the recompute.

    Shape:
        Output has the shape and memory format of `input`.

    Examples:
        >>> dropout(torch.randn(8, 16), p=0.3, seed=1).shape
        torch.Size([8, 16])
    """
    _validate.float_tensor(input)
    p = _validate.p(p)
    seed = _validate.seed(seed)
    offset = _validate.offset(offset)
    _validate.choice(backward, BACKWARD_MODES, "backward")
    if not active(training) or p == 0.0:
        return input
    if type(input) is not Tensor and sharding.is_dtensor(input):
        return sharding.dtensor_dropout(input, p, training, seed=seed, offset=offset)
    if inplace:
        _validate.inplace_target(input)
    resolved, offset = resolve_seed(seed, offset, generator, input.shape)
    return ops.apply_dropout(input, p, resolved, offset, inplace=inplace, bitpacked=backward == "bitpacked")


def keep_mask(
    shape: Sequence[int], p: float, *, seed: int, offset: int = 0, device: torch.device | str | None = None
) -> Tensor:
    """The boolean keep mask that dropout(x, p, seed=seed, offset=offset) uses for x of `shape`.

    Args:
        shape: the shape of the tensor the mask is for.
        p: drop probability in [0, 1].
        seed: the 64-bit seed (required: a mask to compare against needs a known seed).
        offset: stream index of the first element.
        device: where the mask is made; default torch's default device.

    Examples:
        >>> keep_mask((2, 3), 0.5, seed=7)
        tensor([[ True,  True, False],
                [False, False,  True]])
    """
    p = _validate.p(p)
    if seed is None:
        raise TypeError("seed must be an int in [0, 2**64), got None: keep_mask needs an explicit seed")
    seed = _validate.offset(seed, "seed")  # the uint64 check of _validate.seed, None refused above
    offset = _validate.offset(offset)
    device = torch.get_default_device() if device is None else torch.device(device)
    return ops.keep_mask(torch.Size(shape), p, seed, offset, device)


class Dropout(torch.nn.Dropout, DropoutBase):
    """Inverted dropout with counter-based masks; a drop-in for torch.nn.Dropout.

    Zeroes each element with probability p in train() mode and scales the rest by
    1/(1-p); identity in eval() mode (Srivastava et al. 2014). It subclasses
    torch.nn.Dropout, so code that looks for torch's dropout layers finds it.

    Args:
        p: probability of an element being zeroed. Default: 0.5
        inplace: overwrite the input. Default: False
        backward: "recompute" (0 bytes saved per element) or "bitpacked" (1 bit).
        generator: torch.Generator the per-call seeds are drawn from (default: torch's; eager only).

    Shape:
        Input: any shape. Output: same shape and memory format.

    Examples:
        >>> m = Dropout(p=0.2)
        >>> m
        Dropout(p=0.2, inplace=False)
        >>> y = m(torch.randn(20, 16))
    """

    kind = "dropout"

    def __init__(
        self,
        p: float = 0.5,
        inplace: bool = False,
        *,
        backward: str = "recompute",
        generator: torch.Generator | None = None,
    ) -> None:
        init_rate(self, torch.nn.Dropout, p, inplace, generator)
        self.backward = _validate.choice(backward, BACKWARD_MODES, "backward")

    def forward(self, input: Tensor) -> Tensor:
        return dropout(input, self.p, self.training, self.inplace, generator=self.generator, backward=self.backward)

    def extra_repr(self) -> str:
        extra = "" if self.backward == "recompute" else f", backward={self.backward!r}"
        return f"p={self.p}, inplace={self.inplace}{extra}"


# --- the dropout family ---
