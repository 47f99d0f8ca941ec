"""The production graph store: Neo4j 5 through the official ``neo4j`` driver.

Implements :class:`graph.store.GraphStore` with the same semantics as
:class:`graph.embedded.EmbeddedStore`. Choices and traps:

* Credentials come from the environment only (``NEO4J_URI``, ``NEO4J_USER``,
  ``NEO4J_PASSWORD``, ``NEO4J_DATABASE``) and never appear in messages or logs.
* Every statement is generated from :mod:`graph.schema` by the ``cypher_*``
  builders below; labels, types and keys are validated identifiers and every
  value travels as a parameter. :func:`all_statements` lists them all so CI can
  check each one with Neo4j's own parser (``tests/test_cypher_lint.py``).
* Loads are batched ``UNWIND $rows AS row MERGE ...`` in managed transactions
  (``execute_write``), so the driver retries transient failures; the work
  functions are idempotent (``MERGE`` + ``SET +=``) and keep no state between
  attempts, so a retry neither duplicates rows nor double-counts them.
* Inside :meth:`Neo4jStore.atomic` all writes go to one explicit transaction
  (no driver retries there: the block is the unit a caller retries); it is
  for blocks of bounded size.
* A load (:meth:`Neo4jStore.bulk_load`) is never one transaction: Meta
  ``pending_load`` is set first, then every batch of :func:`load_plan` is its
  own retried transaction that also records ``load_progress`` (so a killed
  load, re-run with the same id and frames, sends exactly the batches that
  did not commit), and a last transaction sets ``load_id`` and clears both.
* Investigations (:meth:`Neo4jStore.query`) pass the same client-side check as
  the embedded store and then run with ``READ_ACCESS`` via ``execute_read``,
  so the server refuses writes too.
* Exports (:meth:`Neo4jStore.export_edges`) read node keys and relationships in
  one read transaction and fill numpy arrays chunk by chunk (``result.fetch``),
  never a Python list per row; an endpoint key missing from the key list is an
  error, never a guessed position.
* GDS (:meth:`Neo4jStore.gds_features`) projects natively, mutates, writes once,
  drops the projection and reads the written properties back in one ``MATCH``.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import neo4j
import neo4j.exceptions as ne
import numpy as np
import pandas as pd
import pyarrow as pa

from creditgraph.errors import QueryError, ReadOnlyViolation, StoreUnavailable
from creditgraph.graph.meta import LOAD_ID, LOAD_PROGRESS, META_QUERY, PENDING_LOAD, read_meta
from creditgraph.graph.readonly import check_read_only
from creditgraph.graph.schema import (
    ARROW_TYPES,
    BOOL,
    DATE,
    FLOAT,
    INT,
    META,
    NODE_TYPES,
    REL_TYPES,
    SCORE_PROPERTIES,
    STRING,
    TIMESTAMP,
    USER,
    NodeType,
    RelType,
    kind_of,
)
from creditgraph.graph.store import EdgeArrays, LoadWritten, batches

DEFAULT_BATCH_SIZE = 10_000
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Properties computed in the projected graph; written back as ``gds_<name>`` node properties.
GDS_PROPERTIES = ("pagerank", "component", "kcore", "clustering", "community", "degree")
GDS_WRITE_PREFIX = "gds_"
# Columns of gds_features: graph.features.position's, plus the Leiden/Louvain community.
GDS_FEATURE_COLUMNS = ("pagerank_scaled", "component_size", "clustering", "coreness", "community")
# GDS Community Edition runs at most 4 threads per algorithm (GDS 2.13 system requirements).
GDS_MAX_CONCURRENCY = 4
# Rows taken from the server per ``result.fetch`` while exporting (one numpy chunk each).
EXPORT_CHUNK_ROWS = 100_000
# Properties investigations look up by value (range indexes; keys have their constraints).
INDEXED_PROPERTIES: dict[str, tuple[str, ...]] = {"User": ("community", "signup_date")}


def _ident(name: str) -> str:
    """``name`` if it is a plain Cypher identifier; anything else never reaches query text."""
    if not isinstance(name, str) or not _IDENT.match(name):
        raise QueryError(f"{name!r} is not a valid identifier (letters, digits, underscore)")
    return name


def _node(label: str) -> NodeType:
    try:
        return NODE_TYPES[label]
    except KeyError:
        raise QueryError(f"unknown node label {label!r}; known: {sorted(NODE_TYPES)}") from None


def _rel(name: str) -> RelType:
    try:
        return REL_TYPES[name]
    except KeyError:
        raise QueryError(f"unknown relationship {name!r}; known: {sorted(REL_TYPES)}") from None


# -- statements: the only Cypher this store sends --------------------------------------------
def cypher_constraint(node: NodeType) -> str:
    """Uniqueness constraint on a label's key (also gives the index every MERGE uses)."""
    label, key = _ident(node.label), _ident(node.key)
    name = _ident(f"{label.lower()}_{key}_unique")
    return f"CREATE CONSTRAINT {name} IF NOT EXISTS FOR (n:{label}) REQUIRE n.{key} IS UNIQUE"


def cypher_index(node: NodeType, prop: str) -> str:
    """Range index on a property investigations filter on (``User.community`` ...)."""
    label, key = _ident(node.label), _ident(prop)
    name = _ident(f"{label.lower()}_{key}")
    return f"CREATE INDEX {name} IF NOT EXISTS FOR (n:{label}) ON (n.{key})"


def cypher_upsert_nodes(node: NodeType) -> str:
    """Merge a batch of nodes; return how many were created or had a property changed."""
    label, key = _ident(node.label), _ident(node.key)
    # properties() snapshots the stored map before SET, so "changed" means a value differs.
    return (
        "UNWIND $rows AS row\n"
        f"OPTIONAL MATCH (old:{label} {{{key}: row.key}})\n"
        "WITH row, old IS NULL AS fresh, properties(old) AS before\n"
        f"MERGE (n:{label} {{{key}: row.key}})\n"
        "SET n += row.props\n"
        "WITH fresh, before, properties(n) AS after\n"
        "RETURN sum(CASE WHEN fresh OR before <> after THEN 1 ELSE 0 END) AS changed"
    )


def cypher_missing_keys(node: NodeType) -> str:
    """Which of ``$keys`` have no node (checked before relationships are written)."""
    label, key = _ident(node.label), _ident(node.key)
    return (
        "UNWIND $keys AS key\n"
        f"OPTIONAL MATCH (n:{label} {{{key}: key}})\n"
        "WITH key, n WHERE n IS NULL\n"
        "RETURN count(key) AS missing, collect(key)[..3] AS examples"
    )


