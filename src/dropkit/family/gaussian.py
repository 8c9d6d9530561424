"""Gaussian dropout and Gaussian noise: normals from the spec's Philox stream (Box-Muller).

gaussian_dropout multiplies by 1 + sqrt(p/(1-p)) z, noise of mean 1 and variance
p/(1-p) (Srivastava et al. 2014, section 10; Keras GaussianDropout).
gaussian_noise adds stddev * z (Keras GaussianNoise). z is recomputed from
(seed, offset) in backward; docs/family.md says which stream words feed it.

Example:
    >>> y = gaussian_dropout(torch.ones(4), 0.5, seed=1)
    >>> y = gaussian_noise(torch.zeros(4), 0.1, seed=1)
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .. import _validate, addressing, ops
from ._common import active, check

__all__ = ["gaussian_dropout", "gaussian_noise"]


def gaussian_dropout(
    input: Tensor,
    p: float = 0.5,
    training: bool = True,
    *,
    seed: int | None = None,
    offset: int = 0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Multiply each element by 1 + sqrt(p/(1-p)) z, z ~ N(0, 1) from the spec's stream.

    p = 1 (infinite variance) gives zeros and a zero gradient, the limit of dropping everything.

    Args:
        input: floating tensor of any shape.
        p: rate in [0, 1]; the noise variance is p/(1-p), as Bernoulli dropout's at rate p.
        training, seed, offset, generator: as in dropkit.functional.dropout.

    Example:
        >>> gaussian_dropout(torch.ones(2, 3), 0.2, seed=3).shape
        torch.Size([2, 3])
    """
    p, seed, offset = check(input, p, seed, offset)
    if not active(training) or p == 0.0:
        return input
    seed, offset = addressing.resolve(seed, offset, input.shape)
    if p == 1.0:
        return ops.apply_dropout(input, 1.0, seed, offset, generator, inplace=False, bitpacked=False)
    return ops.apply_noise(input, "gaussian", [math.sqrt(p / (1.0 - p)), 0.0], seed=seed, offset=offset, generator=generator)


def gaussian_noise(
    input: Tensor,
    stddev: float,
    training: bool = True,
    *,
    seed: int | None = None,
    offset: int = 0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Add stddev * z, z ~ N(0, 1) from the spec's stream; identity in eval.

    Args:
        input: floating tensor of any shape.
        stddev: standard deviation of the noise, finite and >= 0.
        training, seed, offset, generator: as in dropkit.functional.dropout.

    Example:
        >>> gaussian_noise(torch.zeros(2, 3), 0.1, seed=3).shape
        torch.Size([2, 3])
    """
    _validate.float_tensor(input)
    stddev = _validate.non_negative(stddev, "stddev")
    seed, offset = _validate.seed(seed), _validate.offset(offset)
    if not active(training) or stddev == 0.0:
        return input
    seed, offset = addressing.resolve(seed, offset, input.shape)
    return ops.apply_noise(input, "gaussian", [0.0, stddev], seed=seed, offset=offset, generator=generator)
