"""An honest stand-in for the Neo4j driver and server, and the tests that keep it honest.

``FakeDriver`` plays a tiny Neo4j 5.26 server with GDS 2.13 behind the driver
API :class:`graph.neo4j.store.Neo4jStore` uses (sessions, managed and explicit
transactions, ``Result.fetch``). It never answers "len(rows)" blindly:

* it knows only the statements :func:`graph.neo4j.statements.all_statements` lists
  (anything else is an error), and each is *executed* against an in-memory
  graph: MERGE semantics, missing endpoints, key order, relationship export;
* every ``$name`` in a statement must be sent and every parameter sent must be
  used; every ``row.<field>`` of an ``UNWIND $rows AS row`` must be in every
  row and nothing else may be; values must be plain driver types (no numpy);
* a session accepts only the driver's own configuration keywords and records
  its access mode; a write statement in a READ transaction fails as on a
  server (``Neo.ClientError.Statement.AccessMode``);
* ``FakeDriver(fail_write_at=k)`` loses the server while the k-th managed
  write transaction commits: its statements ran, their effects are rolled
  back and the driver gives up (``ServiceUnavailable``), as when a load dies
  half-way;
* every ``gds.*`` name must be in GDS 2.13's published list
  (``../shared/neo4j/gds-2.13-procedures.txt``), configurations above the
  Community Edition's 4 threads are refused, the catalog refuses a second graph
  of the same name and a property mutated twice, and the algorithms are
  computed with networkx on the projection the statement describes.

Other tests import it (``from test_neo4j_fake import FakeDriver``).
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import neo4j
import neo4j.exceptions as ne
import networkx as nx
import pytest

from creditgraph.errors import StoreUnavailable
from creditgraph.graph.neo4j.statements import (
    all_statements,
    cypher_gds_project,
    cypher_missing_keys,
    cypher_node_ids,
    cypher_upsert_nodes,
)
from creditgraph.graph.neo4j.store import Neo4jStore
from creditgraph.graph.schema import NODE_TYPES, REL_TYPES, USER

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "neo4j"


def reference_lines(name: str) -> list[str]:
    """Names from one of Neo4j's reference lists beside the checkout; fail loudly if absent."""
    path = REFERENCE / name
    if not path.is_file():
        pytest.fail(
            f"{path} is missing: the Neo4j reference lists must sit in shared/neo4j/ beside the "
            "checkout (as in CI); these checks never skip"
        )
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def gds_names() -> set[str]:
    return set(reference_lines("gds-2.13-procedures.txt"))


GDS_NAME = re.compile(r"\bgds(?:\.[A-Za-z_]\w*)+")
PARAM = re.compile(r"\$([A-Za-z_]\w*)")
# The driver's session keywords (neo4j.Driver.session); anything else is a typo.
SESSION_KEYWORDS = {
    "auth", "bookmark_manager", "bookmarks", "connection_acquisition_timeout", "database",
    "default_access_mode", "fetch_size", "impersonated_user", "initial_retry_delay",
    "max_transaction_retry_time", "notifications_disabled_categories",
    "notifications_disabled_classifications", "notifications_min_severity",
    "retry_delay_jitter_factor", "retry_delay_multiplier", "warn_notification_severity",
    "disable_auto_commit_retries",
}  # fmt: skip
WRITES = ("constraint:", "index:", "upsert_nodes:", "upsert_edges:", "remove_edges:",
          "write_properties:")  # fmt: skip
PLAIN = (type(None), bool, int, float, str, dt.date, dt.time, dt.timedelta)


def server_error(code: str, message: str) -> ne.Neo4jError:
    """A Neo4jError as the driver builds it from a server failure."""
    hydrate = getattr(ne.Neo4jError, "_hydrate_neo4j", None) or ne.Neo4jError.hydrate
    return hydrate(code=code, message=message)


