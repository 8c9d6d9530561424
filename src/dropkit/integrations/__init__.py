"""Glue for third-party model libraries (transformers, timm) through their own extension points.

dropkit.replace_dropout calls `route` on every model; a library's glue runs only
when that library is already imported, so neither is ever a dependency.

Example:
    >>> routing = route(torch.nn.Linear(2, 2))
    >>> routing.routed, routing.unrouted
    ([], {})
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
from collections.abc import Callable

import torch

__all__ = ["Routing", "route"]

# Library module -> dropkit glue module, imported only when the library already is (torch always is).
_GLUE = {"torch": "multihead", "transformers": "transformers", "timm": "timm"}


@dataclasses.dataclass
class Routing:
    """What the glue did to a model: attention modules routed, dropout it leaves torch's (name -> why), converters, example.

    `example` is an input for one forward of the model (for dropkit.integrations.intercept.trace),
    built by the first glue that knows the model's kind from its config, or None.
    """

    routed: list[str] = dataclasses.field(default_factory=list)
    unrouted: dict[str, str] = dataclasses.field(default_factory=dict)
    example: object = None
    converters: dict[type, Callable[[torch.nn.Module], torch.nn.Module]] = dataclasses.field(default_factory=dict)


def route(model: torch.nn.Module) -> Routing:
    """Route `model`'s attention dropout through dropkit with every glue whose library is imported."""
    routing = Routing()
    for library, glue in _GLUE.items():
        if library not in sys.modules:
            continue
        module = importlib.import_module(f".{glue}", __name__)
        routed, unrouted = module.route(model)
        routing.routed += routed
        routing.unrouted |= unrouted
        if routing.example is None and hasattr(module, "example_input"):
            routing.example = module.example_input(model)
        routing.converters.update(getattr(module, "CONVERTERS", {}))
    return routing