def cypher_upsert_edges(rel: RelType) -> str:
    """Merge a batch of relationships between existing nodes (two MATCHes, no comma pattern)."""
    source, target = _node(rel.source), _node(rel.target)
    s_label, s_key = _ident(source.label), _ident(source.key)
    t_label, t_key = _ident(target.label), _ident(target.key)
    kind = _ident(rel.name)
    return (
        "UNWIND $rows AS row\n"
        f"MATCH (a:{s_label} {{{s_key}: row.src}})\n"
        f"MATCH (b:{t_label} {{{t_key}: row.dst}})\n"
        f"OPTIONAL MATCH (a)-[old:{kind}]->(b)\n"
        "WITH a, b, row, old IS NULL AS fresh, properties(old) AS before\n"
        f"MERGE (a)-[r:{kind}]->(b)\n"
        "SET r += row.props\n"
        "WITH fresh, before, properties(r) AS after\n"
        "RETURN count(*) AS matched,"
        " sum(CASE WHEN fresh OR before <> after THEN 1 ELSE 0 END) AS changed"
    )


def cypher_node_ids(node: NodeType) -> str:
    """Every key of a label in key order (index-backed by the uniqueness constraint)."""
    label, key = _ident(node.label), _ident(node.key)
    return f"MATCH (n:{label}) WHERE n.{key} IS NOT NULL RETURN n.{key} AS key ORDER BY key"


def cypher_export_edges(rel: RelType) -> str:
    """Every relationship of a type as key pairs; properties picked by name from ``$properties``."""
    source, target = _node(rel.source), _node(rel.target)
    return (
        f"MATCH (a:{_ident(source.label)})-[r:{_ident(rel.name)}]->(b:{_ident(target.label)})\n"
        f"RETURN a.{_ident(source.key)} AS src, b.{_ident(target.key)} AS dst,"
        " [p IN $properties | r[p]] AS props"
    )


def cypher_write_properties(node: NodeType) -> str:
    """Set properties (scores, features) on existing nodes; return how many were found."""
    label, key = _ident(node.label), _ident(node.key)
    return (
        "UNWIND $rows AS row\n"
        f"MATCH (n:{label} {{{key}: row.key}})\n"
        "SET n += row.props\n"
        "RETURN count(n) AS written"
    )


CYPHER_GDS_VERSION = "RETURN gds.version() AS version"


def cypher_gds_project(rel: str) -> str:
    """Native projection of every User and one User-User type as a simple undirected graph.

    ``UNDIRECTED`` loads each stored relationship both ways and ``SINGLE``
    keeps one of parallel copies, so ``a->b`` stored next to ``b->a`` is one
    edge, as in :class:`graph.network.FriendGraph`; users without
    relationships stay in the graph (the node projection is the label).
    """
    kind = _rel(rel)
    if kind.source != USER.label or kind.target != USER.label:
        raise QueryError(f"in-database features need a User-User relationship, got {rel!r}")
    label, name = _ident(USER.label), _ident(kind.name)
    return (
        f"CALL gds.graph.project($graph, '{label}',"
        f" {{{name}: {{orientation: 'UNDIRECTED', aggregation: 'SINGLE'}}}},"
        " {readConcurrency: $concurrency})\n"
        "YIELD graphName, nodeCount, relationshipCount\n"
        "RETURN graphName AS graph, nodeCount AS nodes, relationshipCount AS relationships"
    )


CYPHER_GDS_MUTATE = {
    "pagerank": "CALL gds.pageRank.mutate($graph, $config)\n"
    "YIELD nodePropertiesWritten RETURN nodePropertiesWritten",
    "component": "CALL gds.wcc.mutate($graph, $config)\n"
    "YIELD nodePropertiesWritten RETURN nodePropertiesWritten",
    "kcore": "CALL gds.kcore.mutate($graph, $config)\n"
    "YIELD nodePropertiesWritten RETURN nodePropertiesWritten",
    "clustering": "CALL gds.localClusteringCoefficient.mutate($graph, $config)\n"
    "YIELD nodePropertiesWritten RETURN nodePropertiesWritten",
    "leiden": "CALL gds.leiden.mutate($graph, $config)\n"
    "YIELD nodePropertiesWritten RETURN nodePropertiesWritten",
    "louvain": "CALL gds.louvain.mutate($graph, $config)\n"
    "YIELD nodePropertiesWritten RETURN nodePropertiesWritten",
    "degree": "CALL gds.degree.mutate($graph, $config)\n"
    "YIELD nodePropertiesWritten RETURN nodePropertiesWritten",
}


def cypher_gds_personalized_pagerank() -> str:
    """PageRank restarting at the seed users; no row at all when none of them exists.

    GDS treats an empty ``sourceNodes`` list as ordinary PageRank, so the call
    only runs when at least one seed was found (``WHERE size(sources) > 0``).
    """
    label, key = _ident(USER.label), _ident(USER.key)
    return (
        f"MATCH (s:{label}) WHERE s.{key} IN $seeds\n"
        "WITH collect(s) AS sources\n"
        "WHERE size(sources) > 0\n"
        "CALL gds.pageRank.mutate($graph, {mutateProperty: $property, sourceNodes: sources,"
        " dampingFactor: $damping, maxIterations: $max_iterations, tolerance: $tolerance,"
        " concurrency: $concurrency})\n"
        "YIELD nodePropertiesWritten\n"
        "RETURN nodePropertiesWritten, size(sources) AS seeds"
    )


def cypher_gds_write() -> str:
    """Write the mutated properties (renamed ``gds_<name>``) onto the User nodes, once."""
    return (
        f"CALL gds.graph.nodeProperties.write($graph, $properties, ['{_ident(USER.label)}'],"
        " {writeConcurrency: $concurrency})\n"
        "YIELD propertiesWritten RETURN propertiesWritten"
    )


def cypher_gds_read(properties: Sequence[str]) -> str:
    """Every user's key and written ``gds_<name>`` properties, in one scan of ``User``."""
    key = _ident(USER.key)
    columns = ", ".join(f"u.{_ident(GDS_WRITE_PREFIX + p)} AS {_ident(p)}" for p in properties)
    return (
        f"MATCH (u:{_ident(USER.label)}) WHERE u.{key} IS NOT NULL\n"
        f"RETURN u.{key} AS {key}, {columns}"
    )


CYPHER_GDS_DROP = "CALL gds.graph.drop($graph, false) YIELD graphName RETURN graphName"