def check_value(value: Any, where: str) -> None:
    """Only what the driver sends as Cypher values: no numpy, no pandas missing markers."""
    if isinstance(value, dict):
        for k, v in value.items():
            assert isinstance(k, str), f"{where}: map key {k!r} is not a string"
            check_value(v, f"{where}.{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            check_value(v, f"{where}[{i}]")
    else:
        assert isinstance(value, PLAIN) and type(value).__module__ in ("builtins", "datetime"), (
            f"{where}: {type(value).__module__}.{type(value).__name__} is not a driver value"
        )


def check_shape(cypher: str, params: dict[str, Any]) -> None:
    """Parameters sent == ``$names`` used; UNWIND rows carry exactly the fields read."""
    used = set(PARAM.findall(cypher))
    assert used == set(params), f"statement uses {sorted(used)}, sent {sorted(params)}"
    for name, value in params.items():
        check_value(value, f"${name}")
    unwind = re.search(r"UNWIND \$(\w+) AS (\w+)", cypher)
    if unwind and isinstance(params[unwind.group(1)], list):
        fields = set(re.findall(rf"\b{unwind.group(2)}\.(\w+)", cypher))
        for row in params[unwind.group(1)]:
            if fields:
                assert isinstance(row, dict) and set(row) == fields, (
                    f"row {row!r} does not carry exactly {sorted(fields)}"
                )


class FakeResult:
    """The parts of ``neo4j.Result`` the store uses, over records computed up front."""

    def __init__(self, keys: list[str], rows: list[dict[str, Any]]) -> None:
        self._keys = keys
        self._records = [neo4j.Record({k: row[k] for k in keys}) for row in rows]
        self.fetch_sizes: list[int] = []

    def keys(self) -> list[str]:
        return list(self._keys)

    def __iter__(self) -> Iterator[neo4j.Record]:
        while self._records:
            yield self._records.pop(0)

    def fetch(self, n: int) -> list[neo4j.Record]:
        self.fetch_sizes.append(n)
        taken, self._records = self._records[:n], self._records[n:]
        return taken

    def single(self) -> neo4j.Record | None:
        records, self._records = self._records, []
        assert len(records) <= 1, f"single() on {len(records)} records"
        return records[0] if records else None


@dataclass
class Call:
    """One statement the fake server ran."""

    name: str  # the all_statements() name, or "adhoc"
    cypher: str
    params: dict[str, Any]
    mode: str  # READ or WRITE: the transaction's access mode
    via: str  # execute_read, execute_write, explicit, auto-commit


@dataclass
class FakeServer:
    """The data and GDS catalog behind the fake driver."""

    nodes: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: {label: {} for label in NODE_TYPES}
    )
    rels: dict[str, dict[tuple[str, str], dict[str, Any]]] = field(
        default_factory=lambda: {name: {} for name in REL_TYPES}
    )
    schema: list[str] = field(default_factory=list)
    catalog: dict[str, dict[str, Any]] = field(default_factory=dict)
    gds_version: str | None = "2.13.4"
    adhoc: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    fail_on: str | None = None  # a statement name that fails with a server error
    calls: list[Call] = field(default_factory=list)
    results: list[FakeResult] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.statements = {s.cypher: s.name for s in all_statements()}
        self.gds = gds_names()

    # -- dispatch ------------------------------------------------------------------------------
    def run(self, cypher: str, params: dict[str, Any], mode: str, via: str) -> FakeResult:
        for name in GDS_NAME.findall(cypher):
            assert name in self.gds, f"{name} is not a GDS 2.13 procedure or function"
        name = self.statements.get(cypher)
        if name is None:
            assert cypher in self.adhoc, f"unknown statement (not in all_statements()):\n{cypher}"
            check_shape(cypher, params)
            self.calls.append(Call("adhoc", cypher, params, mode, via))
            rows = self.adhoc[cypher]
            return FakeResult(list(rows[0]) if rows else [], rows)
        check_shape(cypher, params)
        self.calls.append(Call(name, cypher, params, mode, via))
        if mode == "READ" and name.startswith(WRITES):
            raise server_error("Neo.ClientError.Statement.AccessMode",
                               "Writing in read access mode not allowed.")  # fmt: skip
        if name == self.fail_on:
            raise server_error("Neo.ClientError.Procedure.ProcedureCallFailed", f"{name} failed")
        kind, _, arg = name.partition(":")
        keys, rows = getattr(self, f"_{kind}")(arg, cypher, params)
        self.results.append(FakeResult(keys, rows))
        return self.results[-1]

    # -- schema and loads ----------------------------------------------------------------------
    def _constraint(self, label: str, cypher: str, params: dict) -> tuple[list, list]:
        self.schema.append(cypher)
        return [], []

    _index = _constraint

    def _upsert_nodes(self, label: str, cypher: str, params: dict) -> tuple[list, list]:
        changed, store = 0, self.nodes[label]
        for row in params["rows"]:
            before = store.get(row["key"])
            after = dict(before or {NODE_TYPES[label].key: row["key"]})
            for k, v in row["props"].items():
                if v is None:
                    after.pop(k, None)
                else:
                    after[k] = v
            store[row["key"]] = after
            changed += before != after
        return ["changed"], [{"changed": changed}]

    def _missing_keys(self, label: str, cypher: str, params: dict) -> tuple[list, list]:
        missing = [k for k in params["keys"] if k not in self.nodes[label]]
        return ["missing", "examples"], [{"missing": len(missing), "examples": missing[:3]}]

    def _upsert_edges(self, rel: str, cypher: str, params: dict) -> tuple[list, list]:
        kind, matched, changed = REL_TYPES[rel], 0, 0
        for row in params["rows"]:
            if (
                row["src"] not in self.nodes[kind.source]
                or row["dst"] not in self.nodes[kind.target]
            ):
                continue
            matched += 1
            before = self.rels[rel].get((row["src"], row["dst"]))
            after = dict(before or {})
            for k, v in row["props"].items():
                if v is None:
                    after.pop(k, None)
                else:
                    after[k] = v
            self.rels[rel][(row["src"], row["dst"])] = after
            changed += before != after
        return ["matched", "changed"], [{"matched": matched, "changed": changed}]

    def _remove_edges(self, rel: str, cypher: str, params: dict) -> tuple[list, list]:
        removed = 0
        for row in params["rows"]:  # MATCH ... DELETE r: a pair not stored matches nothing
            removed += self.rels[rel].pop((row["src"], row["dst"]), None) is not None
        return ["changed"], [{"changed": removed}]

    def _write_properties(self, label: str, cypher: str, params: dict) -> tuple[list, list]:
        written = 0
        for row in params["rows"]:
            node = self.nodes[label].get(row["key"])
            if node is not None:  # SET n += row.props: a null removes the property
                written += 1
                for k, v in row["props"].items():
                    if v is None:
                        node.pop(k, None)
                    else:
                        node[k] = v
        return ["written"], [{"written": written}]

    # -- reads ---------------------------------------------------------------------------------
    def _read_meta(self, arg: str, cypher: str, params: dict) -> tuple[list, list]:
        # MATCH (m:Meta) RETURN m.name AS name, m.value AS value: a removed value reads as null
        rows = [{"name": k, "value": v.get("value")} for k, v in self.nodes["Meta"].items()]
        return ["name", "value"], rows

    def _node_ids(self, label: str, cypher: str, params: dict) -> tuple[list, list]:
        keys = sorted(k for k in self.nodes[label] if k is not None)
        return ["key"], [{"key": k} for k in keys]

    def _export_edges(self, rel: str, cypher: str, params: dict) -> tuple[list, list]:
        kind = REL_TYPES[rel]
        rows = [
            {"src": s, "dst": d, "props": [props.get(p) for p in params["properties"]]}
            for (s, d), props in self.rels[rel].items()
            if s in self.nodes[kind.source] and d in self.nodes[kind.target]
        ]
        return ["src", "dst", "props"], rows

    # -- GDS -----------------------------------------------------------------------------------
    def _gds_version(self, arg: str, cypher: str, params: dict) -> tuple[list, list]:
        if self.gds_version is None:
            raise server_error("Neo.ClientError.Statement.SyntaxError",
                               "Unknown function 'gds.version'")  # fmt: skip
        return ["version"], [{"version": self.gds_version}]

    def _threads(self, config: dict[str, Any], key: str = "concurrency") -> None:
        if config.get(key, 4) > 4:  # GDS Community Edition
            raise server_error(
                "Neo.ClientError.Procedure.ProcedureCallFailed",
                f"The configured `{key}` value is too high. The maximum allowed `{key}` value "
                f"is 4 but {config[key]} was configured.",
            )

    def _graph(self, name: str) -> dict[str, Any]:
        if name not in self.catalog:
            raise server_error("Neo.ClientError.Procedure.ProcedureCallFailed",
                               f"Graph with name `{name}` does not exist")  # fmt: skip
        return self.catalog[name]

    def _gds_project(self, rel: str, cypher: str, params: dict) -> tuple[list, list]:
        shape = r"'(\w+)', \{(\w+): \{orientation: '(\w+)', aggregation: '(\w+)'\}\}"
        projection = re.search(shape, cypher)
        assert projection, f"not a native projection: {cypher}"
        label, rel_type, orientation, aggregation = projection.groups()
        assert (orientation, aggregation) == ("UNDIRECTED", "SINGLE"), (
            "the fake models the simple undirected projection only"
        )
        self._threads({"readConcurrency": params["concurrency"]}, "readConcurrency")
        if params["graph"] in self.catalog:
            raise server_error(
                "Neo.ClientError.Procedure.ProcedureCallFailed",
                f"A graph with name '{params['graph']}' already exists.",
            )
        graph = nx.Graph()
        graph.add_nodes_from(k for k in self.nodes[label] if k is not None)
        edges = [(s, d) for s, d in self.rels[rel_type] if s in graph and d in graph]
        # GDS would keep a self-loop; ingest refuses them, and so does this fake.
        assert all(s != d for s, d in edges), "the fake does not model self-loops"
        graph.add_edges_from(edges)
        self.catalog[params["graph"]] = {"graph": graph, "properties": {}, "configs": []}
        return ["graph", "nodes", "relationships"], [
            {"graph": params["graph"], "nodes": graph.number_of_nodes(),
             "relationships": 2 * graph.number_of_edges()}  # UNDIRECTED: both directions
        ]  # fmt: skip

    def _gds_mutate(self, algo: str, cypher: str, params: dict) -> tuple[list, list]:
        entry, config = self._graph(params["graph"]), params["config"]
        self._threads(config)
        prop = config["mutateProperty"]
        if prop in entry["properties"]:
            raise server_error(
                "Neo.ClientError.Procedure.ProcedureCallFailed",
                f"Node property `{prop}` already exists in the in-memory graph.",
            )
        graph: nx.Graph = entry["graph"]
        if algo == "pagerank":
            values = _unnormalised_pagerank(graph, config.get("dampingFactor", 0.85))
        elif algo == "component":
            values = {n: min(c) for c in nx.connected_components(graph) for n in c}
        elif algo == "kcore":
            values = nx.core_number(graph)
        elif algo == "clustering":
            values = nx.clustering(graph)  # 0.0 below two neighbours, as GDS gives
        elif algo == "degree":
            values = {n: float(d) for n, d in graph.degree()}
        else:  # leiden / louvain: a partition
            values = nx.community.louvain_communities(graph, seed=config.get("randomSeed", 0))
            values = {n: i for i, c in enumerate(sorted(values, key=min)) for n in c}
        entry["properties"][prop] = values
        entry["configs"].append((algo, config))
        return ["nodePropertiesWritten"], [{"nodePropertiesWritten": len(values)}]

    def _gds_personalized_pagerank(self, arg: str, cypher: str, params: dict
                                   ) -> tuple[list, list]:  # fmt: skip
        entry = self._graph(params["graph"])
        self._threads(params)
        sources = [k for k in params["seeds"] if k in self.nodes[USER.label]]
        if not sources:  # WITH collect(s) AS sources WHERE size(sources) > 0
            return ["nodePropertiesWritten", "seeds"], []
        values = _unnormalised_pagerank(entry["graph"], params["damping"], sources)
        entry["properties"][params["property"]] = values
        entry["configs"].append(("ppr", {"sourceNodes": sources, **params}))
        return ["nodePropertiesWritten", "seeds"], [
            {"nodePropertiesWritten": len(values), "seeds": len(sources)}
        ]

    def _gds_write(self, arg: str, cypher: str, params: dict) -> tuple[list, list]:
        entry = self._graph(params["graph"])
        self._threads({"writeConcurrency": params["concurrency"]}, "writeConcurrency")
        written = 0
        for prop, target in params["properties"].items():
            for key, value in entry["properties"][prop].items():
                self.nodes[USER.label][key][target] = value
                written += 1
        return ["propertiesWritten"], [{"propertiesWritten": written}]

    def _gds_drop(self, arg: str, cypher: str, params: dict) -> tuple[list, list]:
        dropped = self.catalog.pop(params["graph"], None)  # failIfMissing: false
        return ["graphName"], ([{"graphName": params["graph"]}] if dropped else [])

    def _gds_read(self, arg: str, cypher: str, params: dict) -> tuple[list, list]:
        columns = re.findall(r"u\.(\w+) AS (\w+)", cypher)
        rows = [
            {alias: props.get(prop) for prop, alias in columns}
            for key, props in sorted(self.nodes[USER.label].items())
            if key is not None
        ]
        return [alias for _, alias in columns], rows


