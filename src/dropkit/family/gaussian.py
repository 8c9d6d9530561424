"""Gaussian dropout and Gaussian noise: normals from the spec's Philox stream (Box-Muller).

gaussian_dropout multiplies by 1 + sqrt(p/(1-p)) z, noise of mean 1 and variance
p/(1-p) (Srivastava et al. 2014, section 10; Keras GaussianDropout).
gaussian_noise adds stddev * z (Keras GaussianNoise). z is recomputed from
(seed, offset) in backward; docs/family.md says which stream words feed it.

Examples:
    >>> y = gaussian_dropout(torch.ones(4), 0.5, seed=1)
    >>> y = gaussian_noise(torch.zeros(4), 0.1, seed=1)
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .. import _validate, ops
from ._common import DropoutBase, active, check, resolve_seed, zeros_with_zero_grad

__all__ = ["gaussian_dropout", "gaussian_noise", "GaussianDropout", "GaussianNoise"]


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
        training: as in dropkit.functional.dropout.
        seed: as in dropkit.functional.dropout.
        offset: as in dropkit.functional.dropout.
        generator: as in dropkit.functional.dropout.

    Examples:
        >>> gaussian_dropout(torch.ones(2, 3), 0.2, seed=3).shape
        torch.Size([2, 3])
    """
    p, seed, offset = check(input, p, seed, offset)
    if not active(training) or p == 0.0:
        return input
    resolved, offset = resolve_seed(seed, offset, generator, input.shape)
    if p == 1.0:
        return zeros_with_zero_grad(input)
    return ops.apply_noise(ops.gaussian, input, resolved, offset, math.sqrt(p / (1.0 - p)), 0.0)


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
        training: as in dropkit.functional.dropout.
        seed: as in dropkit.functional.dropout.
        offset: as in dropkit.functional.dropout.
        generator: as in dropkit.functional.dropout.

    Examples:
        >>> gaussian_noise(torch.zeros(2, 3), 0.1, seed=3).shape
        torch.Size([2, 3])
    """
    _validate.float_tensor(input)
    stddev = _validate.non_negative(stddev, "stddev")
    seed, offset = _validate.seed(seed), _validate.offset(offset)
    if not active(training) or stddev == 0.0:
        return input
    resolved, offset = resolve_seed(seed, offset, generator, input.shape)
    return ops.apply_noise(ops.gaussian, input, resolved, offset, 0.0, stddev)


class GaussianDropout(DropoutBase):
    """Multiplicative Gaussian noise of mean 1 and variance p/(1-p) (Srivastava et al. 2014; Keras GaussianDropout).

    Args:
        p: rate; the noise has the variance Bernoulli dropout at rate p has. p = 1 gives zeros.
        generator: torch.Generator the per-call seeds are drawn from (default: torch's; eager only).

    Shape:
        Input: any shape. Output: same shape.

    Examples:
        >>> GaussianDropout(0.1)
        GaussianDropout(p=0.1)
    """

    kind = "gaussian"

    def __init__(self, p: float = 0.5, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.p = _validate.p(p)
        self.generator = generator

    def forward(self, input: Tensor) -> Tensor:
        return gaussian_dropout(input, self.p, self.training, generator=self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class GaussianNoise(DropoutBase):
    """Additive Gaussian noise of standard deviation `stddev` in training (Keras GaussianNoise).

    Args:
        stddev: standard deviation of the noise (finite, >= 0).
        generator: torch.Generator the per-call seeds are drawn from (default: torch's; eager only).

    Shape:
        Input: any shape. Output: same shape.

    Examples:
        >>> GaussianNoise(0.1)
        GaussianNoise(stddev=0.1)
    """

    kind = "gaussian_noise"
    has_rate = False  # make_dropout's number is its stddev

    def __init__(self, stddev: float, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.stddev = _validate.non_negative(stddev, "stddev")
        self.generator = generator

    def forward(self, input: Tensor) -> Tensor:
        return gaussian_noise(input, self.stddev, self.training, generator=self.generator)

    def extra_repr(self) -> str:
        return f"stddev={self.stddev}"
