"""Alpha dropout's elementwise transform (Klambauer et al. 2017, "Self-Normalizing Neural Networks").

Dropped elements are set to SELU's negative saturation -lambda*alpha, then an
affine map a*y + b restores zero mean and unit variance; the keep mask is the
spec's, so backward recomputes it instead of storing it.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .. import kernels, rng

__all__ = ["alpha_coefficients", "alpha"]

_SELU_ALPHA = 1.7580993408473766  # lambda * alpha of SELU, the value torch.nn.AlphaDropout uses


def alpha_coefficients(p: float) -> tuple[float, float, float]:
    """(a, kept shift, dropped value) for 0 <= p < 1: y = a*x + shift if kept, else the dropped value."""
    a = 1.0 / math.sqrt((_SELU_ALPHA * _SELU_ALPHA * p + 1.0) * (1.0 - p))
    return a, _SELU_ALPHA * a * p, -_SELU_ALPHA * a * (1.0 - p)


def alpha(x: Tensor, seed: int, offset: int, args: list[float], linear: bool) -> Tensor:
    """Alpha dropout of x (args = (p,), p < 1); `linear` gives its Jacobian applied to x."""
    (p,) = args
    keep = kernels.for_tensor(x).random_bits(x.numel(), seed, offset, x.device).to(x.device) >= rng.threshold(p)
    keep = keep.view(x.shape)
    a, shift, dropped = alpha_coefficients(p)
    zero = torch.zeros((), dtype=x.dtype, device=x.device)
    if linear:
        return torch.where(keep, x * a, zero)
    return torch.where(keep, x * a + shift, zero + dropped)