def _unnormalised_pagerank(graph: nx.Graph, damping: float,
                           sources: list[str] | None = None) -> dict[str, float]:  # fmt: skip
    """PageRank as GDS reports it: scaled so a uniform teleport adds 1 - d per node."""
    if graph.number_of_nodes() == 0:
        return {}
    personal = {n: float(n in sources) for n in graph} if sources else None
    ranks = nx.pagerank(graph, alpha=damping, personalization=personal, tol=1e-12,
                        max_iter=1000)  # fmt: skip
    return {n: v * graph.number_of_nodes() * (1 - damping) for n, v in ranks.items()}


class FakeTx:
    """A transaction: runs statements on the fake server in one access mode.

    Managed transactions (``execute_read``/``execute_write``) and explicit ones
    (``begin_transaction``) roll back what they wrote when they fail.
    """

    def __init__(self, driver: FakeDriver, mode: str, via: str) -> None:
        self.driver, self.mode, self.via = driver, mode, via
        self.closed = False
        self.snapshot = copy.deepcopy((driver.server.nodes, driver.server.rels))

    def run(self, cypher: str, parameters: dict[str, Any] | None = None) -> FakeResult:
        assert not self.closed, "run() on a finished transaction"
        if self.driver.fail_first and self.driver.fail_first.pop():
            raise server_error("Neo.TransientError.Transaction.DeadlockDetected",
                               "deadlock detected")  # fmt: skip
        self.driver.log.append(("run", cypher, dict(parameters or {})))
        return self.driver.server.run(cypher, dict(parameters or {}), self.mode, self.via)

    def commit(self) -> None:
        self.driver.log.append(("commit",))
        self.closed = True

    def rollback(self) -> None:
        self.driver.log.append(("rollback",))
        self.driver.server.nodes, self.driver.server.rels = self.snapshot
        self.closed = True


