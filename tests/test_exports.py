"""What each module exports agrees with its __all__, old paths still import (with a warning), and
the variant registry is the same whatever order the family's modules are imported in."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from _helpers import torchvision_shim

import dropkit
from dropkit import _moved

SRC = Path(dropkit.__file__).parent


def _name(path: Path) -> str:
    parts = ("dropkit",) + path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


# Public modules: no part of the dotted name private; __main__ runs the CLI when imported.
PUBLIC = sorted(
    name for name in map(_name, SRC.rglob("*.py")) if not any(part.startswith("_") for part in name.split(".")[1:])
)
# Needing more than the [dev] extra to import: the glue for a third-party library, the GPU kernels.
NEEDS = {
    "dropkit.convert.integrations.transformers": "transformers",
    "dropkit.convert.integrations.timm": "timm",
    "dropkit.convert.integrations.peft": "peft",
    "dropkit.kernels.triton": "triton",
    "dropkit.kernels.attention_triton": "triton",
}


def _import(name: str):
    if name in NEEDS:
        torchvision_shim.install()
        pytest.importorskip(NEEDS[name])
    return importlib.import_module(name)


def _source(name: str) -> ast.Module:
    path = SRC.joinpath(*name.split(".")[1:])
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    return ast.parse(path.read_text())


def _public_names(tree: ast.Module) -> set[str]:
    """What a module puts on offer: its public functions and classes, and its explicit re-exports (`x as x`)."""
    defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    reexported = {
        alias.asname
        for node in tree.body
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
        if alias.asname is not None
        and alias.asname == (alias.name if isinstance(node, ast.Import) else alias.name.rpartition(".")[2])
    }
    return {name for name in defined | reexported if not name.startswith("_")}


@pytest.mark.parametrize("name", PUBLIC)
def test_all_agrees_with_what_the_module_exports(name):
    module = _import(name)
    assert hasattr(module, "__all__"), f"{name} has no __all__"
    listed = list(module.__all__)
    assert len(listed) == len(set(listed)), f"{name}.__all__ lists a name twice"
    assert not [n for n in listed if not hasattr(module, n)], f"{name}.__all__ lists names it lacks"
    unlisted = sorted(_public_names(_source(name)) - set(listed))
    assert not unlisted, f"{name} defines or re-exports {unlisted} without listing them in __all__"


def test_the_reader_finds_definitions_and_re_exports():
    tree = ast.parse(
        "from .a import b as b\nfrom .a import c\nimport x.y as y\nimport z as z\ndef f(): pass\nclass _G: pass\n"
    )
    assert _public_names(tree) == {"b", "z", "f"}  # `import x.y as y` only names a module it uses


def test_the_top_level_stays_small():
    # Issue 23: at most 8 public top-level modules; a new one is a decision, not an accident.
    top = sorted(p.stem for p in SRC.glob("*.py") if not p.stem.startswith("_"))
    assert len(top) <= 8, top


@pytest.mark.parametrize("old", sorted(_moved.MOVED))
def test_old_paths_warn_and_give_the_new_module(old):
    new = _moved.MOVED[old]
    code = f"""
import importlib, json, warnings
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    old = importlib.import_module({old!r})
print(json.dumps({{"same": old is importlib.import_module({new!r}),
                  "messages": [str(w.message) for w in caught if w.category is DeprecationWarning]}}))
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["same"], f"{old} is not the module {new}"
    assert f"{old} is deprecated and will be removed in the next release: import {new}" in out["messages"]


def test_moved_modules_stay_attributes_of_the_package():
    code = """
import json, warnings
import dropkit
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    metrics = dropkit.metrics
try:
    dropkit.nothing
except AttributeError as error:
    missing = str(error)
print(json.dumps({"same": metrics is dropkit.mc.metrics, "messages": [str(w.message) for w in caught], "missing": missing}))
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["same"] and out["messages"] == [
        "dropkit.metrics is deprecated and will be removed in the next release: import dropkit.mc.metrics"
    ]
    assert out["missing"] == "module 'dropkit' has no attribute 'nothing'"
    assert _moved.new_name("dropkit.integrations.multihead") == "dropkit.convert.integrations.multihead"
    assert _moved.new_name("dropkit.nn") is None


# Import the family's modules in a given order with the package's own __init__ bypassed (which
# would otherwise import them all in its order first), then read the registry.
_REGISTRY = """
import importlib, json, sys, types
package = types.ModuleType("dropkit")
package.__path__ = [{src!r}]
sys.modules["dropkit"] = package
for name in {order!r}:
    importlib.import_module("dropkit.family." + name)
from dropkit.family import registry
print(json.dumps({{"kinds": list(registry.kinds()), "variants": [c.__qualname__ for c in registry.variants()]}}))
"""
FAMILY = sorted(p.stem for p in (SRC / "family").glob("*.py") if not p.stem.startswith("_") and p.stem != "registry")


def test_the_registry_does_not_depend_on_import_order():
    orders = [FAMILY, FAMILY[::-1], FAMILY[1::2] + FAMILY[::2]]
    seen = []
    for order in orders:
        code = _REGISTRY.format(src=str(SRC), order=order)
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        seen.append(json.loads(run.stdout.strip().splitlines()[-1]))
    assert seen[0] == seen[1] == seen[2], seen
    assert seen[0]["kinds"] == list(dropkit.nn.DROPOUT_KINDS), "the whole package registers what its modules do"
    torchs = ["dropout", "dropout1d", "dropout2d", "dropout3d"]
    assert seen[0]["kinds"] == torchs + sorted(set(seen[0]["kinds"]) - set(torchs))
