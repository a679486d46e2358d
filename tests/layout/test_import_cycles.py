"""No import cycle anywhere in the project's code, imports inside functions included (issue 20).

import-linter (`make lint`) checks the layers and what each layer may import, but builds its graph
from every import statement without telling a cycle from a layer's order: this test parses every
module with `ast` and fails on any circle, an import written inside a function or method counted like
one at the top (it runs too, only later). Imports under `if TYPE_CHECKING:` never run and are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Every package of the project's own code (tests and tooling apart).
PACKAGES = ("activities", "api", "bench", "devhost", "entities", "orchestrators", "retention", "sweeper",
            "videojob", "worker")
TOP_MODULES = ("function_app",)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    found = {name: REPO / f"{name}.py" for name in TOP_MODULES}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            if "__pycache__" not in path.parts:
                found[_module_name(path)] = path
    return found


def _type_checking_only(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def _imports(tree: ast.AST):
    """Every import statement that can run (at any depth), TYPE_CHECKING blocks left out."""
    for child in ast.iter_child_nodes(tree):
        if _type_checking_only(child):
            continue
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child
        yield from _imports(child)


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    parts = parts[: len(parts) - (node.level - 1)]
                    base = ".".join(parts + ([node.module] if node.module else []))
                # `from package import module` names the module; `from module import name` the module
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in targets:
                while target and target not in modules:  # `import a.b.c` of a non-module: its nearest module
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
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
                    found.append(sorted(component))
    return found


def test_the_checker_finds_a_cycle_through_an_import_inside_a_function(tmp_path):
    """The three circles issue 20 names were each hidden by an import inside a function."""
    graph = {"a": {"b"}, "b": set(), "c": set()}
    (tmp_path / "b.py").write_text("def late():\n    from a import x\n    from c import y\n")
    inner = _imports(ast.parse((tmp_path / "b.py").read_text()))
    assert [n.module for n in inner] == ["a", "c"]
    graph["b"] = {"a", "c"}
    assert cycles(graph) == [["a", "b"]]


def test_type_checking_imports_do_not_count():
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from a import b\n")
    assert [n.module for n in _imports(tree)] == ["typing"]


def test_no_import_cycle_in_the_project():
    found = cycles(import_graph(project_modules()))
    assert found == [], "import cycles (imports inside functions included):\n" + "\n".join(
        " <-> ".join(c) for c in found
    )
