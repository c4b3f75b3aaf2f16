"""The package's import structure: layers only import downwards, and no module imports circle.

Every ``import`` statement of every module under ``src/fiberscope`` is read with ``ast``
(imports inside functions included, ``TYPE_CHECKING`` blocks excluded), then checked against
the layer table of ``docs/architecture.md``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "src" / "fiberscope"

#: Layer of every top-level part of the package (docs/architecture.md).
LAYERS = {
    "errors": 0,
    "_version": 0,
    "outputs": 1,
    "geometry": 1,
    "engine": 2,
    "algorithms": 3,
    "io": 4,
    "models": 4,
    "plot": 4,
    "jobs": 5,
    "cli": 6,
    "app": 6,
    "__main__": 6,
}
FACADE = "fiberscope"  # the package's __init__: it may name everything (lazily)


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = ["fiberscope", *rel.parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(name: str, path: Path) -> set[str]:
    """Modules of the package that ``name`` imports (resolved to existing modules)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    package = name if is_pkg else name.rpartition(".")[0]
    found: set[str] = set()

    def resolve(base: str) -> str | None:
        while base and base not in MODULES:
            base = base.rpartition(".")[0]
        return base or None

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.startswith("fiberscope"):
                        target = resolve(alias.name)
                        if target:
                            found.add(target)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package
                    for _ in range(child.level - 1):
                        base = base.rpartition(".")[0]
                    mod = f"{base}.{child.module}" if child.module else base
                elif child.module and child.module.startswith("fiberscope"):
                    mod = child.module
                else:
                    continue
                for alias in child.names:
                    sub = f"{mod}.{alias.name}"
                    target = sub if sub in MODULES else resolve(mod)
                    if target:
                        found.add(target)
            visit(child)

    visit(tree)
    found.discard(name)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(module: str) -> int:
    if module == FACADE:
        return 99
    top = module.split(".")[1]
    if top not in LAYERS:
        raise AssertionError(f"{module}: the top-level part {top!r} has no layer in LAYERS")
    return LAYERS[top]


def test_every_part_has_a_layer() -> None:
    for module in MODULES:
        _layer(module)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != FACADE))
def test_no_upward_imports(module: str) -> None:
    mine = _layer(module)
    up = sorted(t for t in GRAPH[module] if _layer(t) > mine)
    assert not up, f"{module} (layer {mine}) imports from a higher layer: {up}"


def test_no_import_circles() -> None:
    # package __init__ modules re-export their children; an edge parent -> child is structure,
    # not a dependency, so it is left out of the cycle search
    def edges(m: str) -> set[str]:
        return {t for t in GRAPH[m] if not t.startswith(m + ".") and t != FACADE}

    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges(v):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(MODULES):
        if v not in index:
            strong(v)
    assert not cycles, f"import circles: {cycles}"


def test_the_checker_sees_lazy_upward_imports(tmp_path: Path) -> None:
    # the detector itself: an import inside a function is an import
    code = "def f():\n    from ..cli import main\n"
    mod = "fiberscope.engine.fake"
    path = tmp_path / "fake.py"
    path.write_text(code)
    MODULES[mod] = path
    try:
        assert "fiberscope.cli" in _imports(mod, path) or "fiberscope.cli.main" in _imports(
            mod, path
        )
    finally:
        del MODULES[mod]
