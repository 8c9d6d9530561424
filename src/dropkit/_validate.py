"""Every argument check of dropkit and its message, in one place.

Each check returns the value it accepts, so callers write `p = _validate.p(p)`.
Messages name the argument and the value received.
"""

from __future__ import annotations

import math
import numbers

import torch

__all__ = ["p", "seed", "offset", "float_tensor", "inplace_target", "choice", "backend", "positive_int", "probs_labels", "scores_positives", "batched_tensor"]

_FLOAT_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def p(value, name: str = "p") -> float:
    """A probability in [0, 1]: TypeError for a non-number, ValueError outside the range or NaN."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a float in [0, 1], got {value!r} of type {type(value).__name__}")
    value = float(value)
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, got {value!r}")
    return value


def _uint64(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int in [0, 2**64), got {value!r} of type {type(value).__name__}")
    value = int(value)
    if not 0 <= value < 2**64:
        raise ValueError(f"{name} must be in [0, 2**64), got {value!r}")
    return value


def seed(value, name: str = "seed") -> int | None:
    """None, or a 64-bit unsigned seed."""
    return None if value is None else _uint64(value, name)


def offset(value, name: str = "offset") -> int:
    """A 64-bit unsigned element offset into the random stream."""
    return _uint64(value, name)


def float_tensor(value, name: str = "input") -> torch.Tensor:
    """A torch tensor of a floating dtype dropkit supports."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.dtype not in _FLOAT_DTYPES:
        raise TypeError(
            f"{name} must have a floating dtype (float32, float64, float16 or bfloat16), got dtype {value.dtype}"
        )
    return value


def inplace_target(value: torch.Tensor, name: str = "input") -> torch.Tensor:
    """A tensor that may be overwritten: not a leaf that requires grad."""
    if value.is_leaf and value.requires_grad and torch.is_grad_enabled():
        raise RuntimeError(
            f"inplace=True cannot overwrite {name}: it is a leaf tensor that requires grad; "
            "use inplace=False or apply dropout to a non-leaf tensor"
        )
    return value


def choice(value, options, name: str):
    """One of a fixed set of options."""
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}, got {value!r}")
    return value


def backend(value, name: str = "backend") -> str:
    """A kernel backend name (see dropkit.kernels)."""
    from .kernels import BACKENDS

    return choice(value, BACKENDS, name)


def positive_int(value, name: str) -> int:
    """An int >= 1 (a count such as samples or chunk): TypeError for a non-int, ValueError below 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= 1, got {value!r} of type {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return int(value)


def probs_labels(probs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Class probabilities (N, C, ...) and integer labels (N, ...) in [0, C) that match them."""
    if not probs.is_floating_point() or probs.dim() < 2:
        raise ValueError(f"probs must be a floating tensor of shape (N, C, ...), got dtype {probs.dtype} and shape {tuple(probs.shape)}")
    expected = (probs.shape[0], *probs.shape[2:])
    if labels.is_floating_point() or labels.dtype == torch.bool or tuple(labels.shape) != expected:
        raise ValueError(
            f"labels must be integers of shape {expected} to match probs of shape {tuple(probs.shape)}, "
            f"got dtype {labels.dtype} and shape {tuple(labels.shape)}"
        )
    if labels.numel() and (labels.min() < 0 or labels.max() >= probs.shape[1]):
        raise ValueError(f"labels must lie in [0, {probs.shape[1]}), got values from {int(labels.min())} to {int(labels.max())}")
    return probs, labels.long()


def scores_positives(scores: torch.Tensor, positives: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Real-valued scores without NaN and a boolean tensor of the same shape."""
    if scores.is_complex() or scores.dtype == torch.bool or tuple(scores.shape) != tuple(positives.shape):
        raise ValueError(
            f"scores must be real numbers with the shape of the labels {tuple(positives.shape)}, "
            f"got dtype {scores.dtype} and shape {tuple(scores.shape)}"
        )
    if positives.dtype != torch.bool:
        raise ValueError(f"positives must be a bool tensor, got dtype {positives.dtype}")
    if scores.is_floating_point() and bool(scores.isnan().any()):
        raise ValueError("scores must not contain NaN")
    return scores, positives


def batched_tensor(value, name: str = "x") -> torch.Tensor:
    """A tensor of any dtype with a leading batch dimension (at least 1-D)."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.dim() == 0:
        raise ValueError(f"{name} must have a batch dimension first, got a 0-dim tensor")
    return value
