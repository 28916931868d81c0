"""The model modules import one another in one direction only (no import cycles)."""

from __future__ import annotations

import ast
from pathlib import Path

import fedlingua.models

PACKAGE = "fedlingua.models"


def _imports(path: Path) -> set[str]:
    """Sibling modules a file imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            module = node.module
            if module == PACKAGE:
                found |= {alias.name for alias in node.names}
            elif module.startswith(PACKAGE + "."):
                found.add(module.removeprefix(PACKAGE + ".").split(".")[0])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(PACKAGE + "."):
                    found.add(alias.name.removeprefix(PACKAGE + ".").split(".")[0])
    return found


def test_model_modules_import_without_cycles():
    folder = Path(fedlingua.models.__file__).parent
    modules = {p.stem: p for p in folder.glob("*.py") if p.stem != "__init__"}
    graph = {name: _imports(path) & set(modules) for name, path in modules.items()}
    assert graph["backbone"] == set()  # the shared types are a leaf
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"import cycle: {' -> '.join((*path, name))}"
        if name not in done:
            for child in sorted(graph[name]):
                visit(child, (*path, name))
            done.add(name)

    for name in sorted(graph):
        visit(name, ())
