"""The package's shape as docs/architecture.md draws it: every import of facerec/ goes down its layer table, and
no module imports itself back through others.

Every import statement counts, wherever it is: at the top, under `if TYPE_CHECKING:` (a circle of types is a
circle of design) and inside functions (a lazy import is still a dependency). What Python imports implicitly
does not: `import facerec.stores.base` runs facerec/stores/__init__.py first, but that is the package's
parent, not a choice of the importing module.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "facerec"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
MAX_LINES = 700  # a module longer holds more than one job (issue 32)


def package_modules(package: Path) -> dict[str, Path]:
    """Every module of `package` by its dotted name (a package by its own name, for its __init__.py)."""
    modules = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _owner(name: str, modules: dict[str, Path]) -> str:
    """The module that `name` (a module, or a name inside one) is found in."""
    while name not in modules:
        name = name.rpartition(".")[0]
    return name


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of the package that module `name` imports, by any import statement anywhere in its file."""
    top = next(iter(modules)).split(".")[0]
    here = name if path.name == "__init__.py" else name.rpartition(".")[0]  # the package relative imports start from
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(_owner(alias.name, modules) for alias in node.names
                         if alias.name == top or alias.name.startswith(top + "."))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")[:len(here.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target != top and not target.startswith(top + "."):
                continue
            for alias in node.names:  # `from . import x` imports the submodule x where there is one
                found.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in modules else _owner(target, modules))
    found.discard(name)
    return found


def import_graph(package: Path) -> dict[str, set[str]]:
    modules = package_modules(package)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle (a, b, ..., a) through each group of modules that import each other (Tarjan's components)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_circle_in(group, graph) for group in groups]


def _circle_in(group: set[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest way from the group's first module back to itself, inside the group."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for other in sorted(graph[node] & group):
                if other == start:
                    return paths[node] + [start]
                if other not in paths:
                    paths[other] = paths[node] + [other]
                    following.append(other)
        frontier = following
    raise AssertionError(f"{sorted(group)} is not a circle")


def layer_table(text: str) -> list[tuple[str, list[str]]]:
    """(layer, [module paths]) from the first table of the "## Layers" section, top layer first."""
    section = text.split("\n## Layers\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    layers = []
    for row in rows[2:]:  # after the header and its |---| line
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        layers.append((cells[0], re.findall(r"`([^`]+)`", cells[1])))
    return layers


def layer_of(modules: dict[str, Path], layers: list[tuple[str, list[str]]], package: Path) -> dict[str, int]:
    """Each module's row in the table: a row names files (`cli.py`, `__init__.py`) and folders (`web/`: all in it)."""
    rows: dict[str, list[int]] = {name: [] for name in modules}
    for number, (_, entries) in enumerate(layers):
        for entry in entries:
            named = [name for name, path in modules.items()
                     if (entry.endswith("/") and path.is_relative_to(package / entry))
                     or path == package / entry]
            assert named, f"docs/architecture.md's layer table names {entry!r}, which is not in facerec/"
            for name in named:
                rows[name].append(number)
    unplaced = sorted(name for name, numbers in rows.items() if not numbers)
    assert not unplaced, f"modules no row of docs/architecture.md's layer table names: {unplaced}"
    twice = sorted(name for name, numbers in rows.items() if len(numbers) > 1)
    assert not twice, f"modules in more than one layer of docs/architecture.md: {twice}"
    return {name: numbers[0] for name, numbers in rows.items()}


def upward_imports(graph: dict[str, set[str]], layer: dict[str, int], names: list[str]) -> list[str]:
    return sorted(f"{module} ({names[layer[module]]}) imports {other} ({names[layer[other]]})"
                  for module, others in graph.items() for other in others if layer[other] < layer[module])


@pytest.fixture(scope="module")
def graph():
    return import_graph(PACKAGE)


def test_no_module_of_facerec_imports_itself_back(graph):
    found = circles(graph)
    assert not found, "import circles: " + "; ".join(" -> ".join(circle) for circle in found)


def test_every_import_goes_down_the_layer_table_of_docs_architecture(graph):
    layers = layer_table(ARCHITECTURE.read_text())
    assert len(layers) >= 5, "docs/architecture.md's layer table was not found"
    layer = layer_of(package_modules(PACKAGE), layers, PACKAGE)
    upward = upward_imports(graph, layer, [name for name, _ in layers])
    assert not upward, "imports against docs/architecture.md's layer table: " + "; ".join(upward)


def test_no_module_of_facerec_is_over_700_lines():
    sizes = {name: len(path.read_text().splitlines()) for name, path in package_modules(PACKAGE).items()}
    assert {name: size for name, size in sizes.items() if size > MAX_LINES} == {}


def test_the_reader_sees_imports_under_type_checking_and_inside_functions(tmp_path):
    """A package whose only circles go through a TYPE_CHECKING import and an import inside a function."""
    package = tmp_path / "facerec"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import B\n")
    (package / "b.py").write_text("from .a import A\n")
    (package / "sub" / "__init__.py").write_text("def opened():\n    from .kind import Kind\n")
    (package / "sub" / "kind.py").write_text("from . import base\nfrom .. import a\n")
    (package / "sub" / "base.py").write_text("import facerec.sub\n")
    found = import_graph(package)
    assert found == {"facerec": set(), "facerec.a": {"facerec.b"}, "facerec.b": {"facerec.a"},
                     "facerec.sub": {"facerec.sub.kind"}, "facerec.sub.kind": {"facerec.sub.base", "facerec.a"},
                     "facerec.sub.base": {"facerec.sub"}}
    assert sorted(circles(found)) == [["facerec.a", "facerec.b", "facerec.a"],
                                      ["facerec.sub", "facerec.sub.kind", "facerec.sub.base", "facerec.sub"]]


def test_an_import_against_the_table_is_named(tmp_path):
    """The table's rows are read as written: a module the table puts lower that imports a higher one is reported."""
    table = ("# x\n\n## Layers\n\n| layer | modules | what |\n|---|---|---|\n"
             "| top | `__init__.py`, `a.py` | |\n| bottom | `sub/` | |\n\n## Modules\n")
    package = tmp_path / "facerec"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from .sub import thing\n")
    (package / "sub" / "__init__.py").write_text("def late():\n    from ..a import x\n")
    layers = layer_table(table)
    assert layers == [("top", ["__init__.py", "a.py"]), ("bottom", ["sub/"])]
    layer = layer_of(package_modules(package), layers, package)
    assert upward_imports(import_graph(package), layer, ["top", "bottom"]) == [
        "facerec.sub (bottom) imports facerec.a (top)"]
    (package / "new.py").write_text("")
    with pytest.raises(AssertionError, match=r"no row .* names: \['facerec.new'\]"):
        layer_of(package_modules(package), layers, package)
