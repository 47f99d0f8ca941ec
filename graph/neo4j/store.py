"""The production graph store: Neo4j 5 through the official ``neo4j`` driver.

Implements :class:`graph.store.GraphStore` with the same semantics as
:class:`graph.embedded.EmbeddedStore`. It sends only the statements of
:mod:`graph.neo4j.statements`, converts values with :mod:`graph.neo4j.values`
and loads by the plan of :mod:`graph.neo4j.plan`. Choices and traps:

* Credentials come from the environment only (``NEO4J_URI``, ``NEO4J_USER``,
  ``NEO4J_PASSWORD``, ``NEO4J_DATABASE``) and never appear in messages or logs.
* Loads are batched ``UNWIND $rows AS row MERGE ...`` in managed transactions
  (``execute_write``), so the driver retries transient failures; the work
  functions are idempotent (``MERGE`` + ``SET +=``) and keep no state between
  attempts, so a retry neither duplicates rows nor double-counts them.
* Inside :meth:`Neo4jStore.atomic` all writes go to one explicit transaction
  (no driver retries there: the block is the unit a caller retries); it is
  for blocks of bounded size.
* A load (:meth:`Neo4jStore.bulk_load`) is never one transaction: Meta
  ``pending_load`` is set first, then every batch of :func:`graph.neo4j.plan.load_plan`
  is its own retried transaction that also records ``load_progress`` (so a
  killed load, re-run with the same id and frames, sends exactly the batches
  that did not commit), and a last transaction sets ``load_id`` and clears both.
* Publishing a scoring run (:meth:`Neo4jStore.publish_properties`) is never one
  transaction either (1M users × ~13 properties would exceed
  ``dbms.memory.transaction.total.max``): Meta ``pending_score_run`` first, then
  every batch of :func:`graph.neo4j.plan.publish_plan` with its ``score_progress``
  in one retried transaction, and a last one that sets ``score_run``.
* Investigations (:meth:`Neo4jStore.query`) pass the same client-side check as
  the embedded store and then run with ``READ_ACCESS`` via ``execute_read``,
  so the server refuses writes too.
* Exports (:meth:`Neo4jStore.export_edges`) read node keys and relationships in
  one read transaction and fill numpy arrays chunk by chunk (``result.fetch``),
  never a Python list per row; an endpoint key missing from the key list is an
  error, never a guessed position.
* GDS features (:mod:`graph.neo4j.gds`) run through :meth:`Neo4jStore.run_procedure`
  (auto-commit) and :meth:`Neo4jStore.read_frame`.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import neo4j
import neo4j.exceptions as ne
import numpy as np
import pandas as pd
import pyarrow as pa

from creditgraph.errors import InvalidArgument, QueryError, ReadOnlyViolation, StoreUnavailable
from creditgraph.graph.meta import (
    LOAD_ID,
    LOAD_PROGRESS,
    PENDING_LOAD,
    PENDING_RUN,
    RUN_PROGRESS,
    SCORE_RUN,
    read_meta,
)
from creditgraph.graph.neo4j.plan import (
    Batch,
    LoadKind,
    LoadProgress,
    RunProgress,
    StepKind,
    batches,
    publish_plan,
    resume_at,
    step_batches,
)
from creditgraph.graph.neo4j.statements import (
    INDEXED_PROPERTIES,
    cypher_constraint,
    cypher_export_edges,
    cypher_index,
    cypher_missing_keys,
    cypher_node_ids,
    cypher_remove_edges,
    cypher_upsert_edges,
    cypher_upsert_nodes,
    cypher_write_properties,
    ident,
    node_type,
    rel_type,
)
from creditgraph.graph.neo4j.values import (
    key_strings,
    native,
    property_array,
    property_chunk,
    unwind_rows,
)
from creditgraph.graph.readonly import check_read_only
from creditgraph.graph.schema import (
    META,
    NODE_TYPES,
    WRITTEN_PROPERTIES,
    NodeType,
    RelType,
    kind_of,
)
from creditgraph.graph.store import EdgeArrays, LoadWritten, PropertiesWritten

DEFAULT_BATCH_SIZE = 10_000
Progress = TypeVar("Progress", LoadProgress, RunProgress)
# Rows taken from the server per ``result.fetch`` while exporting (one numpy chunk each).
EXPORT_CHUNK_ROWS = 100_000


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


def _publish_batch(
    tx: Any, cypher: str, rows: list[dict[str, Any]], progress: list[dict[str, Any]]
) -> int:
    """One batch of a run's properties and its Meta ``score_progress``, in one transaction."""
    written = int(_run_single(tx, cypher, {"rows": rows}).get("written", 0))
    _run_single(tx, cypher_upsert_nodes(META), {"rows": progress})
    return written


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


