"""Check Cypher with Neo4j's own parser, without a server.

:func:`lint_statements` sends every statement to one ``node`` process running
``tools/cypher-lint/lint.mjs``, which calls ``lintCypherQuery`` from the pinned
``@neo4j-cypher/language-support`` package: syntax, semantics, undeclared
``$parameters``, and procedures/functions (with their signatures) as on a
Neo4j 5 server with GDS and APOC. Install the package once with
``npm ci --prefix tools/cypher-lint`` (``make test`` does).

:func:`query_files` reads the query library (``queries/**/*.cypher``) with the
parameters each file declares in its header, ready for :func:`lint_statements`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from creditgraph.errors import CreditGraphError
from creditgraph.graph.schema import NODE_TYPES, REL_TYPES

PACKAGE = "@neo4j-cypher/language-support"
PINNED_VERSION = "2.0.0-next.38"
ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "cypher-lint" / "lint.mjs"
INSTALL_HINT = "npm ci --prefix tools/cypher-lint"
ERROR, WARNING = 1, 2

Statement = tuple[str, str, dict[str, Any]]  # name, Cypher text, sample parameters


class LinterUnavailable(CreditGraphError):
    """node or the pinned Cypher language-support package is missing."""


@dataclass(frozen=True)
class LintProblem:
    """One diagnostic for one statement; ``severity`` 1 is an error, 2 a warning."""

    name: str
    severity: int
    message: str
    line: int
    column: int

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def __str__(self) -> str:
        kind = {ERROR: "error", WARNING: "warning"}.get(self.severity, "note")
        return f"{self.name}:{self.line}:{self.column}: {kind}: {self.message.splitlines()[0]}"


def modules_dir() -> Path:
    """Where the npm package is installed (``CYPHER_LINT_MODULES`` overrides)."""
    candidates = [
        ROOT / "tools" / "cypher-lint" / "node_modules",
        ROOT / ".cypher-lint" / "node_modules",
    ]
    if os.environ.get("CYPHER_LINT_MODULES"):
        candidates.insert(0, Path(os.environ["CYPHER_LINT_MODULES"]))
    for path in candidates:
        if (path / PACKAGE / "package.json").exists():
            return path
    raise LinterUnavailable(f"{PACKAGE}@{PINNED_VERSION} is not installed; run: {INSTALL_HINT}")


def lint_statements(
    statements: Sequence[Statement], *, node: str | None = None, timeout_s: float = 300.0
) -> list[LintProblem]:
    """Every diagnostic Neo4j's parser reports for ``statements``, in one node process.

    Each statement is ``(name, cypher, parameters)``; the parameter names are
    declared to the linter (values are only samples), so a ``$name`` the caller
    does not pass is an error.
    """
    if not statements:
        return []
    executable = node or shutil.which("node")
    if executable is None:
        raise LinterUnavailable("node (>= 20) is not on PATH; it runs the Cypher linter")
    payload = {
        "statements": [
            {"name": name, "query": cypher, "parameters": params}
            for name, cypher, params in statements
        ],
        "labels": sorted(NODE_TYPES),
        "relationshipTypes": sorted(REL_TYPES),
    }
    env = {**os.environ, "CYPHER_LINT_MODULES": str(modules_dir())}
    done = subprocess.run(
        [executable, str(SCRIPT)],
        input=json.dumps(payload, default=str),
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout_s,
        check=False,
    )
    if done.returncode != 0:
        raise LinterUnavailable(
            f"the Cypher linter failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}"
        )
    report = json.loads(done.stdout)
    return [
        LintProblem(result["name"], int(d["severity"]), d["message"], d["line"], d["column"])
        for result in report["results"]
        for d in result["diagnostics"]
    ]


# -- the query library -----------------------------------------------------------------------
_SAMPLES: dict[str, Any] = {
    "string": "x", "str": "x", "id": "u1", "int": 1, "integer": 1, "int64": 1, "float": 0.5,
    "double": 0.5, "number": 0.5, "bool": True, "boolean": True, "date": "2024-01-31",
    "datetime": "2024-01-31T12:00:00", "timestamp": "2024-01-31T12:00:00", "list": [],
    "map": {},
}  # fmt: skip
_PARAM = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(([^)]*)\)")
_HEADER_KEY = re.compile(r"\s*([A-Za-z][A-Za-z _-]*):")


def declared_parameters(text: str) -> dict[str, Any]:
    """Parameters a query file declares in its header, with a sample value for each.

    The header is the leading ``//`` comment block; parameters are listed as
    ``name (type[, default]): meaning`` after ``// params:``, on that line or on
    the following comment lines (several on one line separated by ``;``).
    """
    params: dict[str, Any] = {}
    in_params = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if not line.startswith("//"):
            break  # end of the header
        body = line[2:]
        key = _HEADER_KEY.match(body)
        if key and not _PARAM.match(body):
            in_params = key.group(1).strip().lower() in ("params", "parameters")
            body = body[key.end() :] if in_params else ""
        if not in_params:
            continue
        for part in body.split(";"):
            found = _PARAM.match(part)
            if found:
                kind = found.group(2).split(",")[0].strip().lower()
                kind = re.sub(r"[^a-z0-9]", "", kind.split("<")[0].split("[")[0])
                params[found.group(1)] = _SAMPLES.get(kind, "x")
    return params


def query_files(root: Path | None = None) -> list[Statement]:
    """``queries/**/*.cypher`` (not ``*.embedded.cypher``) as statements to lint."""
    base = (root or ROOT) / "queries"
    files: Iterable[Path] = sorted(base.glob("**/*.cypher")) if base.is_dir() else []
    return [
        (str(path.relative_to(base.parent)), text, declared_parameters(text))
        for path in files
        if not path.name.endswith(".embedded.cypher")
        for text in [path.read_text(encoding="utf-8")]
    ]
