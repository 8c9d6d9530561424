"""Glue for third-party model libraries (transformers, timm, PEFT) through their own extension points.

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
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # the glue modules are imported only when their library is
    from .intercept import Example

__all__ = ["Routing", "route", "register_on_import"]

# Library module -> dropkit glue module, imported only when the library already is (torch always is).
_GLUE = {"torch": "multihead", "transformers": "transformers", "timm": "timm", "peft": "peft"}


@dataclasses.dataclass
class Routing:
    """What the glue did to a model: attention modules routed, dropout it leaves torch's (name -> why), converters, example.

    `example` is an input for one forward of the model (for dropkit.convert.integrations.intercept.trace),
    built by the first glue that knows the model's kind from its config, or None.
    """

    routed: list[str] = dataclasses.field(default_factory=list)
    unrouted: dict[str, str] = dataclasses.field(default_factory=dict)
    example: Example | None = None
    converters: dict[type, Callable[[torch.nn.Module], torch.nn.Module]] = dataclasses.field(default_factory=dict)


def route(model: torch.nn.Module) -> Routing:
    """Route `model`'s attention (and LoRA adapter) dropout through dropkit with every glue whose library is imported."""
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


class _RegisterAfterImport(importlib.abc.MetaPathFinder):
    """Runs `hook` right after the module `name` is executed, so dropkit never imports it itself."""

    def __init__(self, name: str, hook: Callable[[], None]) -> None:
        self.name, self.hook = name, hook

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)  # once, and so the real finders answer
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            exec_module, hook = spec.loader.exec_module, self.hook

            def exec_then_hook(module: ModuleType) -> None:
                exec_module(module)
                hook()

            spec.loader.exec_module = exec_then_hook  # type: ignore[method-assign]  # this one loader, on purpose
        return spec


def _register_transformers() -> None:
    # The glue registers when imported; where it is being imported (it imports transformers) it will.
    if f"{__name__}.transformers" not in sys.modules:
        importlib.import_module(f"{__name__}.transformers")


def register_on_import() -> None:
    """Make attn_implementation="dropkit" known to transformers: now if it is imported, else when it is.

    Called by `import dropkit`; costs no import of transformers.
    """
    if "transformers.modeling_utils" in sys.modules:
        _register_transformers()
    elif importlib.util.find_spec("transformers") is not None:
        sys.meta_path.insert(0, _RegisterAfterImport("transformers.modeling_utils", _register_transformers))
