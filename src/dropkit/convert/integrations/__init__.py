"""Glue for third-party model libraries (transformers, timm, PEFT) through their own extension points.

dropkit.replace_dropout calls `route` on every model; a library's glue runs only
when that library is already imported, so neither is ever a dependency.

Example:
    >>> routing = route(torch.nn.Linear(2, 2))
    >>> routing.routed, routing.unrouted
    ([], [])
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
from collections.abc import Callable

import torch

__all__ = ["Routing", "route"]

# Library module -> dropkit glue module, imported only when the library already is (torch always is).
_GLUE = {"torch": "multihead", "transformers": "transformers", "timm": "timm", "peft": "peft"}


@dataclasses.dataclass
class Routing:
    """What the glue did to a model: attention modules routed, modules it could not route, rate holders, converters."""

    routed: list[str] = dataclasses.field(default_factory=list)
    unrouted: list[str] = dataclasses.field(default_factory=list)
    rate_holders: set[int] = dataclasses.field(default_factory=set)
    converters: dict[type, Callable[[torch.nn.Module], torch.nn.Module]] = dataclasses.field(default_factory=dict)


def route(model: torch.nn.Module) -> Routing:
    """Route `model`'s attention (and LoRA adapter) dropout through dropkit with every glue whose library is imported."""
    routing = Routing()
    for library, glue in _GLUE.items():
        if library not in sys.modules:
            continue
        module = importlib.import_module(f".{glue}", __name__)
        routed, unrouted, holders = module.route(model)
        routing.routed += routed
        routing.unrouted += unrouted
        routing.rate_holders |= holders
        routing.converters.update(getattr(module, "CONVERTERS", {}))
    return routing
