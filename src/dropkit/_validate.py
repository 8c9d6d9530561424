"""Every argument check of dropkit and its message, in one place.

Each check returns the value it accepts, so callers write `p = _validate.p(p)`.
Messages name the argument and the value received.
"""

from __future__ import annotations

import math
import numbers

import torch

__all__ = ["p", "seed", "offset", "float_tensor", "inplace_target", "choice", "backend", "positive_int"]

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
