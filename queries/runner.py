"""Run investigations and ad-hoc Cypher read-only, and turn results into text.

Safety, in layers: every statement passes :func:`graph.readonly.check_read_only`
(an allow-list of read clauses) before it is sent, on any store; values only
ever travel as parameters; the store's own ``query`` is read-only (a READ-mode
session on Neo4j); and commands that never write open the embedded database
read-only (:func:`open_for_reading`).

A row limit is pushed into the statement where that cannot change its first
rows (:func:`graph.readonly.with_limit`), handed to stores whose ``query``
takes ``limit`` (the embedded store then reads no further), and applied again
to what comes back.
"""

from __future__ import annotations

import inspect
import json
import math
import re
import warnings
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from creditgraph.errors import QueryError
from creditgraph.graph.readonly import check_read_only, with_limit
from creditgraph.graph.store import GraphStore
from creditgraph.graph.stores import open_store
from creditgraph.graph.versions import GraphVersions
from creditgraph.queries.library import TYPES, Param, describe

FORMATS = ("table", "csv", "json")
_ADHOC_PARAM = re.compile(r"^(?P<name>[A-Za-z_]\w*)(?::(?P<type>\w+))?=(?P<value>.*)$", re.DOTALL)


def dialect_of(store: GraphStore) -> str:
    """``embedded`` or ``neo4j``: the store's ``dialect`` attribute, else guessed from its class."""
    dialect = getattr(store, "dialect", None)
    if dialect is None:
        from creditgraph.graph.embedded import EmbeddedStore

        dialect = "embedded" if isinstance(store, EmbeddedStore) else "neo4j"
    return str(dialect)


def run(
    store: GraphStore,
    name: str,
    /,
    params: Mapping[str, object] | None = None,
    *,
    limit: int | None = None,
    timeout_s: float | None = None,
    **kwargs: object,
) -> pd.DataFrame:
    """Run the investigation ``name`` on ``store`` and return its rows.

    Parameters come as a mapping, as keyword arguments, or both; each is
    checked against the header (unknown names, missing required ones and
    wrong types raise :class:`QueryError` naming the parameter and its type).
    ``limit`` caps the rows returned; where the query declares a ``limit``
    parameter it is that parameter (default: its declared default), so giving
    it both as ``limit=`` and in ``params`` with different values is an error.
    ``timeout_s`` is passed to stores whose ``query`` accepts it; others apply
    their own timeout (the embedded store's ``query_timeout_ms``, 60 s by default).

    >>> rows = run(store, "friend_cluster", user_id="u0000042", hops=2)  # doctest: +SKIP
    """
    spec = describe(name)
    given = {**(params or {}), **kwargs}
    if limit is not None and "limit" in spec.param_names:
        if "limit" in given and given["limit"] != limit:
            raise QueryError(
                f"{spec.name}: limit given twice ({given['limit']!r} as a parameter, {limit!r}"
                " as the row limit); give it once"
            )
        given["limit"] = limit
    values = spec.bind(given)
    text = spec.text(dialect_of(store))
    try:
        return _read(store, text, values, values.get("limit", limit), timeout_s)
    except QueryError as exc:
        hint = ""
        # The embedded engine refuses a property no node has yet; Neo4j reads it as null.
        if spec.reads and "cannot find property" in str(exc).lower():
            hint = (
                f"; {spec.name} reads {', '.join(spec.reads)}, written back by scoring"
                " (run `creditgraph score` first)"
            )
        raise QueryError(f"{spec.name}: {exc}{hint}") from exc


def run_cypher(
    store: GraphStore,
    statement: str,
    params: Mapping[str, object] | None = None,
    *,
    limit: int | None = None,
    timeout_s: float | None = None,
) -> pd.DataFrame:
    """Run one ad-hoc read-only statement; writes are refused before anything is sent."""
    return _read(store, statement, dict(params or {}), limit, timeout_s)