def _export_work(tx: Any, kind: RelType, properties: tuple[str, ...], chunk: int) -> EdgeArrays:
    """Keys of both end labels and every relationship of ``kind``, in one transaction.

    Pure (keeps nothing between driver retries): each call reads from scratch.
    """
    source_ids = _read_keys(tx, node_type(kind.source), chunk)
    target_ids = (
        source_ids if kind.target == kind.source else _read_keys(tx, node_type(kind.target), chunk)
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
            prop_parts[p].append(property_chunk(values, kind.properties.get(p)))
    src_all = np.concatenate(src_parts) if src_parts else np.empty(0, dtype=np.int64)
    dst_all = np.concatenate(dst_parts) if dst_parts else np.empty(0, dtype=np.int64)
    order = np.lexsort((dst_all, src_all))  # a stable order, whatever order the server streamed
    props = {p: property_array(prop_parts[p], kind.properties.get(p))[order] for p in properties}
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
        pd.DataFrame([[native(v) for v in r.values()] for r in records], columns=columns)
        for records in _chunks(result, chunk)
    ]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


@dataclass(frozen=True)
class UpsertReport:
    """What one upsert (or removal) did: rows sent, rows created, changed or removed,
    batches, time taken."""

    kind: StepKind
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
            f"{self.changed:,} {'removed' if self.kind == 'removals' else 'new or changed'}, "
            f"{self.rows_per_second:,.0f} rows/s"
        )


def _redact(uri: str) -> str:
    """A URI without any user:password part, for messages."""
    return re.sub(r"//[^@/]*@", "//", uri)


