"""The package's imports point down only and form no cycle.

Every `import` of a fedlingua module, at module level or inside a function, is an
edge. Layers, from the bottom: config/io/runtime -> data -> models, methods,
evaluation, report -> training -> federation -> topology -> experiment -> privacy ->
engine -> inference -> export, compare, flower_app -> cli. A module may import its own
layer or a lower one, never a higher one, and the graph of modules has no cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import fedlingua

PACKAGE = Path(fedlingua.__file__).parent

LAYERS = [
    ("fedlingua.config", "fedlingua.io", "fedlingua.runtime"),
    ("fedlingua.data",),
    ("fedlingua.models", "fedlingua.methods", "fedlingua.evaluation", "fedlingua.report"),
    ("fedlingua.training", "fedlingua.fused"),
    ("fedlingua.federation",),
    ("fedlingua.topology",),
    ("fedlingua.experiment",),
    ("fedlingua.privacy",),
    ("fedlingua.engine",),
    ("fedlingua.inference",),
    ("fedlingua.export", "fedlingua.compare", "fedlingua.flower_app"),
    ("fedlingua.cli",),
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The fedlingua modules `name` imports (a `from pkg import sub` names the submodule)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    # `from fedlingua.x import y` where y is a submodule already names it; drop the package
    # edge then only if the package is an ancestor of this module (its own __init__).
    return {t for t in found if not name.startswith(t + ".")}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def _layer(module: str) -> int:
    for rank, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    return len(LAYERS)  # the package's own __init__: the top


def test_every_module_has_a_layer():
    unplaced = [m for m in _modules() if m != "fedlingua" and _layer(m) == len(LAYERS)]
    assert not unplaced, f"add these modules to LAYERS: {unplaced}"


def test_imports_point_down_only():
    upward = [
        f"{src} (layer {_layer(src)}) imports {dst} (layer {_layer(dst)})"
        for src, targets in _graph().items()
        for dst in sorted(targets)
        if _layer(dst) > _layer(src)
    ]
    assert not upward, "upward imports:\n" + "\n".join(sorted(upward))


def test_no_import_cycles():
    graph = _graph()
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(stack[stack.index(nxt) :] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


MAX_FUNCTION_LINES = 59  # a screen


def test_no_function_is_longer_than_a_screen():
    """Every function of the package, signature and docstring included, fits on a screen."""
    long = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.name} ({lines} lines)")
    assert not long, "split these functions:\n" + "\n".join(sorted(long))