def _read(
    store: GraphStore,
    text: str,
    values: dict[str, Any],
    limit: int | None,
    timeout_s: float | None,
) -> pd.DataFrame:
    """Check, send, cap: the one path every statement takes to a store."""
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise QueryError(f"limit must be a positive int, got {limit!r}")
    if timeout_s is not None and not timeout_s > 0:
        raise QueryError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")
    check_read_only(text)
    options: dict[str, Any] = {}
    if limit is not None:
        text = with_limit(text, limit)
        if _accepts(store, "limit"):
            options["limit"] = limit
    if timeout_s is not None:
        if _accepts(store, "timeout_s"):
            options["timeout_s"] = timeout_s
        else:
            warnings.warn(
                f"{type(store).__name__}.query takes no timeout_s; its own timeout applies",
                stacklevel=3,
            )
    frame = store.query(text, values, **options)
    return frame if limit is None else frame.head(limit).reset_index(drop=True)


def _accepts(store: GraphStore, option: str) -> bool:
    """Whether the store's ``query`` takes the keyword ``option``."""
    try:
        parameters = inspect.signature(store.query).parameters
    except (TypeError, ValueError):
        return False
    return option in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )


def open_for_reading(spec: str, versions: GraphVersions) -> GraphStore:
    """Open a store only to read it: the embedded database read-only, others as usual.

    The engine then refuses writes itself, behind the text check (Neo4j reads
    run in READ sessions anyway; an in-memory store holds nothing to protect).
    """
    return open_store(spec, versions=versions, read_only=spec == "embedded")


# -- command-line helpers --------------------------------------------------------
def parse_params(pairs: Iterable[str], query: str | None = None) -> dict[str, Any]:
    """``["k=v", ...]`` as typed values.

    With ``query`` each value is converted to the type its header declares.
    Without (ad-hoc Cypher) a type may be named, ``since:date=2024-01-01``;
    otherwise ints, floats and ``true``/``false`` are recognised and the rest
    stays text.
    """
    spec = describe(query) if query is not None else None
    parsed: dict[str, Any] = {}
    for pair in pairs:
        match = _ADHOC_PARAM.match(pair)
        if not match or (spec is not None and match["type"]):
            expected = "name=value" if spec is not None else "name=value or name:type=value"
            raise QueryError(f"expected {expected}, got {pair!r}")
        name, kind, text = match["name"], match["type"], match["value"]
        if name in parsed:
            raise QueryError(f"parameter {name!r} given twice")
        if spec is not None:
            parsed[name] = spec.param(name).parse(text, spec.name)
        elif kind is not None:
            if kind not in TYPES:
                raise QueryError(f"parameter {name!r}: unknown type {kind!r}; use {TYPES}")
            parsed[name] = Param(name, kind, None, "").parse(text)
        else:
            parsed[name] = _infer(text)
    return parsed


def _infer(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    lowered = text.lower()
    return lowered == "true" if lowered in ("true", "false") else text


def format_result(frame: pd.DataFrame, fmt: str = "table") -> str:
    """Rows as ``table`` (plain text), ``csv`` or ``json`` (a list of objects).

    Dates print as ``YYYY-MM-DD``, missing values as empty (CSV) or ``null``
    (JSON); list cells (paths, members) are JSON arrays in CSV too.
    """
    if fmt not in FORMATS:
        raise QueryError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    records = [
        {str(k): jsonable(v) for k, v in row.items()} for row in frame.to_dict(orient="records")
    ]
    if fmt == "json":
        return json.dumps(records, ensure_ascii=False, indent=2)
    cells = pd.DataFrame(
        [{k: _cell(v) for k, v in row.items()} for row in records],
        columns=[str(c) for c in frame.columns],
    )
    if fmt == "csv":
        return cells.to_csv(index=False)
    return cells.to_string(index=False) if len(cells) else "(no rows)"


def jsonable(value: Any) -> Any:
    """A JSON-ready version of one cell."""
    if isinstance(value, list | tuple | np.ndarray):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime):  # also pandas.Timestamp
        return value.date().isoformat() if value == _midnight(value) else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "iso_format"):  # neo4j.time types
        return value.iso_format()
    return value


def _midnight(value: datetime) -> datetime:
    return value.replace(hour=0, minute=0, second=0, microsecond=0)


def _cell(value: Any) -> Any:
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else value
