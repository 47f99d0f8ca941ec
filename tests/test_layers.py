"""Layers import only downwards, and graph/ speaks no credit vocabulary.

``LAYERS`` is the table: a folder of the repository, the package it installs
as, and the packages it must never import. Imports are read with ``ast`` from
every file, including those inside functions (lazy imports) and
``TYPE_CHECKING`` blocks, with relative imports resolved, so no arrow pointing
up can hide.

``graph/`` computes graph facts (arrays, algorithms, neighbour aggregation,
exports); the credit meaning of those facts lives in ``scoring/``. Its
identifiers and docstrings must not use the credit words of ``CREDIT_WORDS``,
except the few uses in ``ALLOWED``, each with its reason.
"""

from __future__ import annotations

import ast
import re
from fnmatch import fnmatch
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _all_but(*allowed: str) -> tuple[str, ...]:
    """Every creditgraph layer except ``allowed`` (and the importing layer itself)."""
    return tuple(sorted(set(ORDER) - set(allowed)))


# The layers from the bottom up; each may import only layers listed before it.
ORDER = (
    "creditgraph.errors", "creditgraph.durable", "creditgraph.cluster", "creditgraph.graph",
    "creditgraph.ingest",
    "creditgraph.catalog", "creditgraph.scoring", "creditgraph.queries", "creditgraph.access",
    "creditgraph.settings", "creditgraph.pipeline", "creditgraph.explore", "creditgraph.cli",
)  # fmt: skip
LAYERS = [
    # (file or folder, installed as, must never import)
    ("creditgraph/errors.py", "creditgraph.errors", _all_but()),
    ("creditgraph/durable.py", "creditgraph.durable", _all_but("creditgraph.errors")),
    # Connecting to Dask: infrastructure like durable writes, knows nothing of credit.
    ("creditgraph/cluster.py", "creditgraph.cluster", _all_but("creditgraph.errors")),
    ("graph", "creditgraph.graph", _all_but(*ORDER[:3])),
    ("ingest", "creditgraph.ingest", _all_but(*ORDER[:4])),
    ("creditgraph/catalog.py", "creditgraph.catalog", _all_but(*ORDER[:5])),
    ("scoring", "creditgraph.scoring", _all_but(*ORDER[:5])),  # never the data directory
    ("queries", "creditgraph.queries", _all_but(*ORDER[:4])),  # reads the graph only
    ("creditgraph/access", "creditgraph.access", _all_but(*ORDER[:7])),
    ("creditgraph/settings.py", "creditgraph.settings", _all_but(*ORDER[:7])),
    ("creditgraph/pipeline.py", "creditgraph.pipeline", _all_but(*ORDER[:10])),
    ("creditgraph/explore.py", "creditgraph.explore", _all_but(*ORDER[:11])),  # notebooks
]
ABOVE_GRAPH = next(forbidden for folder, _, forbidden in LAYERS if folder == "graph")


def python_files(where: str) -> list[Path]:
    """The Python files of a folder (recursively), or the one file named."""
    if where.endswith(".py"):
        return [ROOT / where]
    return sorted(p for p in (ROOT / where).rglob("*.py") if "__pycache__" not in p.parts)


def imported_modules(source: str, package: str) -> list[tuple[int, str]]:
    """(line, module) of every import in ``source``, a module of ``package``.

    ``from m import n`` yields both ``m`` and ``m.n`` (``n`` may be a module).
    """
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def _package_of(path: Path, folder: str, installed: str) -> str:
    if folder.endswith(".py"):
        return installed.rpartition(".")[0]
    parts = path.relative_to(ROOT / folder).parts[:-1]
    return ".".join([installed, *parts])


@pytest.mark.parametrize(("folder", "installed", "forbidden"), LAYERS, ids=[f for f, *_ in LAYERS])
def test_layer_imports_point_down(folder: str, installed: str, forbidden: tuple[str, ...]) -> None:
    files = python_files(folder)
    assert files, f"no Python files under {folder}/"
    upward = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in files
        for line, module in imported_modules(path.read_text(), _package_of(path, folder, installed))
        if any(module == f or module.startswith(f"{f}.") for f in forbidden if f != installed)
    ]
    assert not upward, "imports pointing up:\n" + "\n".join(upward)


