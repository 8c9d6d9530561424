"""The package's import graph, read from the source with ast: no cycles, and no layer imports one above it.

Every import statement counts, also one inside a function (the usual way to dodge a cycle).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import dropkit

SRC = Path(dropkit.__file__).parent
# Lowest first: a module may import from its own layer or one below, never from one above.
# Every module but the package's __init__ has a layer (test_every_module_has_a_layer).
LAYERS = [
    {"dropkit.rng", "dropkit._validate", "dropkit._mode", "dropkit._atomic", "dropkit._moved", "dropkit._threads"},
    {"dropkit.kernels"},
    {"dropkit.ops"},
    {"dropkit.scale"},
    {"dropkit.family", "dropkit.functional", "dropkit.nn"},
    {"dropkit.mc", "dropkit.convert"},
    {"dropkit.lab", "dropkit.cli", "dropkit.__main__"},
]


def _module_name(path: Path) -> str:
    parts = ("dropkit",) + path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(f): f for f in sorted(SRC.rglob("*.py"))}


def _resolve(importer: str, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    is_package = MODULES[importer].name == "__init__.py"
    base = importer.split(".")
    base = base[: len(base) - node.level + (1 if is_package else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def _owner(name: str) -> str | None:
    """The dropkit module that defines `name` (a module, or an attribute of one)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports(module: str) -> set[str]:
    """The dropkit modules `module` imports anywhere in its body."""
    out = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text(), str(MODULES[module]))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, node)
            targets = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        out.update(t for t in map(_owner, targets) if t and t.startswith("dropkit") and t != module)
    return out


GRAPH = {m: imports(m) for m in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each as a cycle through it."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(_path(graph, set(component)))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _path(graph, component: set[str]) -> list[str]:
    """One cycle inside a strongly connected component, as a -> b -> ... -> a."""
    start = min(component)
    paths, seen = [[start]], {start}
    while paths:
        path = paths.pop(0)
        for w in sorted(graph[path[-1]] & component):
            if w == start:
                return path + [start]
            if w not in seen:
                seen.add(w)
                paths.append(path + [w])
    raise AssertionError("a strongly connected component always holds a cycle")


def _layer(module: str) -> int | None:
    if module == "dropkit":  # the package's facade re-exports every layer: only the top one may import it
        return len(LAYERS) - 1
    for rank, layer in enumerate(LAYERS):
        if any(module == top or module.startswith(top + ".") for top in layer):
            return rank
    return None


def test_the_reader_sees_imports_inside_functions(tmp_path, monkeypatch):
    hidden = tmp_path / "hidden.py"
    hidden.write_text("def f():\n    from . import rng\n    from .kernels import cpu\n    import dropkit.ops.seed\n")
    monkeypatch.setitem(MODULES, "dropkit.hidden", hidden)
    assert imports("dropkit.hidden") == {"dropkit.rng", "dropkit.kernels.cpu", "dropkit.ops.seed"}
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]


def test_no_import_cycles():
    cycles = _cycles(GRAPH)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_every_module_has_a_layer():
    assert [m for m in MODULES if _layer(m) is None] == []


@pytest.mark.parametrize("module", [m for m in MODULES if _layer(m) is not None])
def test_no_layer_imports_one_above_it(module):
    upward = sorted(t for t in GRAPH[module] if (_layer(t) if _layer(t) is not None else len(LAYERS)) > _layer(module))
    assert not upward, (
        f"{module} imports {upward}, which sit above it (lab -> mc, convert -> family -> scale -> op -> kernel)"
    )


@pytest.mark.parametrize(
    "module", [m for m in MODULES if not m.startswith("dropkit.lab") and m not in ("dropkit.cli",)]
)
def test_only_the_cli_imports_the_lab(module):
    # The lab sits on top (it needs the [lab] extra); the library under it must work without it.
    lab = sorted(t for t in GRAPH[module] if t == "dropkit.lab" or t.startswith("dropkit.lab."))
    assert not lab, f"{module} imports {lab}: the library must not depend on the lab"


def private_imports(module: str) -> list[str]:
    """`from x import _y` in `module` where _y is a private name of another module (not a private module)."""
    found = []
    for node in ast.walk(ast.parse(MODULES[module].read_text(), str(MODULES[module]))):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("dropkit")):
            base = _resolve(module, node)
            found += [
                f"{base}.{alias.name}"
                for alias in node.names
                if alias.name.startswith("_")
                and not alias.name.startswith("__")
                and f"{base}.{alias.name}" not in MODULES
            ]
    return found


def test_the_private_import_reader(tmp_path, monkeypatch):
    hidden = tmp_path / "hidden.py"
    hidden.write_text("from . import _validate\nfrom . import __version__\nfrom .kernels.cpu import CHUNK, _gone\n")
    monkeypatch.setitem(MODULES, "dropkit.hidden", hidden)
    assert private_imports("dropkit.hidden") == ["dropkit.kernels.cpu._gone"]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_private_name_crosses_files(module):
    # A helper two files share is public in a module of its own (ops.layout, kernels.cpu_common).
    assert not private_imports(module), f"{module} imports private names {private_imports(module)}"
