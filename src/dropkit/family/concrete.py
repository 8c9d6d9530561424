"""Concrete dropout: dropout whose rate is learned (Gal, Hron and Kendall 2017, "Concrete Dropout").

The Bernoulli mask is relaxed to a concrete (Gumbel-softmax) one so that the
loss is differentiable in p; ConcreteDropout (dropkit.nn) wraps a layer and
adds the paper's regulariser. The uniform noise is the spec's stream, so it
is recomputed in backward (dropkit::concrete_dropout).

Example:
    >>> p = torch.tensor(0.2, requires_grad=True)
    >>> concrete_dropout(torch.ones(4), p, seed=1).sum().backward()
"""

from __future__ import annotations

import torch
from torch import Tensor

from .. import _validate, addressing, ops, rng
from ._common import active

__all__ = ["concrete_dropout"]


def concrete_dropout(
    input: Tensor,
    p: float | Tensor,
    temperature: float = 0.1,
    training: bool = True,
    *,
    seed: int | None = None,
    offset: int = 0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """x * (1 - d) / (1 - p), d = sigmoid((logit p + logit u) / temperature), u uniform from the spec's stream.

    Args:
        input: floating tensor of any shape.
        p: drop rate, a float in [0, 1] or a one-element tensor (differentiable; its value is not checked).
        temperature: relaxation temperature > 0; as it goes to 0 the mask becomes Bernoulli(1-p).
        training, seed, offset, generator: as in dropkit.functional.dropout. Element i uses
            u = (r + 0.5) / 2^32 of stream index offset + i.

    Example:
        >>> concrete_dropout(torch.ones(3), 0.5, seed=1).shape
        torch.Size([3])
    """
    _validate.float_tensor(input)
    if isinstance(p, Tensor):
        p = _validate.p_tensor(p)
    else:
        p = torch.tensor(_validate.p(p), dtype=input.dtype, device=input.device)
    temperature = _validate.positive(temperature, "temperature")
    seed, offset = _validate.seed(seed), _validate.offset(offset)
    if not active(training):
        return input
    seed, offset = addressing.resolve(seed, offset, input.shape)
    seed_t = ops.seed_tensor(seed, generator)
    return ops.concrete_dropout(input, p, seed_t, rng.to_int64(offset), temperature)
