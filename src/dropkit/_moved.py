"""Old module paths that moved, kept importable for one release with a DeprecationWarning.

`import dropkit.uncertainty` (or anything under an old path) warns once, naming the
new path, and hands back the new module itself, so both names share one module
object and one state. A finder, not a file per old path: the top level lists only
what is current, and removing the aliases after the release is deleting a table row.

Examples:
    >>> new_name("dropkit.old.sub", {"dropkit.old": "dropkit.new"})
    'dropkit.new.sub'
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType

__all__ = ["MOVED", "new_name", "install"]

# Old dotted path -> new dotted path; submodules of an old package follow it.
MOVED: dict[str, str] = {
    "dropkit.uncertainty": "dropkit.mc.predict",
    "dropkit.metrics": "dropkit.mc.metrics",
    "dropkit.calibration": "dropkit.mc.calibration",
    "dropkit.acquisition": "dropkit.mc.acquisition",
    "dropkit.addressing": "dropkit.scale.addressing",
    "dropkit.sharding": "dropkit.scale.sharding",
    "dropkit.control": "dropkit.convert",
    "dropkit.schedule": "dropkit.convert.schedule",
    "dropkit.integrations": "dropkit.convert.integrations",
    "dropkit.fused": "dropkit.family.fused",
    "dropkit.family.activation": "dropkit.family.fused",
    "dropkit.ops.activation": "dropkit.ops.fused",
}


def new_name(name: str, moved: dict[str, str] = MOVED) -> str | None:
    """The current path of module `name` if it sits at or under a moved path, else None."""
    for old, new in moved.items():
        if name == old or name.startswith(old + "."):
            return new + name[len(old) :]
    return None


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if new_name(fullname) is None:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        old, new = module.__name__, new_name(module.__name__)
        assert new is not None  # find_spec only takes names that new_name maps
        warnings.warn(
            f"{old} is deprecated and will be removed in the next release: import {new}",
            DeprecationWarning,
            stacklevel=2,
        )
        # The import system returns what sys.modules holds after exec_module: the new module itself.
        sys.modules[old] = importlib.import_module(new)


def install() -> None:
    """Put the finder first on sys.meta_path (once), ahead of the file finder that would load a copy."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
