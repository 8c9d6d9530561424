"""References for the kernel and functional tests: the spec's dropout and the fused op, built from numpy masks and torch ops.

Also the device and skip rule every Triton test shares: CUDA when present, else
CPU tensors under TRITON_INTERPRET=1.
"""

import os

import pytest
import torch

from dropkit import rng
from dropkit.kernels import ACTIVATIONS

TRITON_DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
needs_triton = pytest.mark.skipif(
    TRITON_DEVICE == "cpu" and os.environ.get("TRITON_INTERPRET") != "1",
    reason="Triton kernels need a GPU or TRITON_INTERPRET=1 (set before triton is imported)",
)


def keep(shape, p: float, seed: int, offset: int, device="cpu") -> torch.Tensor:
    return torch.from_numpy(rng.keep_mask(tuple(shape), p, seed, offset)).to(device)


def compute_type(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def dropout(x: torch.Tensor, seed: int, offset: int, p: float) -> torch.Tensor:
    """The spec's output: keep * x * scale, in float32 then one rounding for half types."""
    c = compute_type(x.dtype)
    scale = torch.tensor(rng.scale(p), dtype=c)
    y = torch.where(keep(x.shape, p, seed, offset, x.device), x.to(c) * scale.to(x.device), 0.0)
    return y.to(x.dtype)


def activation(h: torch.Tensor, name) -> torch.Tensor:
    """The table's torch function (dropkit.kernels.ACTIVATIONS): torch.relu; exact gelu, h/2 * (1 + erf(h / sqrt 2))."""
    return h if name is None else ACTIVATIONS[name].function(h)


def activation_grad(h: torch.Tensor, name) -> torch.Tensor:
    """activation'(h) through torch's own autograd."""
    h = h.detach().requires_grad_()
    (g,) = torch.autograd.grad(activation(h, name).sum(), h)
    return g


def fused(x, bias, residual, seed, offset, p, name):
    """residual + dropout(activation(x + bias)) with every step in the compute type and one final rounding."""
    c = compute_type(x.dtype)
    h = x.to(c) if bias is None else x.to(c) + bias.to(c)
    a = dropout(activation(h, name), seed, offset, p) if p > 0 else activation(h, name)
    return (residual.to(c) + a).to(x.dtype)


def fused_grad_h(grad, x, bias, seed, offset, p, name):
    """Gradient with respect to x + bias: activation'(h) * dropout(grad), one final rounding."""
    c = compute_type(x.dtype)
    h = x.to(c) if bias is None else x.to(c) + bias.to(c)
    d = dropout(grad.to(c), seed, offset, p) if p > 0 else grad.to(c)
    return (d if name is None else d * activation_grad(h, name)).to(x.dtype)


def assert_gelu_close(got, ref, h_bound):
    """Values from different erf implementations (torch's, libm's, CUDA's) agree to rounding.

    Tolerance: 2 eps of the value, plus 2 eps of |h| * scale for the cancellation
    in 1 + erf(h / sqrt 2) when h is very negative (an erf ulp near -1 is eps).
    """
    eps = torch.finfo(got.dtype).eps
    diff = (got.double() - ref.double()).abs()
    tol = 2 * eps * (ref.double().abs() + h_bound.double().abs())
    assert bool((diff <= tol).all()), f"max excess {(diff - tol).max().item():.3g} over tolerance 2 eps = {2 * eps:.3g}"