class FakeSession:
    def __init__(self, driver: FakeDriver, config: dict[str, Any]) -> None:
        unknown = set(config) - SESSION_KEYWORDS
        assert not unknown, f"not a driver session keyword: {sorted(unknown)}"
        self.driver, self.config = driver, config
        self.mode = config.get("default_access_mode", neo4j.WRITE_ACCESS)
        assert self.mode in (neo4j.READ_ACCESS, neo4j.WRITE_ACCESS), self.mode
        driver.sessions.append(self.mode)

    def __enter__(self) -> FakeSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        pass

    def _managed(self, mode: str, via: str, work: Any, args: tuple, kwargs: dict) -> Any:
        self.driver.log.append((via, work, args, self.mode))
        if via == "execute_write":
            self.driver.writes += 1
        while True:  # retried from scratch on a transient error, as the driver does
            tx = FakeTx(self.driver, mode, via)
            try:
                result = work(tx, *args, **kwargs)
                if via == "execute_write" and self.driver.writes == self.driver.fail_write_at:
                    self.driver.log.append(("lost", work))
                    raise ne.ServiceUnavailable("connection lost while committing")
                return result
            except Exception as exc:  # the driver rolls a failed managed transaction back
                self.driver.server.nodes, self.driver.server.rels = tx.snapshot
                if not (isinstance(exc, ne.Neo4jError) and exc.is_retryable()):
                    raise
                self.driver.log.append(("retry", work))

    def execute_read(self, work: Any, *args: Any, **kwargs: Any) -> Any:
        return self._managed(neo4j.READ_ACCESS, "execute_read", work, args, kwargs)

    def execute_write(self, work: Any, *args: Any, **kwargs: Any) -> Any:
        return self._managed(neo4j.WRITE_ACCESS, "execute_write", work, args, kwargs)

    def begin_transaction(self) -> FakeTx:
        self.driver.log.append(("begin",))
        return FakeTx(self.driver, self.mode, "explicit")

    def run(self, cypher: str, parameters: dict[str, Any] | None = None) -> FakeResult:
        self.driver.log.append(("run", cypher, dict(parameters or {})))
        return self.driver.server.run(cypher, dict(parameters or {}), self.mode, "auto-commit")


