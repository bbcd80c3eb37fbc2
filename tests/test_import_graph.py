"""The package's shape (issue #22): no import cycles, the campaign's stages import only the
stages before them, and the house stays small enough to read.

The import graph is built statically with `ast` from the package's source files (the ones in
this checkout, not the installed copy). It counts every ``import`` and ``from ... import``
wherever it is written: at module level, inside functions (the lazy imports that keep start-up
fast are dependencies all the same: they run the moment the function does), and under
``if TYPE_CHECKING:`` (a cycle there is one a type checker walks, and it is one refactoring
away from a real one). ``from package import name`` is an edge to the submodule when ``name``
is one, else to the package. It does not count the implicit import of a module's parent
packages: Python initialises those first whatever the module imports, so they cannot close a
cycle at run time, and counting them would make every module depend on
``mutatenn_passes/__init__.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mutatenn_passes"
NAME = PACKAGE.name

#: The campaign's stages, and the stages each may import (the sub-packages' docstrings say why).
STAGES = {
    "config": set(),
    "planning": {"config"},
    "scoring": {"config"},
    "running": {"config", "planning", "scoring"},
}


def _modules() -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, whether it is a package's ``__init__``)."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return out


def _targets(node, module: str, is_package: bool, modules) -> list[str]:
    """The package modules an import node imports (nearest existing module of each name)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[:len(base) - (node.level - 1)]
            root = ".".join(base + ([node.module] if node.module else []))
        else:
            root = node.module or ""
        names = [f"{root}.{a.name}" if f"{root}.{a.name}" in modules else root
                 for a in node.names]
    found = []
    for name in names:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        if name and name.split(".")[0] == NAME:
            found.append(name)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (anywhere in its source)."""
    modules = _modules()
    graph = {}
    for module, (path, is_package) in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        graph[module] = {t for node in ast.walk(tree)
                         if isinstance(node, (ast.Import, ast.ImportFrom))
                         for t in _targets(node, module, is_package, modules) if t != module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_lazy_and_relative_imports():
    graph = import_graph()
    # a function-level import (registry reads the operator modules lazily) is an edge
    assert f"{NAME}.graph_operators.weights" in graph[f"{NAME}.registry"]
    # ``from . import x`` is an edge to the submodule x
    assert f"{NAME}.kernel_operators.native" in graph[f"{NAME}.kernel_operators.arithmetic_types"]


def test_the_package_has_no_import_cycle():
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_each_campaign_stage_imports_only_the_stages_before_it():
    graph = import_graph()
    prefix = f"{NAME}.campaign."
    wrong = []
    for module, imported in graph.items():
        stage = module[len(prefix):].split(".")[0] if module.startswith(prefix) else None
        if stage not in STAGES:
            continue
        for target in imported:
            other = target[len(prefix):].split(".")[0] if target.startswith(prefix) \
                else "__init__" if target == prefix.rstrip(".") else None
            if other is not None and other != stage and other not in STAGES[stage]:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "\n".join(sorted(wrong))


def test_the_house_stays_readable():
    """At most 12 entries at campaign/'s top level, no module over 450 lines."""
    top = sorted(p.name for p in (PACKAGE / "campaign").iterdir() if p.name != "__pycache__")
    assert len(top) <= 12, top
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 450}
    assert not long, long