class Neo4jStore:
    """A :class:`graph.store.GraphStore` on a Neo4j 5 server.

    Use :meth:`from_env` (credentials from the environment). ``batch_size``
    rows go in each write transaction; ``progress`` shows a bar (default: when
    stderr is a terminal). Each load appends a :class:`UpsertReport` to ``reports``.
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
            raise InvalidArgument(
                f"batch_size must be a positive number of rows, got {batch_size!r}"
            )
        self.uri = _redact(uri)
        self.database = database or None
        self.batch_size = int(batch_size)
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.query_timeout_s = query_timeout_s
        self.fetch_rows = EXPORT_CHUNK_ROWS  # records per Result.fetch in exports
        self.reports: list[UpsertReport] = []
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

    def _resume_or_mark(
        self, pending: str, progress: str, job_id: str, kind: type[Progress]
    ) -> Progress | None:
        """Where a re-run of the pending ``job_id`` resumes; else mark ``job_id`` pending.

        Returns the recorded progress of ``job_id`` (None: from the start).
        """
        meta = read_meta(self)
        if meta.get(pending) == job_id:
            done = kind.decode(meta.get(progress))
            return done if done is not None and done.job_id == job_id else None
        marks = {pending: job_id, progress: None}
        self._write(_run_single, cypher_upsert_nodes(META), {"rows": _meta_rows(marks)})
        return None

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
            UpsertReport(kind, name, len(frame), changed, count, time.perf_counter() - started)
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
            node = node_type(name)
            if node.key not in frame.columns:
                raise QueryError(f"{name}: the frame has no key column {node.key!r}")
            keep = [node.key] + [c for c in frame.columns if c in node.properties and c != node.key]
            frame = frame[keep].assign(**{node.key: key_strings(frame[node.key], name)})
            return frame.drop_duplicates(node.key, keep="last").reset_index(drop=True)
        rel = rel_type(name)
        missing_cols = {"src", "dst"} - set(frame.columns)
        if missing_cols:
            raise QueryError(f"{name}: the frame lacks column(s) {sorted(missing_cols)}")
        props = [] if kind == "removals" else [c for c in frame.columns if c in rel.properties]
        keep = ["src", "dst", *props]
        frame = frame[keep].assign(
            src=key_strings(frame["src"], name), dst=key_strings(frame["dst"], name)
        )
        return frame.drop_duplicates(["src", "dst"], keep="last").reset_index(drop=True)

    @staticmethod
    def _payload(kind: LoadKind, name: str, chunk: pd.DataFrame) -> list[dict[str, Any]]:
        """``$rows`` for one batch of a prepared frame."""
        if kind == "nodes":
            node = node_type(name)
            return unwind_rows(chunk, {node.key: "key"}, node.properties)
        if kind == "removals":
            return [{"src": s, "dst": d} for s, d in zip(chunk["src"], chunk["dst"], strict=True)]
        return unwind_rows(chunk, {"src": "src", "dst": "dst"}, rel_type(name).properties)

    def upsert_nodes(self, label: str, frame: pd.DataFrame) -> int:
        frame = self._prepare("nodes", label, frame)
        cypher = cypher_upsert_nodes(node_type(label))

        def send(chunk: pd.DataFrame) -> int:
            rows = self._payload("nodes", label, chunk)
            return int(self._write(_run_single, cypher, {"rows": rows}).get("changed", 0))

        with self._lock:
            return self._batched("nodes", label, frame, send)

    def upsert_edges(self, rel: str, frame: pd.DataFrame) -> int:
        kind = rel_type(rel)
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
        removed: Mapping[str, pd.DataFrame] | None = None,
    ) -> LoadWritten:
        """Load in retried batch transactions; re-called with the same ``load_id``, resume.

        A new load first sets Meta ``pending_load`` (its own transaction). Each
        batch of :func:`load_plan` then runs in a retried write transaction
        that also sets ``load_progress``, and a last transaction sets
        ``load_id`` and clears both. When the graph's ``pending_load`` is
        already ``load_id`` (a run that was killed or failed), only the batches
        after its ``load_progress`` are sent. Write transactions: 1 + batches + 1.
        The ``removed`` relationships go first, in batches of their own: a resumed
        deletion finds nothing more to delete.
        """
        say = progress or (lambda _message: None)
        order: list[tuple[LoadKind, str, pd.DataFrame]]
        order = [("removals", n, f) for n, f in (removed or {}).items()]
        order += [("nodes", n, f) for n, f in nodes.items()]
        order += [("relationships", n, f) for n, f in edges.items()]
        with self._lock:
            if self._open_tx() is not None:
                raise QueryError("bulk_load commits batch by batch; it cannot run in atomic()")
            # A load left pending by another id is superseded: its batches were MERGEs only.
            done = self._resume_or_mark(PENDING_LOAD, LOAD_PROGRESS, load_id, LoadProgress)
            # load_plan, step by step: a step is prepared only when its turn comes
            resume = resume_at([(kind, name) for kind, name, _ in order], done)
            written = LoadWritten()
            for position, (kind, name, raw) in enumerate(order):
                say(f"loading {name} {kind}")
                counts = {"removals": written.removed, "nodes": written.nodes}.get(
                    kind, written.edges
                )
                if position < resume[0]:  # committed by the interrupted run
                    counts[name] = 0
                    continue
                frame = self._prepare(kind, name, raw)
                first = resume[1] if position == resume[0] else 0
                todo = step_batches(kind, name, len(frame), self.batch_size, first)
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
            self._check_endpoints(frame.iloc[todo[0].start :], rel_type(name))
        if kind == "removals":
            cypher = cypher_remove_edges(rel_type(name))
        elif edges:
            cypher = cypher_upsert_edges(rel_type(name))
        else:
            cypher = cypher_upsert_nodes(node_type(name))
        with self._bar(f"{name} {kind}", sum(b.rows for b in todo)) as advance:
            for batch in todo:
                rows = self._payload(kind, name, frame.iloc[batch.start : batch.stop])
                mark = LoadProgress(load_id, kind, name, batch.stop).encode()
                changed += int(
                    self._write(_load_batch, edges, cypher, rows, _meta_rows({LOAD_PROGRESS: mark}))
                )
                advance(batch.rows)
        self.reports.append(
            UpsertReport(kind, name, sum(b.rows for b in todo), changed, len(todo),
                       time.perf_counter() - started)
        )  # fmt: skip
        return changed

    def _check_endpoints(self, frame: pd.DataFrame, kind: RelType) -> None:
        for column, label in (("src", kind.source), ("dst", kind.target)):
            node = node_type(label)
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

    @staticmethod
    def _property_rows(label: str, frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
        """The rows a property write sends (string keys in the key column) and each kind."""
        node = node_type(label)
        frame = frame.drop(columns=[c for c in frame.columns if c == node.key])
        for column in frame.columns:
            ident(column)  # a property name queries can refer to
        kinds = {
            c: WRITTEN_PROPERTIES.get(c) or node.properties.get(c) or kind_of(frame[c])
            for c in frame.columns
        }
        rows = frame.rename_axis(node.key).reset_index()
        rows[node.key] = key_strings(rows[node.key], label)
        return rows, kinds

    def write_properties(self, label: str, frame: pd.DataFrame) -> int:
        node = node_type(label)
        rows, kinds = self._property_rows(label, frame)
        cypher = cypher_write_properties(node)

        def send(chunk: pd.DataFrame) -> int:
            payload = unwind_rows(chunk, {node.key: "key"}, kinds)
            return int(self._write(_run_single, cypher, {"rows": payload}).get("written", 0))

        with self._lock:
            return self._batched("properties", label, rows, send)

    def publish_properties(
        self,
        label: str,
        frame: pd.DataFrame,
        *,
        run_id: str,
        progress: Callable[[str], None] | None = None,
    ) -> PropertiesWritten:
        """Set a run's properties in retried batch transactions; re-called with ``run_id``, resume.

        A new run first sets Meta ``pending_score_run`` (its own transaction).
        Each batch of :func:`publish_plan` then runs in a retried write
        transaction that also sets ``score_progress`` (``SET n += row.props``
        is idempotent, so a re-sent batch changes nothing), and a last
        transaction sets ``score_run`` and clears both marks. When the graph's
        ``pending_score_run`` is already ``run_id`` (a publish killed or
        failed), only the rows after its ``score_progress`` are sent; the
        caller must give the same rows in the same order. Write transactions:
        1 + batches + 1 for a new run; remaining batches + 1 when resumed.
        """
        say = progress or (lambda _message: None)
        node = node_type(label)
        rows, kinds = self._property_rows(label, frame)
        cypher = cypher_write_properties(node)
        with self._lock:
            if self._open_tx() is not None:
                raise QueryError(
                    "publish_properties commits batch by batch; it cannot run in atomic()"
                )
            # A run left pending by another id is superseded: its batches were SETs only.
            done = self._resume_or_mark(PENDING_RUN, RUN_PROGRESS, run_id, RunProgress)
            todo = publish_plan(label, len(rows), self.batch_size, done)
            say(f"writing {label} properties of run {run_id}")
            started, written = time.perf_counter(), 0
            with self._bar(f"{label} properties", sum(b.rows for b in todo)) as advance:
                for batch in todo:
                    payload = unwind_rows(rows.iloc[batch.start : batch.stop],
                                          {node.key: "key"}, kinds)  # fmt: skip
                    mark = RunProgress(run_id, label, batch.stop).encode()
                    progress_rows = _meta_rows({RUN_PROGRESS: mark})
                    written += int(self._write(_publish_batch, cypher, payload, progress_rows))
                    advance(batch.rows)
            self.reports.append(
                UpsertReport("properties", label, sum(b.rows for b in todo), written, len(todo),
                           time.perf_counter() - started)
            )  # fmt: skip
            finish = {SCORE_RUN: run_id, PENDING_RUN: None, RUN_PROGRESS: None}
            self._write(_run_single, cypher_upsert_nodes(META), {"rows": _meta_rows(finish)})
        return PropertiesWritten(nodes=written, batches=len(todo))

    # -- reads ------------------------------------------------------------
    def node_ids(self, label: str) -> pd.Index:
        return self._read(_read_keys, node_type(label), self.fetch_rows)

    def export_edges(self, rel: str, properties: tuple[str, ...] = ()) -> EdgeArrays:
        """Every relationship of ``rel`` with its end nodes' key lists, in one read transaction."""
        return self._read(_export_work, rel_type(rel), tuple(properties), self.fetch_rows)

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
        return pd.DataFrame([{k: native(r[k]) for k in keys} for r in rows], columns=keys)

    # -- for the GDS feature path (graph.neo4j.gds) ----------------------
    def read_row(self, cypher: str, params: dict[str, Any]) -> dict[str, Any]:
        """The single row of one of the store's own statements, read in a retried read."""
        return self._read(_run_single, cypher, params)

    def read_frame(self, cypher: str, params: dict[str, Any]) -> pd.DataFrame:
        """All rows of one of the store's own statements, read in chunks of ``fetch_rows``."""
        return self._read(_frame_work, cypher, params, self.fetch_rows)

    def run_procedure(self, cypher: str, params: dict[str, Any]) -> tuple[list[str], list[list]]:
        """Run one procedure call in auto-commit; return its column names and rows.

        GDS procedures manage their own transactions: auto-commit, never retried
        blindly (a retried projection would fail with "graph already exists").
        """
        with self._errors(), self._new_session() as session:
            return _run_rows(session, cypher, params)

    def close(self) -> None:
        self._driver.close()

    def __enter__(self) -> Neo4jStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