class FakeDriver:
    """The driver: sessions over one fake server; ``log`` and ``server.calls`` record all.

    ``log`` holds ``(via, work, args, session mode)`` per managed transaction,
    ``("run", cypher, params)`` per statement, ``("begin",)``, ``("commit",)``,
    ``("rollback",)``, ``("retry", work)`` and ``("lost", work)``.
    """

    def __init__(self, server: FakeServer | None = None, fail_first: list[bool] | None = None,
                 fail_write_at: int | None = None) -> None:  # fmt: skip
        self.server = server or FakeServer()
        self.fail_first = list(fail_first or [])
        self.fail_write_at = fail_write_at  # the managed write transaction (1-based) that dies
        self.writes = 0  # managed write transactions begun
        self.sessions: list[str] = []  # access mode of every session opened
        self.log: list[tuple] = []

    def session(self, **config: Any) -> FakeSession:
        return FakeSession(self, config)

    def close(self) -> None:
        pass

    @property
    def calls(self) -> list[Call]:
        return self.server.calls

    def named(self, prefix: str) -> list[Call]:
        return [c for c in self.server.calls if c.name.startswith(prefix)]


def fake_store(batch_size: int = 2, **driver: Any) -> tuple[Neo4jStore, FakeDriver]:
    fake = FakeDriver(**driver)
    store = Neo4jStore("bolt://example:7687", driver=fake, batch_size=batch_size,
                       progress=False)  # fmt: skip
    return store, fake


