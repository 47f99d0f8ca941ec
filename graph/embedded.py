"""The embedded graph store: ladybug (the maintained Kùzu successor), no server needed.

Traps handled here: one writer at a time (a lock serialises writes); a
connection whose transaction failed is discarded; properties written back
are added with ``ALTER TABLE``; bulk writes go through ``COPY``/``LOAD FROM``
an Arrow table or DataFrame passed as a parameter (row-by-row ``MERGE`` runs
at ~1k rows/s).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import ladybug
import numpy as np
import pandas as pd
import pyarrow as pa

from creditgraph.durable import failpoint
from creditgraph.errors import QueryError, StoreUnavailable
from creditgraph.graph.membership import changed_rows, differs, duplicated, is_in, positions
from creditgraph.graph.meta import (
    LOAD_ID,
    LOAD_PROGRESS,
    PENDING_LOAD,
    PENDING_RUN,
    PUBLISHED_RUN,
    RUN_PROGRESS,
    read_meta,
    write_meta,
)
from creditgraph.graph.readonly import check_read_only
from creditgraph.graph.schema import (
    ARROW_TYPES,
    NODE_TYPES,
    REL_TYPES,
    STRING,
    WRITTEN_PROPERTIES,
    NodeType,
    RelType,
    kind_of,
)
from creditgraph.graph.store import EdgeArrays, LoadWritten, PropertiesWritten
from creditgraph.graph.versions import GraphVersions


class EmbeddedStore:
    """A :class:`graph.store.GraphStore` on an embedded ladybug database.

    ``path=None`` gives an in-memory database (for tests); otherwise the
    database lives in ``path`` (created if missing). With ``versions`` the
    store is crash-safe: every write transaction goes into a copy of the
    current version, which becomes current only once it is complete and
    closed (:mod:`graph.versions`); ``path`` is then ignored. ``read_only=True``
    opens an existing database so that the engine itself refuses every write
    (for commands that never write: ``creditgraph cypher``, ``query run``).
    """

    dialect = "embedded"

    def __init__(
        self, path: Path | str | None = None, *, versions: GraphVersions | None = None,
        query_timeout_ms: int = 60_000, read_only: bool = False,
    ) -> None:  # fmt: skip
        self.versions = versions
        if versions is not None:
            path = versions.current()
            if path is None and read_only:
                raise StoreUnavailable(
                    f"no embedded store in {versions.directory} yet; "
                    "load one first (creditgraph ingest)"
                )
        self.path = Path(path) if path is not None else None
        self.read_only = read_only
        if read_only:
            if self.path is None:
                raise StoreUnavailable("an in-memory embedded store cannot be opened read-only")
            if not self.path.exists():
                raise StoreUnavailable(
                    f"no embedded store at {self.path} yet; load one first (creditgraph ingest)"
                )
        if self.path is not None and not read_only and versions is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # A versioned store never writes its current version (none yet: an empty one in memory).
        in_place = versions is None or self.path is None
        self._db = self._open(self.path, read_only=read_only or not in_place)
        self._lock = threading.RLock()
        self._timeout_ms = query_timeout_ms
        self._conn = self._connect()
        self._in_transaction = False

    # -- plumbing ---------------------------------------------------------
    @staticmethod
    def _open(path: Path | None, *, read_only: bool = False) -> ladybug.Database:
        try:
            return ladybug.Database(str(path) if path else ":memory:", read_only=read_only)
        except RuntimeError as exc:  # e.g. locked by another process
            raise StoreUnavailable(f"cannot open embedded store at {path}: {exc}") from exc

    def _connect(self) -> ladybug.Connection:
        conn = ladybug.Connection(self._db)
        conn.set_query_timeout(self._timeout_ms)
        return conn

    def _execute(self, cypher: str, params: Mapping[str, Any] | None = None) -> Any:
        try:
            return self._conn.execute(cypher, dict(params or {}))
        except RuntimeError as exc:
            if not self._in_transaction:
                # A failed transaction poisons its connection: start afresh.
                self._conn = self._connect()
            raise QueryError(f"{exc} (in: {cypher.strip().splitlines()[0][:120]})") from exc

    def _arrow(self, cypher: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        return self._execute(cypher, params).get_as_arrow()

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """All writes inside land together or not at all (one ladybug transaction).

        On a versioned store they land in a new version, current only once complete.
        """
        with self._lock:
            if self._in_transaction:  # nested: the outer block owns the transaction
                yield
                return
            if self.versions is None:
                with self._transaction():
                    yield
                return
            with self._new_version():
                with self._transaction():
                    yield

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._execute("BEGIN TRANSACTION")
        self._in_transaction = True
        try:
            yield
        except BaseException:
            self._in_transaction = False
            with suppress(RuntimeError):  # the engine may have rolled back already
                self._conn.execute("ROLLBACK")
            self._conn = self._connect()
            raise
        self._in_transaction = False
        self._execute("COMMIT")

    @contextmanager
    def _new_version(self) -> Iterator[None]:
        """Point the store at a staged copy for the block, then publish it as the current version.

        The copy is closed (the engine checkpoints it) before it is renamed and the
        pointer switched, so a kill during the checkpoint touches only the copy.
        """
        assert self.versions is not None
        versions, current_db, current_conn = self.versions, self._db, self._conn
        staged = versions.stage()
        staged_db: ladybug.Database | None = None
        try:
            staged_db = self._db = self._open(staged)
            self._conn = self._connect()
            yield
            self._conn.close()
            staged_db.close()
            staged_db = None
            failpoint("graph:version-checkpointed")
            published = versions.publish(staged)
        except BaseException:
            if staged_db is not None:
                self._conn.close()
                staged_db.close()
            versions.discard(staged)
            self._db, self._conn = current_db, current_conn
            raise
        current_conn.close()
        current_db.close()
        self.path = published
        self._db = self._open(published, read_only=True)
        self._conn = self._connect()
        versions.prune()

    # -- schema -----------------------------------------------------------
    def ensure_schema(self) -> None:
        with self._lock:
            tables = set(self._execute("CALL show_tables() RETURN name").get_as_df()["name"])
            wanted = {
                *(n.label for n in NODE_TYPES.values()),
                *(r.name for r in REL_TYPES.values()),
            }
            if wanted <= tables:
                return
            with self.atomic():
                self._create_tables()

    def _create_tables(self) -> None:
        for node in NODE_TYPES.values():
            cols = ", ".join(f"{name} {kind}" for name, kind in node.properties.items())
            self._execute(
                f"CREATE NODE TABLE IF NOT EXISTS {node.label}({cols}, PRIMARY KEY ({node.key}))"
            )
        for rel in REL_TYPES.values():
            cols = "".join(f", {name} {kind}" for name, kind in rel.properties.items())
            self._execute(
                f"CREATE REL TABLE IF NOT EXISTS {rel.name}"
                f"(FROM {rel.source} TO {rel.target}{cols})"
            )

    def _columns(self, table: str) -> dict[str, str]:
        info = self._execute(f"CALL table_info('{table}') RETURN name, type").get_as_df()
        return dict(zip(info["name"], info["type"], strict=True))

    def _add_columns(self, table: str, kinds: Mapping[str, str]) -> None:
        existing = self._columns(table)
        for name, kind in kinds.items():
            if name not in existing:
                self._execute(f"ALTER TABLE {table} ADD {name} {kind}")

    # -- writes -----------------------------------------------------------
    def upsert_nodes(self, label: str, frame: pd.DataFrame) -> int:
        node = NODE_TYPES[label]
        if frame.empty:
            return 0
        with self._lock:
            columns = self._columns(label)
            frame = _conform(frame, node.key, [c for c in columns if c in frame.columns], columns)
            existing = self._existing_nodes(node, list(frame.columns), frame[node.key])
            fresh = ~is_in(frame[node.key], existing[node.key])
            changed = changed_rows(frame[~fresh], existing, [node.key])
            with self.atomic():
                if fresh.any():
                    table = _to_arrow(frame[fresh].reindex(columns=list(columns)), columns)
                    self._execute(f"COPY {label} FROM $rows", {"rows": table})
                if len(changed):
                    sets = ", ".join(f"n.{c} = row.{c}" for c in frame.columns if c != node.key)
                    if sets:
                        self._execute(
                            f"LOAD FROM $rows MATCH (n:{label} {{{node.key}: row_key}}) "
                            f"SET {sets.replace('row.', '')}",
                            {
                                "rows": _to_arrow(
                                    changed.rename(columns={node.key: "row_key"}),
                                    {**columns, "row_key": columns[node.key]},
                                )
                            },
                        )
            return int(fresh.sum()) + len(changed)

    def _existing_nodes(self, node: NodeType, columns: list[str], keys: pd.Series) -> pd.DataFrame:
        cols = ", ".join(f"n.{c} AS {c}" for c in columns)
        return _only(self._arrow(f"MATCH (n:{node.label}) RETURN {cols}"), node.key, keys)

    def upsert_edges(self, rel: str, frame: pd.DataFrame) -> int:
        kind = REL_TYPES[rel]
        source, target = NODE_TYPES[kind.source], NODE_TYPES[kind.target]
        if frame.empty:
            return 0
        with self._lock:
            columns = {"src": STRING, "dst": STRING, **self._rel_columns(kind)}
            frame = _conform(frame, None, [c for c in columns if c in frame.columns], columns)
            frame = frame[~duplicated(frame[["src", "dst"]], keep="last")]
            props = [c for c in frame.columns if c not in ("src", "dst")]
            pairs = self._pair_codes(frame, source, target, rel)
            existing = self._arrow(
                f"MATCH (a:{source.label})-[r:{rel}]->(b:{target.label}) "
                f"RETURN offset(id(a)) AS s, offset(id(b)) AS d"
                + "".join(f", r.{c} AS {c}" for c in props)
            )  # fmt: skip
            at = positions(pairs.frame, pairs.codes(existing))  # each row's stored pair, or -1
            fresh = at < 0
            if not props:
                changed = frame.iloc[:0]
            else:
                old = existing.select(props).take(pa.array(at[~fresh])).to_pandas()
                changed = frame[~fresh][differs(frame.loc[~fresh, props], old)]
            match = (f"LOAD FROM $rows MATCH (a:{source.label} {{{source.key}: src}})"
                     f"-[r:{rel}]->(b:{target.label} {{{target.key}: dst}})")  # fmt: skip
            # A changed relationship that carries every property is deleted and copied again
            # with the new rows: ladybug sets a relationship property at about 35 µs a row,
            # deletes one at 12 µs and copies one at 1 µs.
            replace = len(changed) > 0 and set(props) == set(columns) - {"src", "dst"}
            with self.atomic():
                if replace:
                    self._execute(
                        f"{match} DELETE r", {"rows": _to_arrow(changed[["src", "dst"]], columns)}
                    )
                elif len(changed) and props:
                    sets = ", ".join(f"r.{c} = {c}" for c in props)
                    self._execute(f"{match} SET {sets}", {"rows": _to_arrow(changed, columns)})
                copied = pd.concat([frame[fresh], changed]) if replace else frame[fresh]
                if len(copied):
                    table = _to_arrow(copied.reindex(columns=list(columns)), columns)
                    table = table.rename_columns(["from", "to", *list(columns)[2:]])
                    self._execute(f"COPY {rel} FROM $rows", {"rows": table})
            return int(fresh.sum()) + len(changed)

    def remove_edges(self, rel: str, frame: pd.DataFrame) -> int:
        """Delete the ``rel`` relationships between the ``src``/``dst`` keys of ``frame``;
        returns how many were stored."""
        kind = REL_TYPES[rel]
        source, target = NODE_TYPES[kind.source], NODE_TYPES[kind.target]
        if frame.empty:
            return 0
        with self._lock, self.atomic():
            found = self._arrow(
                f"LOAD FROM $rows MATCH (a:{source.label} {{{source.key}: src}})"
                f"-[r:{rel}]->(b:{target.label} {{{target.key}: dst}}) DELETE r RETURN count(*)",
                {"rows": _to_arrow(frame[["src", "dst"]], {"src": STRING, "dst": STRING})},
            )  # fmt: skip
        return int(found.column(0)[0].as_py())

    def _rel_columns(self, rel: RelType) -> dict[str, str]:
        return {c: k for c, k in self._columns(rel.name).items() if c in rel.properties} | {
            c: k for c, k in rel.properties.items()
        }

    def _pair_codes(
        self, frame: pd.DataFrame, source: NodeType, target: NodeType, rel: str
    ) -> _PairCodes:
        """Each row's (source, target) as one integer from the nodes' storage offsets;
        refuses a row whose endpoint is not a stored node."""
        found = []
        for column, node in (("src", source), ("dst", target)):
            keys = self._arrow(
                f"MATCH (n:{node.label}) RETURN n.{node.key} AS k, offset(id(n)) AS o"
            )
            at = positions(frame[column], keys.column("k"))
            if (at < 0).any():
                raise QueryError(
                    f"{rel}: {int((at < 0).sum())} relationships point to unknown "
                    f"{node.label} nodes (first: {frame.loc[at < 0, column].iloc[0]!r})"
                )
            offsets = keys.column("o").to_numpy()
            found.append((offsets[at].astype(np.int64), int(offsets.max()) + 1))
        (src, _), (dst, width) = found
        return _PairCodes(src * width + dst, width)

    def bulk_load(
        self,
        nodes: Mapping[str, pd.DataFrame],
        edges: Mapping[str, pd.DataFrame],
        *,
        load_id: str,
        progress: Callable[[str], None] | None = None,
        removed: Mapping[str, pd.DataFrame] | None = None,
    ) -> LoadWritten:
        """All or nothing: every removal, node, relationship and the load id in one transaction.

        Never leaves a load pending; clears any ``pending_load`` mark it finds.
        """
        say = progress or (lambda _message: None)
        marks = {name: None for name in (PENDING_LOAD, LOAD_PROGRESS) if name in read_meta(self)}
        written = LoadWritten()
        with self.atomic():
            for rel, frame in (removed or {}).items():
                say(f"removing {rel} relationships")
                written.removed[rel] = self.remove_edges(rel, frame)
            for label, frame in nodes.items():
                say(f"loading {label} nodes")
                written.nodes[label] = self.upsert_nodes(label, frame)
            for rel, frame in edges.items():
                say(f"loading {rel} relationships")
                written.edges[rel] = self.upsert_edges(rel, frame)
            write_meta(self, **{LOAD_ID: load_id}, **marks)
        return written

    def write_properties(self, label: str, frame: pd.DataFrame) -> int:
        node = NODE_TYPES[label]
        kinds = {c: WRITTEN_PROPERTIES.get(c) or kind_of(frame[c]) for c in frame.columns}
        rows = frame.rename_axis(node.key).reset_index()
        with self._lock:
            sets = ", ".join(f"n.{c} = {c}" for c in frame.columns)
            with self.atomic():
                self._add_columns(label, kinds)
                self._execute(
                    f"LOAD FROM $rows MATCH (n:{label} {{{node.key}: {node.key}}}) SET {sets}",
                    {"rows": _to_arrow(rows, {node.key: STRING, **kinds})},
                )
        return len(rows)

    def publish_properties(
        self,
        label: str,
        frame: pd.DataFrame,
        *,
        run_id: str,
        progress: Callable[[str], None] | None = None,
    ) -> PropertiesWritten:
        """All or nothing: every row's properties and Meta ``PUBLISHED_RUN`` in one transaction.

        Never leaves a run pending; clears any ``PENDING_RUN`` mark it finds.
        """
        say = progress or (lambda _message: None)
        marks = {name: None for name in (PENDING_RUN, RUN_PROGRESS) if name in read_meta(self)}
        with self.atomic():
            say(f"writing {label} properties")
            nodes = self.write_properties(label, frame)
            write_meta(self, **{PUBLISHED_RUN: run_id}, **marks)
        return PropertiesWritten(nodes=nodes)

    # -- reads ------------------------------------------------------------
    def node_ids(self, label: str) -> pd.Index:
        return self._key_order(label)[0]

    def export_edges(self, rel: str, properties: tuple[str, ...] = ()) -> EdgeArrays:
        kind = REL_TYPES[rel]
        extra = "".join(f", r.{p} AS {p}" for p in properties)
        table = self._arrow(
            f"MATCH (a:{kind.source})-[r:{rel}]->(b:{kind.target}) "
            f"RETURN offset(id(a)) AS s, offset(id(b)) AS d{extra}"
        )
        source_ids, src_offsets = self._key_order(kind.source)
        target_ids, dst_offsets = ((source_ids, src_offsets) if kind.target == kind.source
                                   else self._key_order(kind.target))  # fmt: skip
        src = _positions(src_offsets, table.column("s").to_numpy())
        dst = _positions(dst_offsets, table.column("d").to_numpy())
        order = np.lexsort((dst, src))  # a stable order, whatever order the store scanned
        return EdgeArrays(
            src=src[order],
            dst=dst[order],
            source_ids=source_ids,
            target_ids=target_ids,
            properties={p: table.column(p).to_numpy(zero_copy_only=False)[order]
                        for p in properties},
        )  # fmt: skip

    def _key_order(self, label: str) -> tuple[pd.Index, np.ndarray]:
        """Every key in key order (as on Neo4j, whatever order rows were loaded in) and the
        storage offset of each."""
        node = NODE_TYPES[label]
        table = self._arrow(
            f"MATCH (n:{label}) RETURN n.{node.key} AS k, offset(id(n)) AS o ORDER BY k"
        )
        keys = pd.Index(table.column("k").to_numpy(zero_copy_only=False), name=node.key)
        return keys, table.column("o").to_numpy()

    def query(
        self, cypher: str, params: Mapping[str, Any] | None = None, *,
        timeout_s: float | None = None, limit: int | None = None,
    ) -> pd.DataFrame:  # fmt: skip
        """Rows of one read-only statement; with ``limit``, at most that many are read."""
        check_read_only(cypher)
        # Reads never share the writer's connection. A second, read-only Database handle
        # is not workable inside one process: it sees only what was on disk when it was
        # opened (none of this handle's later writes) and an in-memory database cannot be
        # opened read-only. So reads rely on the check above, and commands that never
        # write open the whole store with read_only=True instead.
        conn = self._connect()
        if timeout_s is not None:
            conn.set_query_timeout(int(timeout_s * 1000))
        try:
            result = conn.execute(cypher, dict(params or {}))
            # check_read_only allows one statement, so this is never a list of results.
            assert not isinstance(result, list)
            if limit is not None and result.get_num_tuples() > limit:
                table = _first_rows(result, limit)  # never converts the rest
            else:
                table = result.get_as_arrow()
        except RuntimeError as exc:
            raise QueryError(str(exc)) from exc
        finally:
            conn.close()
        return _narrow_decimals(table).to_pandas()

    def close(self) -> None:
        self._conn.close()
        self._db.close()

    def __enter__(self) -> EmbeddedStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class _PairCodes:
    """Relationship endpoints as integers: source offset × ``width`` + target offset."""

    frame: np.ndarray  # the rows being written
    width: int  # one more than the largest target offset

    def codes(self, stored: pa.Table) -> np.ndarray:
        """The codes of stored relationships (columns ``s`` and ``d``: node offsets)."""
        src = stored.column("s").to_numpy().astype(np.int64)
        return src * self.width + stored.column("d").to_numpy().astype(np.int64)


def _conform(
    frame: pd.DataFrame, key: str | None, keep: list[str], columns: Mapping[str, str]
) -> pd.DataFrame:
    """Keep known columns, key first; drop duplicate keys (last wins)."""
    frame = frame[keep]
    if key is not None:
        frame = frame[~duplicated(frame[key], keep="last")]
    return frame.reset_index(drop=True)


def _only(table: pa.Table, column: str, values: pd.Series) -> pd.DataFrame:
    """The rows of ``table`` whose ``column`` is one of ``values``, as pandas.

    A load compares its rows with the stored ones: filtering in Arrow first keeps
    a day's load from converting and comparing every stored row.
    """
    return table.filter(pa.array(is_in(table.column(column), values))).to_pandas()


def _to_arrow(frame: pd.DataFrame, kinds: Mapping[str, str]) -> pa.Table:
    """A DataFrame as an Arrow table whose column types follow the schema."""
    arrays = {}
    for column in frame.columns:
        arrow_type = ARROW_TYPES[kinds[column]]
        values = frame[column]
        if arrow_type == pa.date32():
            values = pd.to_datetime(values).dt.date
        elif arrow_type == pa.timestamp("us"):
            values = pd.to_datetime(values)
        arrays[column] = pa.array(values, type=arrow_type, from_pandas=True)
    return pa.table(arrays)


_SCALARS: dict[str, pa.DataType] = {
    "INT64": pa.int64(), "INT32": pa.int32(), "INT16": pa.int16(), "INT8": pa.int8(),
    "UINT64": pa.uint64(), "UINT32": pa.uint32(), "UINT16": pa.uint16(), "UINT8": pa.uint8(),
    "INT128": pa.decimal128(38, 0), "DOUBLE": pa.float64(), "FLOAT": pa.float32(),
    "STRING": pa.string(), "BOOL": pa.bool_(), "DATE": pa.date32(),
    "TIMESTAMP": pa.timestamp("us"),
}  # fmt: skip


def _arrow_type(kind: str) -> pa.DataType | None:
    """The Arrow type ladybug's ``get_as_arrow`` gives a column of ``kind`` (None: infer)."""
    if kind.endswith("[]"):
        inner = _arrow_type(kind[:-2])
        return None if inner is None else pa.list_(inner)
    return _SCALARS.get(kind)