class StatementSample(NamedTuple):
    """One statement the store can send, with parameters of the right shape."""

    name: str
    cypher: str
    params: dict[str, Any]


_SAMPLE_VALUES: dict[str, Any] = {
    STRING: "u1",
    INT: 1,
    FLOAT: 0.5,
    BOOL: True,
    DATE: dt.date(2024, 1, 31),
    TIMESTAMP: dt.datetime(2024, 1, 31, 12, 0),
}


def _sample_props(properties: Mapping[str, str], skip: str | None = None) -> dict[str, Any]:
    return {p: _SAMPLE_VALUES[k] for p, k in properties.items() if p != skip}


def all_statements() -> list[StatementSample]:
    """Every statement :class:`Neo4jStore` can send, built by the same code the store runs."""
    out: list[StatementSample] = []
    for node in NODE_TYPES.values():
        row = {"key": "u1", "props": _sample_props(node.properties, skip=node.key)}
        out += [
            StatementSample(f"constraint:{node.label}", cypher_constraint(node), {}),
            *(
                StatementSample(f"index:{node.label}.{prop}", cypher_index(node, prop), {})
                for prop in INDEXED_PROPERTIES.get(node.label, ())
            ),
            StatementSample(
                f"upsert_nodes:{node.label}", cypher_upsert_nodes(node), {"rows": [row]}
            ),
            StatementSample(
                f"missing_keys:{node.label}", cypher_missing_keys(node), {"keys": ["u1"]}
            ),
            StatementSample(f"node_ids:{node.label}", cypher_node_ids(node), {}),
            StatementSample(
                f"write_properties:{node.label}",
                cypher_write_properties(node),
                {"rows": [{"key": "u1", "props": _sample_props(SCORE_PROPERTIES)}]},
            ),
        ]
    for rel in REL_TYPES.values():
        row = {"src": "u1", "dst": "u2", "props": _sample_props(rel.properties)}
        out += [
            StatementSample(f"upsert_edges:{rel.name}", cypher_upsert_edges(rel), {"rows": [row]}),
            StatementSample(
                f"export_edges:{rel.name}",
                cypher_export_edges(rel),
                {"properties": list(rel.properties)},
            ),
        ]
    out.append(StatementSample("read_meta", META_QUERY, {}))
    graph = {"graph": "creditgraph_features_0123abcd"}
    out.append(StatementSample("gds_version", CYPHER_GDS_VERSION, {}))
    for rel in REL_TYPES.values():
        if rel.source == rel.target == USER.label:
            out.append(
                StatementSample(
                    f"gds_project:{rel.name}",
                    cypher_gds_project(rel.name),
                    {**graph, "concurrency": GDS_MAX_CONCURRENCY},
                )
            )
    for algo, cypher in CYPHER_GDS_MUTATE.items():
        out.append(
            StatementSample(
                f"gds_mutate:{algo}", cypher, {**graph, "config": {"mutateProperty": algo}}
            )
        )
    out += [
        StatementSample(
            "gds_personalized_pagerank",
            cypher_gds_personalized_pagerank(),
            {
                **graph,
                "seeds": ["u1"],
                "property": "ppr",
                "damping": 0.85,
                "max_iterations": 200,
                "tolerance": 1e-10,
                "concurrency": GDS_MAX_CONCURRENCY,
            },
        ),
        StatementSample(
            "gds_write",
            cypher_gds_write(),
            {
                **graph,
                "properties": {"pagerank": "gds_pagerank"},
                "concurrency": GDS_MAX_CONCURRENCY,
            },
        ),
        StatementSample("gds_drop", CYPHER_GDS_DROP, dict(graph)),
        StatementSample("gds_read", cypher_gds_read(GDS_PROPERTIES), {}),
        StatementSample("gds_read:ppr", cypher_gds_read((*GDS_PROPERTIES, "ppr")), {}),
    ]
    return out


# -- values ---------------------------------------------------------------------------------
def _python_values(series: pd.Series, kind: str) -> list[Any]:
    """A column as driver-ready Python values; every missing value becomes ``None``."""
    missing = series.isna().to_numpy()
    values: list[Any]
    if kind == DATE:
        stamps = pd.to_datetime(series)
        values = [None if m else s.date() for s, m in zip(stamps, missing, strict=True)]
    elif kind == TIMESTAMP:
        stamps = pd.to_datetime(series)
        if getattr(stamps.dt, "tz", None) is not None:  # stored as UTC LocalDateTime
            stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
        values = [None if m else s.to_pydatetime() for s, m in zip(stamps, missing, strict=True)]
    else:
        cast: Callable[[Any], Any] = {INT: int, FLOAT: float, BOOL: _to_bool}.get(kind, str)
        values = [None if m else cast(v) for v, m in zip(series.tolist(), missing, strict=True)]
    return values


def _to_bool(value: Any) -> bool:
    if isinstance(value, str):  # bool("false") would be True
        if value.strip().lower() not in ("true", "false", "1", "0"):
            raise QueryError(f"{value!r} is not a boolean")
        return value.strip().lower() in ("true", "1")
    return bool(value)


def _rows(frame: pd.DataFrame, keys: Mapping[str, str], kinds: Mapping[str, str]) -> list[dict]:
    """``[{<key columns>, "props": {...}}]`` rows for ``UNWIND $rows``; None removes a property."""
    columns = {c: _python_values(frame[c], kinds.get(c, STRING)) for c in frame.columns}
    props = [c for c in frame.columns if c not in keys]
    out = []
    for i in range(len(frame)):
        row: dict[str, Any] = {alias: columns[c][i] for c, alias in keys.items()}
        row["props"] = {c: columns[c][i] for c in props}
        out.append(row)
    return out


def _native(value: Any) -> Any:
    """Driver values (temporal types, nodes) as plain Python values."""
    if hasattr(value, "to_native"):
        return value.to_native()
    if isinstance(value, list):
        return [_native(v) for v in value]
    if isinstance(value, dict):
        return {k: _native(v) for k, v in value.items()}
    return value