# -- the fake refuses what a server (or the driver) would refuse ------------------------------
def test_fake_refuses_a_parameter_the_statement_does_not_use() -> None:
    fake = FakeDriver()
    cypher = cypher_node_ids(USER)
    with pytest.raises(AssertionError, match="sent"):
        fake.session().execute_read(lambda tx: tx.run(cypher, {"limit": 3}))
    with pytest.raises(AssertionError, match="uses"):
        fake.session().execute_read(lambda tx: tx.run(cypher_missing_keys(USER), {}))


def test_fake_refuses_rows_of_the_wrong_shape_and_numpy_values() -> None:
    import numpy as np

    fake, cypher = FakeDriver(), cypher_upsert_nodes(USER)
    with pytest.raises(AssertionError, match="exactly"):
        fake.session().execute_write(lambda tx: tx.run(cypher, {"rows": [{"key": "u1"}]}))
    with pytest.raises(AssertionError, match="numpy"):
        fake.session().execute_write(
            lambda tx: tx.run(cypher, {"rows": [{"key": "u1", "props": {"age": np.int64(3)}}]})
        )


def test_fake_refuses_unknown_statements_session_keywords_and_writes_in_read_mode() -> None:
    fake = FakeDriver()
    with pytest.raises(AssertionError, match="unknown statement"):
        fake.session().run("MATCH (n) DETACH DELETE n")
    with pytest.raises(AssertionError, match="session keyword"):
        fake.session(access_mode="READ")
    rows = {"rows": [{"key": "u1", "props": {}}]}
    with pytest.raises(ne.ClientError, match="read access mode"):
        fake.session(default_access_mode=neo4j.READ_ACCESS).execute_read(
            lambda tx: tx.run(cypher_upsert_nodes(USER), rows)
        )


