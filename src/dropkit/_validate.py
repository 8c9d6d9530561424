"""Every argument check of dropkit and its message, in one place.

Each check returns the value it accepts, so callers write `p = _validate.p(p)`.
Messages name the argument and the value received.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection
from typing import TypeVar

import torch

__all__ = [
    "p",
    "seed",
    "offset",
    "float_tensor",
    "inplace_target",
    "choice",
    "positive_int",
    "probs_labels",
    "scores_positives",
    "batched_tensor",
    "RankError",
    "rank",
    "min_rank",
    "shape_str",
    "non_negative_int",
    "non_negative",
    "positive",
    "open_p",
    "p_tensor",
    "module_type",
    "parameter_name",
    "schedule_spec",
    "bias_for",
    "linear_weights",
    "same_as",
    "eager_generator",
]

_T = TypeVar("_T")

_FLOAT_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def p(value: object, name: str = "p") -> float:
    """A probability in [0, 1]: TypeError for a non-number, ValueError outside the range or NaN."""
    if type(value) is float and 0.0 <= value <= 1.0:  # the common case first: dropout's hot path
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a float in [0, 1], got {value!r} of type {type(value).__name__}")
    value = float(value)
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, got {value!r}")
    return value


def _uint64(value: object, name: str) -> int:
    if type(value) is int and 0 <= value < 2**64:  # the common case first: dropout's hot path
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int in [0, 2**64), got {value!r} of type {type(value).__name__}")
    value = int(value)
    if not 0 <= value < 2**64:
        raise ValueError(f"{name} must be in [0, 2**64), got {value!r}")
    return value


def seed(value: object, name: str = "seed") -> int | None:
    """None, or a 64-bit unsigned seed."""
    return None if value is None else _uint64(value, name)


def offset(value: object, name: str = "offset") -> int:
    """A 64-bit unsigned element offset into the random stream."""
    return _uint64(value, name)


def float_tensor(value: object, name: str = "input") -> torch.Tensor:
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


def choice(value: _T, options: Collection[object], name: str) -> _T:
    """One of a fixed set of options."""
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}, got {value!r}")
    return value


def positive_int(value: object, name: str) -> int:
    """An int >= 1 (a count such as samples or chunk): TypeError for a non-int, ValueError below 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= 1, got {value!r} of type {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return int(value)


# --- the dropout family ---


def shape_str(t: torch.Tensor) -> str:
    return "(" + ", ".join(map(str, t.shape)) + ")"


class RankError(ValueError, RuntimeError):
    """An input of a rank the function does not take.

    A ValueError, as dropkit's argument errors are, and a RuntimeError, as torch's rank
    errors are, so `except RuntimeError` code written for torch keeps working.
    """


def rank(input: torch.Tensor, layouts: dict[int, str], fn: str, name: str = "input") -> int:
    """An input whose rank is one of `layouts` (rank -> layout such as "(N, C, H, W)"); returns the rank."""
    if input.dim() not in layouts:
        ranks = " or ".join(f"{r}D" for r in layouts)
        expected = " or ".join(f"{r}-D {layout}" for r, layout in layouts.items())
        raise RankError(
            f"{fn}: Expected {ranks} {name}, but received a {input.dim()}D {name} of shape {shape_str(input)} "
            f"({fn} takes {expected})"
        )
    return input.dim()


def min_rank(input: torch.Tensor, r: int, layout: str, fn: str) -> torch.Tensor:
    """An input of rank at least r, laid out as `layout`."""
    if input.dim() < r:
        raise ValueError(
            f"{fn} expects input of at least {r} dimensions {layout}, got shape {shape_str(input)} ({input.dim()}-D)"
        )
    return input


def non_negative_int(value: object, name: str) -> int:
    """An int >= 0 (schedule steps)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a non-negative int, got {value!r} of type {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return int(value)


def non_negative(value: object, name: str) -> float:
    """A finite float >= 0 (a noise stddev, a regulariser weight)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a finite float >= 0, got {value!r} of type {type(value).__name__}")
    value = float(value)
    if not (math.isfinite(value) and value >= 0.0):
        raise ValueError(f"{name} must be a finite float >= 0, got {value!r}")
    return value


def positive(value: object, name: str) -> float:
    """A finite float > 0 (a temperature)."""
    value = non_negative(value, name)
    if value == 0.0:
        raise ValueError(f"{name} must be a finite float > 0, got {value!r}")
    return value


def open_p(value: object, name: str = "p") -> float:
    """A probability strictly between 0 and 1 (a rate stored as a logit)."""
    value = p(value, name)
    if value in (0.0, 1.0):
        raise ValueError(f"{name} must be strictly between 0 and 1, got {value!r}")
    return value


def p_tensor(value: object, name: str = "p") -> torch.Tensor:
    """A floating one-element tensor holding a rate (its value is not read: no device sync)."""
    if not isinstance(value, torch.Tensor) or not value.is_floating_point() or value.numel() != 1:
        raise TypeError(f"{name} must be a float or a one-element floating tensor, got {value!r}")
    return value


def module_type(value: object, types: type[_T] | tuple[type[_T], ...], name: str) -> _T:
    """A module of one of `types`."""
    if not isinstance(value, types):
        names = ", ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
        raise TypeError(f"{name} must be an instance of {names}, got {type(value).__name__}")
    return value


def probs_labels(probs: torch.Tensor, labels: torch.Tensor, name: str = "probs") -> tuple[torch.Tensor, torch.Tensor]:
    """Class probabilities (or logits: `name`) (N, C, ...) and integer labels (N, ...) in [0, C) that match them."""
    if not probs.is_floating_point() or probs.dim() < 2:
        raise ValueError(
            f"{name} must be a floating tensor of shape (N, C, ...), got dtype {probs.dtype} and shape {tuple(probs.shape)}"
        )
    expected = (probs.shape[0], *probs.shape[2:])
    if labels.is_floating_point() or labels.dtype == torch.bool or tuple(labels.shape) != expected:
        raise ValueError(
            f"labels must be integers of shape {expected} to match {name} of shape {tuple(probs.shape)}, "
            f"got dtype {labels.dtype} and shape {tuple(labels.shape)}"
        )
    if labels.numel() and (labels.min() < 0 or labels.max() >= probs.shape[1]):
        raise ValueError(
            f"labels must lie in [0, {probs.shape[1]}), got values from {int(labels.min())} to {int(labels.max())}"
        )
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


def parameter_name(module: torch.nn.Module, name: str) -> str:
    """The name of a parameter that `module` holds directly."""
    if not isinstance(name, str) or not isinstance(module._parameters.get(name), torch.nn.Parameter):
        held = ", ".join(map(repr, module._parameters)) or "none"
        raise ValueError(f"name must name a parameter of the {type(module).__name__}, got {name!r} (it holds {held})")
    return name


def batched_tensor(value: object, name: str = "x") -> torch.Tensor:
    """A tensor of any dtype with a leading batch dimension (at least 1-D)."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.dim() == 0:
        raise ValueError(f"{name} must have a batch dimension first, got a 0-dim tensor")
    return value


def schedule_spec(spec: object, options: Collection[str]) -> tuple[str, int]:
    """A schedule as "NAME" or "NAME:STEPS" (NAME one of options); returns (name, steps, 0 if absent)."""
    if not isinstance(spec, str):
        raise TypeError(f"schedule must be a str such as 'early:500', got {spec!r} of type {type(spec).__name__}")
    name, sep, steps = spec.partition(":")
    choice(name, options, "schedule")
    if sep and not steps.isdigit():
        raise ValueError(f"schedule must look like NAME or NAME:STEPS with STEPS a non-negative int, got {spec!r}")
    return name, int(steps) if steps else 0


def _matching(value: object, x: torch.Tensor, name: str) -> torch.Tensor:
    t = float_tensor(value, name)
    if t.dtype != x.dtype or t.device != x.device:
        raise TypeError(f"{name} must have x's dtype and device ({x.dtype}, {x.device}), got ({t.dtype}, {t.device})")
    return t


def bias_for(value: object, x: torch.Tensor, name: str = "bias") -> torch.Tensor | None:
    """None, or a 1-D tensor of size x.shape[-1] with x's dtype and device (added along x's last dim)."""
    if value is None:
        return None
    value = _matching(value, x, name)
    if x.dim() == 0 or value.shape != x.shape[-1:]:
        raise ValueError(
            f"{name} must be a 1-D tensor of size x.shape[-1] ({x.shape[-1] if x.dim() else 'x is 0-dim'}), "
            f"got shape {tuple(value.shape)}"
        )
    return value


def linear_weights(weight: object, bias: object, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """F.linear's (weight, bias) for input x: weight (out, x.shape[-1]), bias None or (out,), both x's dtype and device."""
    weight = _matching(weight, x, "weight")
    if weight.dim() != 2 or x.dim() == 0 or weight.shape[1] != x.shape[-1]:
        raise ValueError(
            f"weight must be a 2-D tensor (out_features, input.shape[-1]) = (*, "
            f"{x.shape[-1] if x.dim() else 'input is 0-dim'}), got shape {tuple(weight.shape)}"
        )
    if bias is not None:
        bias = _matching(bias, x, "bias")
        if bias.shape != weight.shape[:1]:
            raise ValueError(
                f"bias must be a 1-D tensor of size out_features ({weight.shape[0]}), got shape {tuple(bias.shape)}"
            )
    return weight, bias


def same_as(value: object, x: torch.Tensor, name: str) -> torch.Tensor:
    """A tensor with exactly x's shape, dtype and device."""
    value = _matching(value, x, name)
    if value.shape != x.shape:
        raise ValueError(f"{name} must have x's shape {tuple(x.shape)}, got {tuple(value.shape)}")
    return value


def eager_generator(value: torch.Generator | None, name: str = "generator") -> torch.Generator | None:
    """A generator, outside torch.compile: Dynamo cannot trace a draw from a torch.Generator."""
    if value is not None and torch.compiler.is_compiling():
        raise TypeError(
            f"{name}={value!r} cannot be used under torch.compile; pass seed=, or leave {name}=None "
            "to draw from torch's default generator (compiled code then draws as eager code does)"
        )
    return value
