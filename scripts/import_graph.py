"""Draw synthdata's import graph, package by package, as a Mermaid diagram.

    .venv/bin/python scripts/import_graph.py > docs/imports.md

Reads every import (module level and inside functions) with ``ast``, the same way
``tests/test_architecture.py`` checks the layering, and collapses modules to their area
(``privacy``, ``tabular``, ``release``, ...). Paste the output anywhere Mermaid renders
(GitHub does), or read it as a list of edges.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_architecture import MODALITIES, _area, _graph  # noqa: E402

ENGINE_ORDER = ["cli", "tabular", "images", "interactions", "release", "report", "audit", "signing", "budget",
                "models", "checkpoint", "fingerprint", "privacy", "ingest", "schema", "files", "runtime", "errors"]


def main() -> None:
    edges = set()
    for module, targets in _graph().items():
        if module == "synthdata":
            continue
        for target in targets:
            a, b = _area(module), _area(target)
            if a != b and b != "synthdata":
                edges.add((a, b))
    areas = sorted({a for edge in edges for a in edge}, key=lambda a: ENGINE_ORDER.index(a)
                   if a in ENGINE_ORDER else len(ENGINE_ORDER))
    print("```mermaid")
    print("flowchart TD")
    print("  subgraph modalities")
    for area in areas:
        if area in MODALITIES:
            print(f"    {area}")
    print("  end")
    print("  subgraph engine")
    for area in areas:
        if area not in MODALITIES and area not in ("cli", "__main__"):
            print(f"    {area}")
    print("  end")
    for a, b in sorted(edges, key=lambda e: (areas.index(e[0]), areas.index(e[1]))):
        print(f"  {a} --> {b}")
    print("```")


if __name__ == "__main__":
    main()