def test_fake_refuses_names_outside_gds_213_and_more_than_four_threads() -> None:
    fake = FakeDriver()
    fake.server.statements["CALL gds.pageRank.mutat($graph) YIELD x RETURN x"] = "gds_mutate:x"
    with pytest.raises(AssertionError, match="gds.pageRank.mutat is not a GDS 2.13"):
        fake.session().run("CALL gds.pageRank.mutat($graph) YIELD x RETURN x", {"graph": "g"})
    project = cypher_gds_project("FRIEND")
    with pytest.raises(ne.ClientError, match="maximum allowed"):
        fake.session().run(project, {"graph": "g", "concurrency": 8})
    fake.session().run(project, {"graph": "g", "concurrency": 4})
    with pytest.raises(ne.ClientError, match="already exists"):
        fake.session().run(project, {"graph": "g", "concurrency": 4})


def test_fake_merge_counts_only_real_changes() -> None:
    store, fake = fake_store(batch_size=10)
    import pandas as pd

    frame = pd.DataFrame({"user_id": ["u1", "u2"], "age": [30, 31]})
    assert store.upsert_nodes("User", frame) == 2
    assert store.upsert_nodes("User", frame) == 0  # nothing changed: MERGE semantics, not len
    assert fake.server.nodes["User"]["u2"] == {"user_id": "u2", "age": 31}


def test_fake_loses_the_kth_write_transaction_whole_and_reads_meta_back() -> None:
    import pandas as pd

    store, fake = fake_store(batch_size=1)
    fake.fail_write_at = 2  # the second managed write transaction dies while committing
    frame = pd.DataFrame({"user_id": ["u1", "u2", "u3"]})
    with pytest.raises(StoreUnavailable, match="lost Neo4j"):
        store.upsert_nodes("User", frame)
    assert list(fake.server.nodes["User"]) == ["u1"]  # u2 ran, then went with its transaction
    assert [e[0] for e in fake.log if e[0] in ("execute_write", "lost")] == [
        "execute_write", "execute_write", "lost"]  # fmt: skip
    from creditgraph.graph.meta import read_meta, write_meta

    write_meta(store, load_id="L1", pending_load="L2")
    write_meta(store, pending_load=None)  # a cleared value reads as absent
    assert read_meta(store) == {"load_id": "L1"}
    assert fake.calls[-1].name == "read_meta" and fake.calls[-1].mode == neo4j.READ_ACCESS


def test_fake_set_plus_equals_removes_a_property_sent_as_null() -> None:
    import pandas as pd

    store, fake = fake_store(batch_size=10)
    store.upsert_nodes("User", pd.DataFrame({"user_id": ["u1"]}))
    store.write_properties("User", pd.DataFrame({"prev_score": [600.0]}, index=["u1"]))
    store.write_properties("User", pd.DataFrame({"prev_score": [float("nan")]}, index=["u1"]))
    assert fake.server.nodes["User"]["u1"] == {"user_id": "u1"}  # SET n += {p: null} removes p