def _column_array(values: list[Any], kind: str | None) -> np.ndarray:
    """Values as the numpy array the embedded store gives for the same column type."""
    values = [_native(v) for v in values]
    arrow_type = ARROW_TYPES.get(kind) if kind else None
    try:
        array = pa.array(values, type=arrow_type, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return np.array(values, dtype=object)
    return array.to_numpy(zero_copy_only=False)


def _keys(series: pd.Series, what: str) -> pd.Series:
    if series.isna().any():
        raise QueryError(f"{what}: {int(series.isna().sum())} rows have no key")
    return series.astype(str)


# -- resumable loads --------------------------------------------------------------------------
LoadKind = Literal["nodes", "relationships"]


class Batch(NamedTuple):
    """Rows ``start:stop`` of one load step (a node label or relationship type): one transaction."""

    kind: LoadKind
    name: str
    start: int
    stop: int

    @property
    def rows(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class LoadProgress:
    """How far load ``load_id`` got: every step before ``name`` is complete, and ``rows`` of it.

    Kept as Meta ``load_progress`` (``"<load_id> <kind> <name> <rows>"``) in
    the transaction of the batch it describes. Rows, not batch numbers, so a
    re-run with another ``batch_size`` still resumes at the right row.
    """

    load_id: str
    kind: str
    name: str
    rows: int

    def encode(self) -> str:
        return f"{self.load_id} {self.kind} {self.name} {self.rows}"

    @classmethod
    def decode(cls, value: str | None) -> LoadProgress | None:
        parts = (value or "").split(" ")
        if len(parts) != 4 or not parts[3].isdigit():
            return None
        return cls(parts[0], parts[1], parts[2], int(parts[3]))


def load_plan(
    steps: Sequence[tuple[LoadKind, str, int]], batch_size: int, done: LoadProgress | None = None
) -> list[Batch]:
    """Every batch of a load in order, none over ``batch_size`` rows; after ``done`` only.

    ``steps`` are ``(kind, name, rows)`` in load order (nodes before the
    relationships that need them). With ``done`` the batches it says committed
    are left out. A ``done`` naming no step leaves nothing out, one past the
    end of its step re-sends that step: re-sending idempotent batches is safe.
    :meth:`Neo4jStore.bulk_load` sends exactly this plan (step by step).
    """
    resume = _resume_at([(kind, name) for kind, name, _ in steps], done)
    plan: list[Batch] = []
    for position, (kind, name, rows) in enumerate(steps):
        if position >= resume[0]:
            first = resume[1] if position == resume[0] else 0
            plan += _step_batches(kind, name, rows, batch_size, first)
    return plan


def _resume_at(names: Sequence[tuple[str, str]], done: LoadProgress | None) -> tuple[int, int]:
    """(step position, first row) where a load resumes after ``done``; (0, 0) from scratch."""
    if done is None or (done.kind, done.name) not in names:
        return 0, 0
    return names.index((done.kind, done.name)), done.rows


def _step_batches(kind: LoadKind, name: str, rows: int, size: int, first: int) -> list[Batch]:
    """One step's batches from row ``first`` (from 0 if ``first`` is past its end)."""
    if size < 1:
        raise ValueError(f"batch_size must be a positive number of rows, got {size!r}")
    starts = range(first if 0 <= first <= rows else 0, rows, size)
    return [Batch(kind, name, start, min(start + size, rows)) for start in starts]


def _meta_rows(values: Mapping[str, str | None]) -> list[dict[str, Any]]:
    """Meta upsert rows; ``None`` removes the value (the name then reads as absent)."""
    return [{"key": name, "props": {"value": value}} for name, value in values.items()]


# -- work functions: idempotent, no state kept between driver retries ------------------------
def _run_single(tx: Any, cypher: str, params: dict[str, Any]) -> dict[str, Any]:
    """Run one statement and return its single result row (or ``{}``)."""
    record = tx.run(cypher, params).single()
    return record.data() if record is not None else {}


def _run_rows(tx: Any, cypher: str, params: dict[str, Any]) -> tuple[list[str], list[list]]:
    """Run one statement and return its column names and all rows."""
    result = tx.run(cypher, params)
    return list(result.keys()), [list(r) for r in result]


def _merge_edges(tx: Any, cypher: str, rows: list[dict[str, Any]]) -> int:
    """Merge one batch of relationships; abort (roll back) if an endpoint vanished."""
    record = _run_single(tx, cypher, {"rows": rows})
    if int(record.get("matched", 0)) < len(rows):
        raise QueryError(
            f"{len(rows) - int(record.get('matched', 0))} relationships lost an endpoint "
            "while loading (a node was deleted concurrently); batch rolled back"
        )
    return int(record.get("changed", 0))


def _load_batch(
    tx: Any, edges: bool, cypher: str, rows: list[dict[str, Any]], progress: list[dict[str, Any]]
) -> int:
    """One batch of a load and its Meta ``load_progress``, in one transaction (both or neither)."""
    if edges:
        changed = _merge_edges(tx, cypher, rows)
    else:
        changed = int(_run_single(tx, cypher, {"rows": rows}).get("changed", 0))
    _run_single(tx, cypher_upsert_nodes(META), {"rows": progress})
    return changed


def _chunks(result: Any, size: int) -> Iterator[list[Any]]:
    """A result's records, ``size`` at a time (``Result.fetch``), until it is exhausted."""
    while records := result.fetch(size):
        yield records


def _read_keys(tx: Any, node: NodeType, chunk: int) -> pd.Index:
    """Every key of a label in key order, as an Index (read ``chunk`` keys at a time)."""
    result = tx.run(cypher_node_ids(node), {})
    parts = [np.array([r[0] for r in records], dtype=object) for records in _chunks(result, chunk)]
    keys = np.concatenate(parts) if parts else np.empty(0, dtype=object)
    index = pd.Index(keys, name=node.key)
    if not index.is_unique:  # no key constraint on this database: positions would be ambiguous
        raise QueryError(
            f"{node.label}: {int(index.duplicated().sum())} duplicate {node.key} values; "
            "run ensure_schema() on a clean database (keys must be unique)"
        )
    return index


def _positions(ids: pd.Index, keys: list[Any], rel: str, label: str, end: str) -> np.ndarray:
    """Positions of ``keys`` in ``ids``; a key that is not there is an error, never ``-1``."""
    found = ids.get_indexer(pd.Index(keys, dtype=object))
    if (found < 0).any():
        missing = [k for k, f in zip(keys, found, strict=True) if f < 0]
        raise QueryError(
            f"{rel}: {len(missing)} relationships in this chunk have a {end} node whose "
            f"{label} key is not among the {label} keys read in the same transaction "
            f"(first: {missing[0]!r}); refusing to export edges to unknown positions"
        )
    return found.astype(np.int64)


def _property_chunk(values: list[Any], kind: str | None) -> pa.Array | list[Any]:
    """One chunk of a property as an Arrow array of its schema type (as values if it is not)."""
    natives = [_native(v) for v in values]
    arrow_type = ARROW_TYPES.get(kind) if kind else None
    try:
        return pa.array(natives, type=arrow_type, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return natives


def _property_array(parts: list[pa.Array | list[Any]], kind: str | None) -> np.ndarray:
    """Chunks of one property as the numpy array the embedded store gives for its type."""
    arrow_type = ARROW_TYPES.get(kind) if kind else None
    arrays = [part for part in parts if isinstance(part, pa.Array)]
    if len(arrays) == len(parts) and (arrow_type is not None or len({a.type for a in arrays}) < 2):
        if not arrays:
            return _column_array([], kind)
        return pa.chunked_array(arrays, type=arrow_type).to_numpy()
    lists = [part.to_pylist() if isinstance(part, pa.Array) else part for part in parts]
    values = [v for part in lists for v in part]
    return _column_array(values, kind)


def _export_work(tx: Any, kind: RelType, properties: tuple[str, ...], chunk: int) -> EdgeArrays:
    """Keys of both end labels and every relationship of ``kind``, in one transaction.

    Pure (keeps nothing between driver retries): each call reads from scratch.
    """
    source_ids = _read_keys(tx, _node(kind.source), chunk)
    target_ids = (
        source_ids if kind.target == kind.source else _read_keys(tx, _node(kind.target), chunk)
    )
    result = tx.run(cypher_export_edges(kind), {"properties": list(properties)})
    src_parts: list[np.ndarray] = []
    dst_parts: list[np.ndarray] = []
    prop_parts: dict[str, list[pa.Array | list[Any]]] = {p: [] for p in properties}
    for records in _chunks(result, chunk):
        src = [r[0] for r in records]
        dst = [r[1] for r in records]
        src_parts.append(_positions(source_ids, src, kind.name, kind.source, "start"))
        dst_parts.append(_positions(target_ids, dst, kind.name, kind.target, "end"))
        for j, p in enumerate(properties):
            values = [r[2][j] for r in records]
            prop_parts[p].append(_property_chunk(values, kind.properties.get(p)))
    src_all = np.concatenate(src_parts) if src_parts else np.empty(0, dtype=np.int64)
    dst_all = np.concatenate(dst_parts) if dst_parts else np.empty(0, dtype=np.int64)
    order = np.lexsort((dst_all, src_all))  # a stable order, whatever order the server streamed
    props = {p: _property_array(prop_parts[p], kind.properties.get(p))[order] for p in properties}
    return EdgeArrays(
        src=src_all[order],
        dst=dst_all[order],
        source_ids=source_ids,
        target_ids=target_ids,
        properties=props,
    )


def _frame_work(tx: Any, cypher: str, params: dict[str, Any], chunk: int) -> pd.DataFrame:
    """All rows of one statement as a frame, built ``chunk`` records at a time."""
    result = tx.run(cypher, params)
    columns = list(result.keys())
    parts = [
        pd.DataFrame([[_native(v) for v in r.values()] for r in records], columns=columns)
        for records in _chunks(result, chunk)
    ]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


@dataclass(frozen=True)
class LoadReport:
    """What one upsert did: rows sent, rows created or changed, batches, time taken."""

    kind: Literal["nodes", "relationships", "properties"]
    name: str
    rows: int
    changed: int
    batches: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")

    def __str__(self) -> str:
        return (
            f"{self.name} {self.kind}: {self.rows:,} rows in {self.batches} batches, "
            f"{self.changed:,} new or changed, {self.rows_per_second:,.0f} rows/s"
        )


def _redact(uri: str) -> str:
    """A URI without any user:password part, for messages."""
    return re.sub(r"//[^@/]*@", "//", uri)


class Neo4jStore:
    """A :class:`graph.store.GraphStore` on a Neo4j 5 server.

    Use :meth:`from_env` (credentials from the environment). ``batch_size``
    rows go in each write transaction; ``progress`` shows a bar (default: when
    stderr is a terminal). Each load appends a :class:`LoadReport` to ``reports``.
    """

    dialect = "neo4j"

    def __init__(
        self,
        uri: str,
        *,
        auth: tuple[str, str] | None = None,
        database: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        progress: bool | None = None,
        query_timeout_s: float = 60.0,
        max_retry_time_s: float = 30.0,
        driver: Any = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive number of rows, got {batch_size!r}")
        self.uri = _redact(uri)
        self.database = database or None
        self.batch_size = int(batch_size)
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.query_timeout_s = query_timeout_s
        self.fetch_rows = EXPORT_CHUNK_ROWS  # records per Result.fetch in exports
        self.reports: list[LoadReport] = []
        self._lock = threading.RLock()
        self._tx: Any = None  # the open atomic() transaction, used only by its own thread
        self._tx_thread: int | None = None
        if driver is not None:  # injected (tests, or a driver the caller manages)
            self._driver = driver
            return
        try:
            self._driver = neo4j.GraphDatabase.driver(
                uri, auth=auth, max_transaction_retry_time=max_retry_time_s
            )
        except (ne.DriverError, ValueError) as exc:
            raise StoreUnavailable(f"bad Neo4j URI {self.uri}: {type(exc).__name__}") from None
        try:
            self._driver.verify_connectivity()
        except ne.AuthError:
            self._driver.close()
            raise StoreUnavailable(
                f"Neo4j at {self.uri} refused the credentials; check NEO4J_USER and NEO4J_PASSWORD"
            ) from None
        except (ne.DriverError, ne.Neo4jError, OSError) as exc:
            self._driver.close()
            raise StoreUnavailable(
                f"cannot reach Neo4j at {self.uri}: {type(exc).__name__}; is the server up "
                "(docker compose up -d neo4j) and NEO4J_URI right?"
            ) from None

    @classmethod
    def from_env(
        cls,
        uri: str | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        **options: Any,
    ) -> Neo4jStore:
        """Open the store at ``uri`` or ``NEO4J_URI``, with credentials from the environment."""
        env = os.environ if environ is None else environ
        uri = uri or env.get("NEO4J_URI")
        if not uri:
            raise StoreUnavailable(
                "NEO4J_URI is not set (e.g. bolt://localhost:7687); see .env.example"
            )
        password = env.get("NEO4J_PASSWORD")
        if not password:
            raise StoreUnavailable("NEO4J_PASSWORD is not set; put it in the environment or .env")
        user = env.get("NEO4J_USER") or env.get("NEO4J_USERNAME") or "neo4j"
        if "batch_size" not in options and env.get("CREDITGRAPH_BATCH_SIZE"):
            options["batch_size"] = int(env["CREDITGRAPH_BATCH_SIZE"])
        return cls(uri, auth=(user, password), database=env.get("NEO4J_DATABASE"), **options)

    def __repr__(self) -> str:
        return f"Neo4jStore({self.uri!r}, database={self.database!r})"

    # -- plumbing ---------------------------------------------------------
    def _new_session(self, read: bool = False) -> Any:
        mode = neo4j.READ_ACCESS if read else neo4j.WRITE_ACCESS
        return self._driver.session(database=self.database, default_access_mode=mode)

    def _open_tx(self) -> Any:
        """This thread's atomic() transaction, if it has one (transactions are not shared)."""
        return self._tx if self._tx_thread == threading.get_ident() else None

    def _write(self, work: Callable[..., Any], *args: Any) -> Any:
        """Run ``work(tx, *args)``: in the open atomic block, else as a retried write."""
        with self._errors():
            if (tx := self._open_tx()) is not None:
                return work(tx, *args)
            with self._new_session() as session:
                return session.execute_write(work, *args)

    def _read(self, work: Callable[..., Any], *args: Any) -> Any:
        """Run ``work(tx, *args)``: in the open atomic block (sees its writes), else as a read."""
        with self._errors():
            if (tx := self._open_tx()) is not None:
                return work(tx, *args)
            with self._new_session(read=True) as session:
                return session.execute_read(work, *args)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Driver errors as creditgraph errors (never echoing parameters or credentials)."""
        try:
            yield
        except (ne.ServiceUnavailable, ne.SessionExpired) as exc:
            raise StoreUnavailable(f"lost Neo4j at {self.uri}: {exc}") from exc
        except ne.Neo4jError as exc:
            code = exc.code or ""
            if code.endswith("Statement.AccessMode") or "read access mode" in str(exc).lower():
                raise ReadOnlyViolation(
                    f"the server refused a write on a read path: {exc.message}"
                ) from exc
            raise QueryError(f"{code or type(exc).__name__}: {exc.message}") from exc

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """All writes inside land in one transaction, or none do (nested blocks join the outer)."""
        with self._lock:  # other threads' writes wait for the block to end
            if self._open_tx() is not None:
                yield
                return
            with self._errors():
                session = self._new_session()
                tx = session.begin_transaction()
            self._tx, self._tx_thread = tx, threading.get_ident()
            try:
                yield
            except BaseException:
                self._tx = self._tx_thread = None
                try:
                    tx.rollback()
                finally:
                    session.close()
                raise
            self._tx = self._tx_thread = None
            try:
                with self._errors():
                    tx.commit()
            finally:
                session.close()

    @contextmanager
    def _bar(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        if not self.progress or total == 0:
            yield lambda n: None
            return
        from rich.console import Console
        from rich.progress import Progress

        with Progress(console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task(description, total=total)
            yield lambda n: bar.advance(task, n)

    def _batched(
        self,
        kind: Literal["nodes", "relationships", "properties"],
        name: str,
        frame: pd.DataFrame,
        send: Callable[[pd.DataFrame], int],
    ) -> int:
        started, changed, count = time.perf_counter(), 0, 0
        with self._bar(f"{name} {kind}", len(frame)) as advance:
            for chunk in batches(frame, self.batch_size):
                changed += send(chunk)
                count += 1
                advance(len(chunk))
        self.reports.append(
            LoadReport(kind, name, len(frame), changed, count, time.perf_counter() - started)
        )
        return changed

    # -- schema -----------------------------------------------------------
    def ensure_schema(self) -> None:
        # Schema changes cannot share a transaction with data writes: each runs on its own.
        with self._lock, self._errors():
            for node in NODE_TYPES.values():
                statements = [cypher_constraint(node)] + [
                    cypher_index(node, prop) for prop in INDEXED_PROPERTIES.get(node.label, ())
                ]
                for cypher in statements:
                    with self._new_session() as session:
                        session.execute_write(_run_single, cypher, {})

    # -- writes -----------------------------------------------------------
    @staticmethod
    def _prepare(kind: LoadKind, name: str, frame: pd.DataFrame) -> pd.DataFrame:
        """The rows a load sends: schema columns, string keys, one row per key (the last)."""
        if kind == "nodes":
            node = _node(name)
            if node.key not in frame.columns:
                raise QueryError(f"{name}: the frame has no key column {node.key!r}")
            keep = [node.key] + [c for c in frame.columns if c in node.properties and c != node.key]
            frame = frame[keep].assign(**{node.key: _keys(frame[node.key], name)})
            return frame.drop_duplicates(node.key, keep="last").reset_index(drop=True)
        rel = _rel(name)
        missing_cols = {"src", "dst"} - set(frame.columns)
        if missing_cols:
            raise QueryError(f"{name}: the frame lacks column(s) {sorted(missing_cols)}")
        keep = ["src", "dst"] + [c for c in frame.columns if c in rel.properties]
        frame = frame[keep].assign(src=_keys(frame["src"], name), dst=_keys(frame["dst"], name))
        return frame.drop_duplicates(["src", "dst"], keep="last").reset_index(drop=True)

    @staticmethod
    def _payload(kind: LoadKind, name: str, chunk: pd.DataFrame) -> list[dict[str, Any]]:
        """``$rows`` for one batch of a prepared frame."""
        if kind == "nodes":
            node = _node(name)
            return _rows(chunk, {node.key: "key"}, node.properties)
        return _rows(chunk, {"src": "src", "dst": "dst"}, _rel(name).properties)

    def upsert_nodes(self, label: str, frame: pd.DataFrame) -> int:
        frame = self._prepare("nodes", label, frame)
        cypher = cypher_upsert_nodes(_node(label))

        def send(chunk: pd.DataFrame) -> int:
            rows = self._payload("nodes", label, chunk)
            return int(self._write(_run_single, cypher, {"rows": rows}).get("changed", 0))

        with self._lock:
            return self._batched("nodes", label, frame, send)

    def upsert_edges(self, rel: str, frame: pd.DataFrame) -> int:
        kind = _rel(rel)
        frame = self._prepare("relationships", rel, frame)
        cypher = cypher_upsert_edges(kind)

        def send(chunk: pd.DataFrame) -> int:
            rows = self._payload("relationships", rel, chunk)
            return int(self._write(_merge_edges, cypher, rows))

        with self._lock:
            self._check_endpoints(frame, kind)
            return self._batched("relationships", rel, frame, send)

    def bulk_load(
        self,
        nodes: Mapping[str, pd.DataFrame],
        edges: Mapping[str, pd.DataFrame],
        *,
        load_id: str,
        progress: Callable[[str], None] | None = None,
    ) -> LoadWritten:
        """Load in retried batch transactions; re-called with the same ``load_id``, resume.

        A new load first sets Meta ``pending_load`` (its own transaction). Each
        batch of :func:`load_plan` then runs in a retried write transaction
        that also sets ``load_progress``, and a last transaction sets
        ``load_id`` and clears both. When the graph's ``pending_load`` is
        already ``load_id`` (a run that was killed or failed), only the batches
        after its ``load_progress`` are sent. Write transactions: 1 + batches + 1.
        """
        say = progress or (lambda _message: None)
        order: list[tuple[LoadKind, str, pd.DataFrame]]
        order = [("nodes", n, f) for n, f in nodes.items()]
        order += [("relationships", n, f) for n, f in edges.items()]
        with self._lock:
            if self._open_tx() is not None:
                raise QueryError("bulk_load commits batch by batch; it cannot run in atomic()")
            meta = read_meta(self)
            done = None
            if meta.get(PENDING_LOAD) == load_id:
                done = LoadProgress.decode(meta.get(LOAD_PROGRESS))
                done = done if done is not None and done.load_id == load_id else None
            else:  # a new load (one left pending by another id is superseded: MERGEs only)
                marks = {PENDING_LOAD: load_id, LOAD_PROGRESS: None}
                self._write(_run_single, cypher_upsert_nodes(META), {"rows": _meta_rows(marks)})
            # load_plan, step by step: a step is prepared only when its turn comes
            resume = _resume_at([(kind, name) for kind, name, _ in order], done)
            written = LoadWritten()
            for position, (kind, name, raw) in enumerate(order):
                say(f"loading {name} {kind}")
                counts = written.nodes if kind == "nodes" else written.edges
                if position < resume[0]:  # committed by the interrupted run
                    counts[name] = 0
                    continue
                frame = self._prepare(kind, name, raw)
                first = resume[1] if position == resume[0] else 0
                todo = _step_batches(kind, name, len(frame), self.batch_size, first)
                counts[name] = self._send_batches(kind, name, frame, todo, load_id)
                written.batches += len(todo)
            finish = {LOAD_ID: load_id, PENDING_LOAD: None, LOAD_PROGRESS: None}
            self._write(_run_single, cypher_upsert_nodes(META), {"rows": _meta_rows(finish)})
        return written

    def _send_batches(
        self, kind: LoadKind, name: str, frame: pd.DataFrame, todo: list[Batch], load_id: str
    ) -> int:
        """Send ``todo`` (slices of ``frame``), each with its progress mark; returns changes."""
        started, changed, edges = time.perf_counter(), 0, kind == "relationships"
        if edges and todo:
            self._check_endpoints(frame.iloc[todo[0].start :], _rel(name))
        cypher = cypher_upsert_edges(_rel(name)) if edges else cypher_upsert_nodes(_node(name))
        with self._bar(f"{name} {kind}", sum(b.rows for b in todo)) as advance:
            for batch in todo:
                rows = self._payload(kind, name, frame.iloc[batch.start : batch.stop])
                mark = LoadProgress(load_id, kind, name, batch.stop).encode()
                changed += int(
                    self._write(_load_batch, edges, cypher, rows, _meta_rows({LOAD_PROGRESS: mark}))
                )
                advance(batch.rows)
        self.reports.append(
            LoadReport(kind, name, sum(b.rows for b in todo), changed, len(todo),
                       time.perf_counter() - started)
        )  # fmt: skip
        return changed

    def _check_endpoints(self, frame: pd.DataFrame, kind: RelType) -> None:
        for column, label in (("src", kind.source), ("dst", kind.target)):
            node = _node(label)
            keys = pd.unique(frame[column]).tolist()
            missing, examples = 0, []
            for start in range(0, len(keys), self.batch_size):
                found = self._read(
                    _run_single,
                    cypher_missing_keys(node),
                    {"keys": keys[start : start + self.batch_size]},
                )
                missing += int(found.get("missing", 0))
                examples += list(found.get("examples") or [])
            if missing:
                raise QueryError(
                    f"{kind.name}: relationships point to {missing} unknown {label} nodes "
                    f"(first: {examples[0]!r})"
                )

    def write_properties(self, label: str, frame: pd.DataFrame) -> int:
        node = _node(label)
        frame = frame.drop(columns=[c for c in frame.columns if c == node.key])
        for column in frame.columns:
            _ident(column)  # a property name queries can refer to
        kinds = {
            c: SCORE_PROPERTIES.get(c) or node.properties.get(c) or kind_of(frame[c])
            for c in frame.columns
        }
        rows = frame.rename_axis(node.key).reset_index()
        rows[node.key] = _keys(rows[node.key], label)
        cypher = cypher_write_properties(node)

        def send(chunk: pd.DataFrame) -> int:
            payload = _rows(chunk, {node.key: "key"}, kinds)
            return int(self._write(_run_single, cypher, {"rows": payload}).get("written", 0))

        with self._lock:
            return self._batched("properties", label, rows, send)

    # -- reads ------------------------------------------------------------
    def node_ids(self, label: str) -> pd.Index:
        return self._read(_read_keys, _node(label), self.fetch_rows)

    def export_edges(self, rel: str, properties: tuple[str, ...] = ()) -> EdgeArrays:
        """Every relationship of ``rel`` with its end nodes' key lists, in one read transaction."""
        return self._read(_export_work, _rel(rel), tuple(properties), self.fetch_rows)

    def query(
        self, cypher: str, params: Mapping[str, Any] | None = None, *,
        timeout_s: float | None = None,
    ) -> pd.DataFrame:  # fmt: skip
        check_read_only(cypher)  # same rules as the embedded store; the server checks again

        def work(tx: Any) -> tuple[list[str], list[dict[str, Any]]]:
            result = tx.run(cypher, dict(params or {}))
            return list(result.keys()), [record.data() for record in result]

        timeout = self.query_timeout_s if timeout_s is None else timeout_s
        timed = neo4j.unit_of_work(timeout=timeout)(work)
        with self._errors(), self._new_session(read=True) as session:
            keys, rows = session.execute_read(timed)
        return pd.DataFrame([{k: _native(r[k]) for k in keys} for r in rows], columns=keys)

    # -- in-database graph features (needs the GDS plugin) ---------------
    def has_gds(self) -> bool:
        """Whether the Graph Data Science plugin answers ``gds.version()``."""
        try:
            return bool(self._read(_run_single, CYPHER_GDS_VERSION, {}).get("version"))
        except QueryError:
            return False

    def _gds(self, cypher: str, params: dict[str, Any]) -> Any:
        # GDS procedures manage their own transactions: auto-commit, never retried blindly
        # (a retried projection would fail with "graph already exists").
        with self._errors(), self._new_session() as session:
            return _run_rows(session, cypher, params)

    def gds_features(
        self,
        rel: str | Sequence[str] = "FRIEND",
        *,
        seeds: Sequence[str] | None = None,
        ppr_column: str = "default_ppr",
        community: Literal["leiden", "louvain"] = "leiden",
        damping: float = 0.85,
        max_iterations: int = 200,
        tolerance: float = 1e-10,
        seed: int = 42,
        concurrency: int = GDS_MAX_CONCURRENCY,
    ) -> pd.DataFrame:
        """Position features computed in Neo4j with GDS: the columns of the igraph path.

        Projects every User and one User-User relationship type natively as an
        undirected simple graph (what :class:`graph.network.FriendGraph`
        builds), runs PageRank, WCC, k-core, local clustering, degree and
        Leiden/Louvain in *mutate* mode, writes the results once as
        ``gds_<name>`` node properties, drops the projection (also on error)
        and reads the written properties back in one ``MATCH (u:User)``.

        Returns a frame indexed by ``user_id`` with the columns of
        :func:`graph.features.position.position_features` (``pagerank_scaled``,
        ``component_size``, ``clustering`` NaN below two friends, ``coreness``)
        plus ``community``. ``seeds`` (known defaulters from *training labels
        only*, to avoid leakage) adds personalized PageRank × n as
        ``ppr_column``; an empty seed list, or one naming no existing user, is
        an error rather than ordinary PageRank. Community detection runs on one
        thread with ``seed`` (reproducible); the rest on ``concurrency``
        threads, at most 4 (the GDS Community Edition limit).
        """
        _ident(ppr_column)
        names = [rel] if isinstance(rel, str) else list(rel)
        if len(names) != 1:
            raise QueryError(
                f"in-database features project one relationship type natively, got {names}; "
                "use the igraph path (export_edges) to combine several"
            )
        project = cypher_gds_project(names[0])
        if seeds is not None and len(seeds) == 0:
            raise QueryError(
                "personalized PageRank got an empty seed list (it would silently become "
                "ordinary PageRank); pass seeds=None to skip it"
            )
        if not 1 <= int(concurrency) <= GDS_MAX_CONCURRENCY:
            raise QueryError(
                f"concurrency must be 1 to {GDS_MAX_CONCURRENCY} (GDS Community Edition), "
                f"got {concurrency!r}"
            )
        if not self.has_gds():
            raise StoreUnavailable("the Graph Data Science plugin is not installed on this server")
        threads = int(concurrency)
        graph = f"creditgraph_features_{uuid.uuid4().hex[:8]}"
        base = {"concurrency": threads}
        configs: dict[str, dict[str, Any]] = {
            "pagerank": {
                **base,
                "mutateProperty": "pagerank",
                "dampingFactor": damping,
                "maxIterations": max_iterations,
                "tolerance": tolerance,
            },
            "component": {**base, "mutateProperty": "component"},
            "kcore": {**base, "mutateProperty": "kcore"},
            "clustering": {**base, "mutateProperty": "clustering"},
            "degree": {**base, "mutateProperty": "degree"},
            # One thread: the partition must not depend on thread scheduling.
            community: {
                "concurrency": 1,
                "mutateProperty": "community",
                **({"randomSeed": seed} if community == "leiden" else {}),
            },
        }
        properties = list(GDS_PROPERTIES)
        self._gds(project, {"graph": graph, "concurrency": threads})
        try:
            for algo, config in configs.items():
                self._gds(CYPHER_GDS_MUTATE[algo], {"graph": graph, "config": config})
            if seeds is not None:
                keys = sorted({str(s) for s in seeds})
                _, found = self._gds(
                    cypher_gds_personalized_pagerank(),
                    {
                        "graph": graph,
                        "seeds": keys,
                        "property": "ppr",
                        "damping": damping,
                        "max_iterations": max_iterations,
                        "tolerance": tolerance,
                        "concurrency": threads,
                    },
                )
                if not found:
                    raise QueryError(
                        f"none of the {len(keys)} seed users exists (first: {keys[0]!r}); "
                        "personalized PageRank needs at least one"
                    )
                properties.append("ppr")
            self._gds(
                cypher_gds_write(),
                {
                    "graph": graph,
                    "properties": {p: f"{GDS_WRITE_PREFIX}{p}" for p in properties},
                    "concurrency": threads,
                },
            )
        finally:
            self._gds(CYPHER_GDS_DROP, {"graph": graph})
        wide = self._read(_frame_work, cypher_gds_read(properties), {}, self.fetch_rows)
        return features_frame(wide, ppr_column=ppr_column if seeds is not None else None)

    def close(self) -> None:
        self._driver.close()

    def __enter__(self) -> Neo4jStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def features_frame(wide: pd.DataFrame, *, ppr_column: str | None = None) -> pd.DataFrame:
    """The ``user_id`` + ``gds_<name>`` rows read back after the write, as the feature frame.

    GDS PageRank is unnormalised (teleport 1 - d per node); with a uniform (or
    seed-only) teleport its solution is proportional to networkx's, so scaling
    it to sum to n gives ``pagerank_scaled`` exactly (and ``ppr`` likewise).
    """
    key = USER.key
    wide = wide.set_index(key) if key in wide.columns else wide
    wide = wide.reindex(columns=list(GDS_PROPERTIES) + (["ppr"] if ppr_column else []))
    n = len(wide)

    def scaled(column: str) -> pd.Series:
        values = wide[column].astype(float)
        total = values.sum()
        return values * (n / total) if total > 0 else values * 0.0

    degree = wide["degree"].astype(float)
    out = pd.DataFrame(
        {
            "pagerank_scaled": scaled("pagerank"),
            "component_size": wide["component"].map(wide["component"].value_counts()).astype(float),
            # igraph's transitivity_local_undirected(mode="nan"): undefined below two friends
            "clustering": wide["clustering"].astype(float).where(degree >= 2),
            "coreness": wide["kcore"].astype(float),
            "community": wide["community"].astype(np.int64),
        },
        index=pd.Index(wide.index.tolist(), name=key),
    )
    if ppr_column:
        out[ppr_column] = scaled("ppr")
    return out.sort_index()
