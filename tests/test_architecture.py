"""The package's shape, checked: modalities over a shared engine, no import cycles.

Every ``import`` in ``synthdata/`` (module level or inside a function: a lazy import is
still a dependency) is read with :mod:`ast`. The engine (privacy, audit, report, signing,
release, models, ingest, schema, …) must never import a modality package (tabular,
images, interactions); a modality may import the engine, and interactions may build on
tabular; only the CLI sits above everything. ``scripts/import_graph.py`` draws the same
graph for people.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "synthdata"
MODALITIES = {"tabular", "images", "interactions"}
TOP = {"cli", "__main__"}
#: Modality -> modalities it may build on.
ALLOWED_BETWEEN_MODALITIES = {"interactions": {"tabular"}}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("synthdata")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("synthdata"):
                found.add(target)
                found |= {f"{target}.{alias.name}" for alias in node.names}
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        graph[name] = {target for target in _imports(path) if target in modules and target != name}
    return graph


def _area(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "synthdata"


def test_the_engine_never_imports_a_modality():
    problems = []
    for module, targets in _graph().items():
        area = _area(module)
        for target in targets:
            other = _area(target)
            if other not in MODALITIES or other == area or area in TOP or module == "synthdata":
                continue
            if area in MODALITIES and other in ALLOWED_BETWEEN_MODALITIES.get(area, set()):
                continue
            problems.append(f"{module} imports {target}")
    assert not problems, problems


def test_there_is_no_import_cycle_between_modules():
    graph = _graph()
    # The package's own __init__ only re-exports (lazily); it is not part of any layer.
    graph = {m: {t for t in ts if t != "synthdata"} for m, ts in graph.items() if m != "synthdata"}
    # A package __init__ that re-exports its own submodules is not a cycle with them.
    def edges(module):
        return {t for t in graph.get(module, ()) if not (module.startswith(t + ".") or t.startswith(module + "."))}

    visiting, done, cycles = set(), set(), []

    def visit(module, path):
        if module in done:
            return
        if module in visiting:
            cycles.append(path[path.index(module):] + [module])
            return
        visiting.add(module)
        for target in sorted(edges(module)):
            visit(target, path + [module])
        visiting.discard(module)
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    assert not cycles, cycles


def test_only_the_cli_sits_above_every_modality():
    importers = {module for module, targets in _graph().items()
                 if {_area(t) for t in targets} >= {"tabular", "images"}}
    assert importers <= {"synthdata.cli"}, importers