def _first_rows(result: ladybug.QueryResult, n: int) -> pa.Table:
    """The first ``n`` rows of a result, read one by one, typed as ``get_as_arrow`` would."""
    rows = [cast(list[Any], result.get_next()) for _ in range(n) if result.has_next()]
    arrays = []
    for i, kind in enumerate(result.get_column_data_types()):
        values = [row[i] for row in rows]
        try:
            arrays.append(pa.array(values, type=_arrow_type(kind)))
        except (pa.ArrowException, TypeError, ValueError):
            arrays.append(pa.array(values))
    return pa.Table.from_arrays(arrays, names=result.get_column_names())


def _narrow_decimals(table: pa.Table) -> pa.Table:
    """``sum()`` of INT64 comes back as INT128 (decimal128(38, 0)): give it back as int64."""
    for i, column in enumerate(table.schema):
        if pa.types.is_decimal(column.type) and column.type.scale == 0:
            table = table.set_column(i, column.name, table.column(i).cast(pa.int64()))
    return table


def _positions(offsets: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Position in ``offsets`` of each of ``wanted`` (every one present).

    Storage offsets are small non-negative integers: an inverse table beats a search.
    """
    if len(offsets) == 0:
        return np.zeros(0, dtype=np.int64)
    inverse = np.zeros(int(offsets.max()) + 1, dtype=np.int64)
    inverse[offsets] = np.arange(len(offsets), dtype=np.int64)
    return inverse[wanted]
