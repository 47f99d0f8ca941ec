"""Import arrows of the store modules point one way (read from the source with ``ast``).

``graph/store.py`` is the protocol both stores import, so it imports neither of them
(``graph/stores.py`` opens one by name). Inside ``graph/neo4j/`` a module imports only
modules of a lower layer: statements, values and the load plan at the bottom, the store
on them, the GDS path and the bulk import on top.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NEO4J = ROOT / "graph" / "neo4j"
PACKAGE = "creditgraph.graph.neo4j"
LAYERS = {"statements": 0, "values": 0, "plan": 0, "store": 1, "gds": 2, "bulk_import": 2}
STORES = ("creditgraph.graph.embedded", "creditgraph.graph.neo4j")


def imported(path: Path, package: str) -> set[str]:
    """Every module ``path`` imports, anywhere in the file (also inside functions), absolute.

    ``from a.b import c`` counts as ``a.b`` and as ``a.b.c`` (``c`` may be a module).
    """
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def test_the_protocol_module_imports_neither_store() -> None:
    found = imported(ROOT / "graph" / "store.py", "creditgraph.graph")
    bad = {name for name in found if name.startswith(STORES)}
    assert not bad, f"graph/store.py imports a store: {sorted(bad)}"


def test_open_store_lives_outside_the_protocol_and_knows_both_stores() -> None:
    found = imported(ROOT / "graph" / "stores.py", "creditgraph.graph")
    assert {"creditgraph.graph.embedded", "creditgraph.graph.neo4j.store"} <= found


def test_neo4j_modules_import_each_other_only_downward() -> None:
    modules = {p.stem for p in NEO4J.glob("*.py")} - {"__init__"}
    assert modules == set(LAYERS), "give every module of graph/neo4j/ a layer here"
    assert imported(NEO4J / "__init__.py", PACKAGE) == set()  # importing one loads no other
    wrong = []
    for module, layer in LAYERS.items():
        for name in imported(NEO4J / f"{module}.py", PACKAGE):
            if name == PACKAGE or not name.startswith(PACKAGE + "."):
                continue
            target = name.removeprefix(PACKAGE + ".").split(".")[0]
            if target in LAYERS and LAYERS[target] >= layer:
                wrong.append(f"{module} (layer {layer}) imports {target} (layer {LAYERS[target]})")
    assert not wrong, wrong


def test_the_walk_sees_relative_and_function_level_imports(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from .store import Neo4jStore\n    from .. import embedded\n")
    assert {f"{PACKAGE}.store", "creditgraph.graph.embedded"} <= imported(probe, PACKAGE)