def test_import_reader_sees_lazy_and_relative_imports() -> None:
    source = (
        "import numpy\n"
        "def f():\n    from creditgraph.scoring.model import train_model\n"
        "from .. import settings\n"
        "from creditgraph import catalog\n"
    )
    modules = {m for _, m in imported_modules(source, "creditgraph.graph")}
    assert {"creditgraph.scoring.model", "creditgraph.settings", "creditgraph.catalog"} <= modules


# -- graph/ speaks no credit vocabulary ---------------------------------------------------
# Stems, matched at the start of each word of an identifier or docstring (``creditgraph``,
# the package's name, is not a credit word; ``underscore`` does not start with ``score``).
CREDIT_WORDS = ("credit", "score", "repay", "risk", "default")
CREDIT_COLUMNS = ("f_relationships",)  # column names matched whole
# "default" meaning a value used when none is given, not a missed payment.
VALUE_DEFAULT = re.compile(
    r"default_factory|default_access_mode|default_rng|DEFAULT_BATCH_SIZE|\(default:|the default,"
)
# (path pattern, word, why): the store persists what scoring writes back; nothing computes.
ALLOWED = [
    ("graph/schema.py", "score",
     "SCORE_PROPERTIES: the User properties written back are part of the stored schema"),
    ("graph/meta.py", "score", "score_run: the bookkeeping key existing graphs already hold"),
    ("graph/neo4j*", "score", "typed writes of schema.py's SCORE_PROPERTIES"),
    ("graph/neo4j*", "default",
     "gds_features' docstring calls its seed users 'known defaulters' (to say 'seed users')"),
    ("graph/views.py", "score", "the notebook picture colours the stored score property"),
    ("graph/views.py", "default", "the notebook picture rings the stored defaulted property"),
]  # fmt: skip


def identifiers_and_docstrings(source: str) -> list[tuple[int, str]]:
    """(line, text) of every name, attribute, definition, argument, keyword and docstring."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            docstring = ast.get_docstring(node, clean=False)
            if docstring:
                found.append((getattr(node, "lineno", 1), docstring))
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            found.append((node.lineno, node.name))
        elif isinstance(node, ast.Name):
            found.append((node.lineno, node.id))
        elif isinstance(node, ast.Attribute):
            found.append((node.lineno, node.attr))
        elif isinstance(node, ast.arg):
            found.append((node.lineno, node.arg))
        elif isinstance(node, ast.keyword) and node.arg:
            found.append((node.lineno, node.arg))
        elif isinstance(node, ast.alias):
            found.append((node.lineno, node.asname or node.name))
    return found


def credit_words(text: str) -> set[str]:
    text = VALUE_DEFAULT.sub(" ", text)
    words = {w.lower() for w in re.findall(r"[A-Za-z]+", text)} - {"creditgraph"}
    hits = {stem for stem in CREDIT_WORDS for w in words if w.startswith(stem)}
    return hits | {c for c in CREDIT_COLUMNS if c in text}


def test_graph_speaks_no_credit_vocabulary() -> None:
    found = []
    for path in python_files("graph"):
        name = path.relative_to(ROOT).as_posix()
        for line, text in identifiers_and_docstrings(path.read_text()):
            for word in sorted(credit_words(text)):
                if not any(fnmatch(name, pattern) and word == w for pattern, w, _ in ALLOWED):
                    found.append(f"{name}:{line} says {word!r} in {text[:60]!r}")
    assert not found, "credit vocabulary in graph/ (it belongs in scoring/):\n" + "\n".join(found)


def test_vocabulary_reader() -> None:
    assert credit_words("neighbour_default_share") == {"default"}
    assert credit_words("def f(previous_scores): 'score - f_relationships'") == {
        "score", "f_relationships"}  # fmt: skip
    assert credit_words("creditgraph.graph.store; underscore; field(default_factory=list)") == set()
