"""Alpha dropout's transform and its op (Klambauer et al. 2017, "Self-Normalizing Neural Networks").

Dropped elements are set to SELU's negative saturation -lambda*alpha, then an
affine map a*y + b restores zero mean and unit variance; the keep mask is the
spec's, so backward recomputes it instead of storing it.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .. import kernels, rng
from . import compiled, noise

__all__ = ["alpha_coefficients", "alpha_transform", "alpha_dropout"]

_SELU_ALPHA = 1.7580993408473766  # lambda * alpha of SELU, the value torch.nn.AlphaDropout uses


def alpha_coefficients(p: float) -> tuple[float, float, float]:
    """(a, kept shift, dropped value) for 0 <= p < 1: y = a*x + shift if kept, else the dropped value."""
    a = 1.0 / math.sqrt((_SELU_ALPHA * _SELU_ALPHA * p + 1.0) * (1.0 - p))
    return a, _SELU_ALPHA * a * p, -_SELU_ALPHA * a * (1.0 - p)


def alpha_transform(x: Tensor, keep: Tensor, p: float, linear: bool = False) -> Tensor:
    """The one alpha formula: a*x + shift where keep (broadcast to x), the dropped value elsewhere.

    linear=True gives its Jacobian applied to x: a*x where keep, 0 elsewhere.
    """
    a, shift, dropped = alpha_coefficients(p)
    zero = torch.zeros((), dtype=x.dtype, device=x.device)
    if linear:
        return torch.where(keep, x * a, zero)
    return torch.where(keep, x * a + shift, zero + dropped)


def _alpha(x: Tensor, seed: int, offset: int, p: float, linear: bool) -> Tensor:
    bits = kernels.for_tensor(x).random_bits(x.numel(), seed, offset, x.device).to(x.device)
    return alpha_transform(x, (bits >= rng.threshold(p)).view(x.shape), p, linear)


@torch.library.custom_op("dropkit::alpha_dropout", mutates_args=())
def alpha_dropout(x: Tensor, seed: Tensor, offset: int, p: float, linear: bool) -> Tensor:
    """Alpha dropout of x under (seed, offset), p < 1; linear=True applies only its Jacobian."""
    return noise.run(_alpha, x, seed, offset, p, linear)


def _alpha_compiled(x: Tensor, seed: Tensor, offset: int, p: float, linear: bool) -> Tensor:
    return alpha_transform(x, compiled.keep_mask(x.shape, p, seed, offset, x), p, linear)


noise.register(alpha_dropout, _alpha_compiled)
