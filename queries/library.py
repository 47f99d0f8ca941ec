"""The investigation library: ``queries/<topic>/<name>.cypher`` files and their headers.

Every file starts with a header of ``//`` lines::

    // name: friend_cluster
    // params: user_id (str, required): the user at the centre
    // params: hops (int, 2): friendship hops to follow, 1 to 3
    // description: A user's friends up to k hops away, with their scores and outcomes.
    // example: creditgraph query run friend_cluster --param user_id=u0000042
    // reads: User.score, User.pd

``params`` lines are ``name (type, default): meaning``, one per parameter
(``// params: none`` when there are none); ``default`` is ``required`` for a
parameter the caller must give. Types are ``str``, ``int``, ``float``,
``bool`` and ``date`` (ISO ``YYYY-MM-DD``). ``reads`` (optional) names
properties written back by scoring that the query needs. The file holds the
Neo4j 5 text; a sibling ``<name>.embedded.cypher`` holds the embedded engine's
equivalent where its dialect differs (same parameters, same columns).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any, Final

import numpy as np

from creditgraph.errors import QueryError

ROOT: Final = Path(__file__).resolve().parent
EMBEDDED_SUFFIX: Final = ".embedded.cypher"
DIALECTS: Final = ("neo4j", "embedded")
TYPES: Final = ("str", "int", "float", "bool", "date")
# Keyword arguments of :func:`queries.run` itself; no query may declare them.
RESERVED: Final = frozenset({"params", "timeout_s"})

_HEADER = re.compile(r"^//\s*(name|params|description|example|reads):\s*(.*?)\s*$")
_PARAM = re.compile(
    r"^(?P<name>[A-Za-z_]\w*) \((?P<type>\w+), (?P<default>[^)]*)\): (?P<meaning>.+)$"
)
_TRUE, _FALSE = {"true", "1", "yes", "y"}, {"false", "0", "no", "n"}


class _Required:
    """Marks a parameter without a default."""

    def __repr__(self) -> str:
        return "required"


REQUIRED: Final = _Required()


@dataclass(frozen=True)
class Param:
    """One declared parameter: ``name (type, default): meaning``."""

    name: str
    type: str
    default: Any
    meaning: str

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def _error(self, value: object, query: str) -> QueryError:
        return QueryError(
            f"parameter {self.name!r} of {query} expects {self.type}, got {value!r}"
            f" ({type(value).__name__})"
        )

    def convert(self, value: object, query: str = "the query") -> Any:
        """Check a value against the declared type (ints pass as floats, ISO text as dates)."""
        kind = self.type
        if kind == "str" and isinstance(value, str):
            return value
        if kind == "bool" and isinstance(value, bool | np.bool_):
            return bool(value)
        if kind == "int" and isinstance(value, int | np.integer) and not _is_bool(value):
            return int(value)
        if kind == "float" and isinstance(value, int | float | np.number) and not _is_bool(value):
            return float(value)
        if kind == "date":
            if isinstance(value, datetime):  # also pandas.Timestamp
                return value.date()
            if isinstance(value, date):
                return value
            if isinstance(value, str):
                return self.parse(value, query)
        raise self._error(value, query)

    def parse(self, text: str, query: str = "the query") -> Any:
        """Convert command-line text (``k=v``'s ``v``) to the declared type."""
        kind = self.type
        try:
            if kind == "str":
                return text
            if kind == "int":
                return int(text)
            if kind == "float":
                return float(text)
            if kind == "date":
                return date.fromisoformat(text.strip())
            if kind == "bool" and text.strip().lower() in _TRUE | _FALSE:
                return text.strip().lower() in _TRUE
        except ValueError:
            pass
        raise self._error(text, query)


def _is_bool(value: object) -> bool:
    return isinstance(value, bool | np.bool_)


@dataclass(frozen=True)
class QuerySpec:
    """One investigation: its header and where its texts live."""

    name: str
    topic: str
    description: str
    example: str
    params: tuple[Param, ...]
    reads: tuple[str, ...]
    path: Path
    embedded_path: Path | None

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise QueryError(f"unknown parameter {name!r} for {self.name}; {self._takes()}")

    def _takes(self) -> str:
        return f"it takes: {', '.join(self.param_names)}" if self.params else "it takes none"

    def text(self, dialect: str = "neo4j") -> str:
        """The text for ``dialect``: the embedded sibling if there is one, else the main text."""
        if dialect not in DIALECTS:
            raise QueryError(f"unknown dialect {dialect!r}: use one of {', '.join(DIALECTS)}")
        path = self.embedded_path if dialect == "embedded" and self.embedded_path else self.path
        return path.read_text(encoding="utf-8")

    def bind(self, values: Mapping[str, object]) -> dict[str, Any]:
        """Every declared parameter with its checked value: given, else the default."""
        for name in values:
            if name not in self.param_names:
                raise QueryError(f"unknown parameter {name!r} for {self.name}; {self._takes()}")
        bound: dict[str, Any] = {}
        for p in self.params:
            if p.name in values:
                bound[p.name] = p.convert(values[p.name], self.name)
            elif p.required:
                raise QueryError(f"{self.name} needs parameter {p.name!r} ({p.type}): {p.meaning}")
            else:
                bound[p.name] = p.default
        return bound

    def signature(self) -> str:
        """The parameters as ``user_id: str, hops: int = 2`` (for listings)."""
        return ", ".join(
            f"{p.name}: {p.type}" + ("" if p.required else f" = {p.default}") for p in self.params
        )


def parse_header(path: Path) -> QuerySpec:
    """Read the ``//`` header of one ``.cypher`` file; raise :class:`QueryError` if malformed."""
    fields: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        if not line.startswith("//"):
            break
        match = _HEADER.match(line)
        if match:
            fields.setdefault(match.group(1), []).append(match.group(2))

    def one(key: str) -> str:
        values = fields.get(key, [])
        if len(values) != 1 or not values[0]:
            raise QueryError(f"{path}: the header needs exactly one '// {key}:' line")
        return values[0]

    name = one("name")
    if name != path.stem:
        raise QueryError(f"{path}: '// name: {name}' does not match the file name")
    params: list[Param] = []
    lines = fields.get("params", [])
    if lines != ["none"]:
        if not lines:
            raise QueryError(f"{path}: no '// params:' line (write '// params: none')")
        for line in lines:
            match = _PARAM.match(line)
            if not match:
                raise QueryError(
                    f"{path}: bad params line {line!r}; expected 'name (type, default): meaning'"
                )
            kind, raw = match["type"], match["default"].strip()
            if kind not in TYPES:
                raise QueryError(f"{path}: parameter {match['name']!r} has unknown type {kind!r}")
            if match["name"] == "limit" and kind != "int":
                raise QueryError(f"{path}: 'limit' caps the rows returned and must be an int")
            param = Param(match["name"], kind, REQUIRED, match["meaning"])
            if raw != "required":
                param = replace(param, default=param.parse(raw, name))
            if param.name in RESERVED or param.name in (p.name for p in params):
                raise QueryError(f"{path}: parameter name {param.name!r} is reserved or repeated")
            params.append(param)
    reads = tuple(r.strip() for line in fields.get("reads", []) for r in line.split(","))
    sibling = path.with_name(path.stem + EMBEDDED_SUFFIX)
    return QuerySpec(
        name=name,
        topic=path.parent.name,
        description=one("description"),
        example=one("example"),
        params=tuple(params),
        reads=tuple(r for r in reads if r),
        path=path,
        embedded_path=sibling if sibling.exists() else None,
    )


@cache
def _library() -> dict[str, QuerySpec]:
    specs: dict[str, QuerySpec] = {}
    for path in sorted(ROOT.glob("*/*.cypher")):
        if path.name.endswith(EMBEDDED_SUFFIX):
            continue
        spec = parse_header(path)
        if spec.name in specs:
            raise QueryError(f"two investigations are named {spec.name!r}: {path}")
        specs[spec.name] = spec
    return specs


def list_queries() -> list[QuerySpec]:
    """Every investigation, sorted by topic then name."""
    return sorted(_library().values(), key=lambda s: (s.topic, s.name))


def describe(name: str) -> QuerySpec:
    """The investigation called ``name`` (or ``topic/name``)."""
    library = _library()
    topic, _, short = name.rpartition("/")
    spec = library.get(short)
    if spec is None or (topic and spec.topic != topic):
        close = difflib.get_close_matches(short, library, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see `creditgraph query list`"
        raise QueryError(f"no investigation named {name!r}{hint}")
    return spec


def show(name: str) -> str:
    """The Neo4j text of an investigation, followed by its embedded variant if it has one."""
    spec = describe(name)
    text = spec.text("neo4j")
    if spec.embedded_path is not None:
        rel = spec.embedded_path.relative_to(ROOT.parent)
        text += f"\n// ---- embedded dialect: {rel} ----\n" + spec.text("embedded")
    return text
