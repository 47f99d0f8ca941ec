"""Neo4jStore without a server: statements, batching, work functions, values, errors.

The fake driver below only records which work function each batch was handed
to (``execute_write``/``execute_read``) and answers with counts; what the
statements do on a real server is covered by the server-backed contract
tests (``tests/test_store_contract.py``) and their text by the Cypher linter
(``tests/test_cypher_lint.py``).
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from typing import Any

import numpy as np
import pandas as pd
import pytest
from neo4j.exceptions import TransientError

from creditgraph.errors import QueryError, ReadOnlyViolation, StoreUnavailable
from graph import neo4j_store as ns
from graph.features.position import position_features
from graph.network import FriendGraph
from graph.schema import FRIEND, NODE_TYPES, REL_TYPES, USER
from graph.store import EdgeArrays, GraphStore

HOSTILE = "u1'}) DETACH DELETE n //"


class FakeRecord(dict):
    def data(self) -> dict[str, Any]:
        return dict(self)


class FakeResult:
    def __init__(self, record: dict[str, Any]) -> None:
        self.record = FakeRecord(record)

    def single(self) -> FakeRecord:
        return self.record


class FakeTx:
    """Answers the count a statement would return for the rows it was sent."""

    def __init__(self, log: list, fail_first: list[bool]) -> None:
        self.log, self.fail_first = log, fail_first

    def run(self, cypher: str, params: dict[str, Any]) -> FakeResult:
        if self.fail_first and self.fail_first.pop():
            raise TransientError("deadlock detected")  # what the driver would retry
        self.log.append(("run", cypher, params))
        rows = params.get("rows", [])
        return FakeResult({"changed": len(rows), "matched": len(rows), "written": len(rows),
                           "missing": 0, "examples": []})


class FakeSession:
    def __init__(self, driver: FakeDriver, config: dict[str, Any]) -> None:
        self.driver, self.config = driver, config

    def __enter__(self) -> FakeSession:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def _call(self, mode: str, work: Any, args: tuple) -> Any:
        self.driver.log.append((mode, work, args, self.config["default_access_mode"]))
        while True:  # a managed transaction: retried from scratch on a transient error
            try:
                return work(FakeTx(self.driver.log, self.driver.fail_first), *args)
            except TransientError:
                self.driver.log.append(("retry", work))

    def begin_transaction(self) -> FakeTx:
        self.driver.log.append(("begin",))
        tx = FakeTx(self.driver.log, [])
        tx.commit = lambda: self.driver.log.append(("commit",))  # type: ignore[attr-defined]
        tx.rollback = lambda: self.driver.log.append(("rollback",))  # type: ignore[attr-defined]
        return tx

    def close(self) -> None:
        pass

    def execute_write(self, work: Any, *args: Any) -> Any:
        return self._call("execute_write", work, args)

    def execute_read(self, work: Any, *args: Any) -> Any:
        return self._call("execute_read", work, args)


class FakeDriver:
    def __init__(self, fail_first: list[bool] | None = None) -> None:
        self.log: list = []
        self.fail_first = fail_first or []

    def session(self, **config: Any) -> FakeSession:
        return FakeSession(self, config)

    def close(self) -> None:
        pass


def fake_store(batch_size: int = 2, **driver: Any) -> tuple[ns.Neo4jStore, FakeDriver]:
    fake = FakeDriver(**driver)
    return ns.Neo4jStore("bolt://example:7687", driver=fake, batch_size=batch_size,
                         progress=False), fake


def calls(fake: FakeDriver, kind: str) -> list:
    return [entry for entry in fake.log if entry[0] == kind]


# -- statements -------------------------------------------------------------------------------
def test_all_statements_cover_every_label_and_relationship() -> None:
    names = [s.name for s in ns.all_statements()]
    assert len(names) == len(set(names))
    for label in NODE_TYPES:
        for op in ("constraint", "upsert_nodes", "missing_keys", "node_ids", "write_properties"):
            assert f"{op}:{label}" in names
    for rel in REL_TYPES:
        assert f"upsert_edges:{rel}" in names and f"export_edges:{rel}" in names
    for op in ("gds_version", "gds_project:FRIEND", "gds_mutate:pagerank", "gds_stream",
               "gds_write", "gds_drop", "gds_personalized_pagerank"):
        assert op in names


def test_every_statement_declares_exactly_the_parameters_it_uses() -> None:
    for name, cypher, params in ns.all_statements():
        used = set(re.findall(r"\$([A-Za-z_]\w*)", cypher))
        assert used == set(params), name


def test_loads_merge_in_batches_with_two_matches_and_no_values_in_text() -> None:
    nodes, edges = ns.cypher_upsert_nodes(USER), ns.cypher_upsert_edges(FRIEND)
    assert nodes.startswith("UNWIND $rows AS row") and "MERGE (n:User {user_id: row.key})" in nodes
    assert "CREATE" not in nodes and "CREATE" not in edges  # MERGE only: safe to re-run
    assert "MATCH (a:User {user_id: row.src})\nMATCH (b:User {user_id: row.dst})" in edges
    assert "), (" not in edges  # never a comma (cartesian) pattern
    assert "CREATE CONSTRAINT user_user_id_unique IF NOT EXISTS FOR (n:User) REQUIRE " \
           "n.user_id IS UNIQUE" == ns.cypher_constraint(USER)


def test_identifiers_are_validated_before_reaching_query_text() -> None:
    for bad in ("User) DETACH DELETE (n", "a b", "1x", "", "n`"):
        with pytest.raises(QueryError):
            ns._ident(bad)
    with pytest.raises(QueryError, match="unknown node label"):
        ns.cypher_upsert_nodes(ns._node("Person"))
    with pytest.raises(QueryError, match="User-User"):
        ns.cypher_gds_project(("PAYS",))


def test_only_listed_statements_are_sent_and_values_stay_parameters() -> None:
    store, fake = fake_store()
    store.ensure_schema()
    store.upsert_nodes("User", pd.DataFrame({"user_id": [HOSTILE, "u2"], "city": [HOSTILE, "x"]}))
    store.upsert_edges("FRIEND", pd.DataFrame({"src": [HOSTILE], "dst": ["u2"]}))
    store.write_properties("User", pd.DataFrame({"score": [700.0]}, index=[HOSTILE]))
    known = {s.cypher for s in ns.all_statements()}
    sent = [(cypher, params) for kind, cypher, params in calls(fake, "run")]
    assert sent and all(cypher in known for cypher, _ in sent)
    assert all(HOSTILE not in cypher for cypher, _ in sent)
    assert any(HOSTILE in repr(params) for _, params in sent)


# -- batching and work functions --------------------------------------------------------------
def test_upsert_nodes_sends_batches_to_execute_write() -> None:
    store, fake = fake_store(batch_size=2)
    frame = pd.DataFrame({"user_id": [f"u{i}" for i in range(5)], "age": [30, 31, 32, 33, 34]})
    assert store.upsert_nodes("User", frame) == 5
    writes = calls(fake, "execute_write")
    assert [work for _, work, _, _ in writes] == [ns._run_single] * 3
    assert [len(args[1]["rows"]) for _, _, args, _ in writes] == [2, 2, 1]
    assert all(args[0] == ns.cypher_upsert_nodes(USER) for _, _, args, _ in writes)
    assert writes[0][2][1]["rows"][0] == {"key": "u0", "props": {"age": 30}}
    report = store.reports[-1]
    assert (report.kind, report.name, report.rows, report.changed, report.batches) == (
        "nodes", "User", 5, 5, 3)


def test_batch_size_defaults_to_ten_thousand_and_is_validated() -> None:
    assert ns.Neo4jStore("bolt://x", driver=FakeDriver()).batch_size == 10_000
    with pytest.raises(ValueError, match="batch_size"):
        ns.Neo4jStore("bolt://x", driver=FakeDriver(), batch_size=0)


def test_duplicate_keys_last_wins_and_unknown_columns_are_dropped() -> None:
    store, fake = fake_store(batch_size=10)
    frame = pd.DataFrame({"user_id": ["u1", "u1"], "age": [30, 31], "secret_name": ["a", "b"]})
    store.upsert_nodes("User", frame)
    (_, _, args, _), = calls(fake, "execute_write")
    assert args[1]["rows"] == [{"key": "u1", "props": {"age": 31}}]


def test_upsert_edges_checks_endpoints_in_a_read_then_writes_batches() -> None:
    store, fake = fake_store(batch_size=2)
    frame = pd.DataFrame({"src": ["u1", "u2", "u3"], "dst": ["u2", "u3", "u1"],
                          "src_interactions": [1, 2, 3]})
    assert store.upsert_edges("FRIEND", frame) == 3
    reads, writes = calls(fake, "execute_read"), calls(fake, "execute_write")
    assert reads and all(work is ns._run_single and mode == "READ"
                         for _, work, _, mode in reads)
    assert [work for _, work, _, _ in writes] == [ns._merge_edges] * 2
    assert fake.log.index(reads[-1]) < fake.log.index(writes[0])


def test_unknown_endpoints_write_nothing() -> None:
    store, fake = fake_store()

    def missing(tx: Any, cypher: str, params: dict) -> dict:
        return {"missing": 1, "examples": ["nobody"]} if "$keys" in cypher else {}

    store._read = lambda work, *args: missing(None, *args)  # type: ignore[method-assign]
    with pytest.raises(QueryError, match="1 unknown User nodes.*nobody"):
        store.upsert_edges("FRIEND", pd.DataFrame({"src": ["u1"], "dst": ["nobody"]}))
    assert not calls(fake, "execute_write")


def test_work_functions_count_once_when_the_driver_retries() -> None:
    # The first attempt of every batch fails with a transient error and is retried.
    store, fake = fake_store(batch_size=2, fail_first=[False, True, False, True])
    frame = pd.DataFrame({"user_id": ["u1", "u2", "u3"]})
    assert store.upsert_nodes("User", frame) == 3  # not 5: nothing counted on failed tries
    assert len(calls(fake, "retry")) == 2
    assert store.reports[-1].changed == 3


def test_work_functions_are_pure() -> None:
    log: list = []
    rows = [{"key": "u1", "props": {"age": 1}}]
    params = {"rows": rows}
    before = copy.deepcopy(params)
    first = ns._run_single(FakeTx(log, []), ns.cypher_upsert_nodes(USER), params)
    second = ns._run_single(FakeTx(log, []), ns.cypher_upsert_nodes(USER), params)
    assert first == second and params == before and log[0] == log[1]


def test_atomic_sends_every_write_and_read_through_one_transaction() -> None:
    store, fake = fake_store(batch_size=1)
    with pytest.raises(RuntimeError), store.atomic():
        store.upsert_nodes("User", pd.DataFrame({"user_id": ["u1", "u2"]}))
        store.upsert_edges("FRIEND", pd.DataFrame({"src": ["u1"], "dst": ["u2"]}))
        raise RuntimeError("boom")
    kinds = [entry[0] for entry in fake.log]
    assert kinds[0] == "begin" and kinds[-1] == "rollback" and "commit" not in kinds
    assert "execute_write" not in kinds and "execute_read" not in kinds  # no separate sessions
    fake.log.clear()
    with store.atomic(), store.atomic():  # nested blocks join the outer one
        store.upsert_nodes("User", pd.DataFrame({"user_id": ["u3"]}))
    assert [entry[0] for entry in fake.log] == ["begin", "run", "commit"]


def test_merge_edges_rolls_back_a_batch_that_lost_an_endpoint() -> None:
    class Short(FakeTx):
        def run(self, cypher: str, params: dict[str, Any]) -> FakeResult:
            return FakeResult({"matched": len(params["rows"]) - 1, "changed": 0})

    with pytest.raises(QueryError, match="rolled back"):
        ns._merge_edges(Short([], []), ns.cypher_upsert_edges(FRIEND), [{"src": "a"}] * 2)


def test_write_properties_batches_and_refuses_odd_property_names() -> None:
    store, fake = fake_store(batch_size=2)
    scores = pd.DataFrame({"score": [700.0, 650.5, 500.0], "model_id": ["m", "m", "m"]},
                          index=pd.Index(["u1", "u2", "u3"], name="user_id"))
    assert store.write_properties("User", scores) == 3
    writes = calls(fake, "execute_write")
    assert [len(args[1]["rows"]) for _, _, args, _ in writes] == [2, 1]
    assert writes[0][2][1]["rows"][0] == {"key": "u1", "props": {"score": 700.0, "model_id": "m"}}
    with pytest.raises(QueryError, match="identifier"):
        store.write_properties("User", pd.DataFrame({"bad name": [1]}, index=["u1"]))


# -- reads ------------------------------------------------------------------------------------
def test_query_refuses_writes_before_any_session_and_reads_in_read_mode() -> None:
    store, fake = fake_store()
    with pytest.raises(ReadOnlyViolation):
        store.query("MATCH (n:User) SET n.score = 1")
    assert fake.log == []


def test_store_satisfies_the_protocol() -> None:
    store, _ = fake_store()
    assert isinstance(store, GraphStore) and store.dialect == "neo4j"


# -- values -----------------------------------------------------------------------------------
def test_values_become_driver_types_and_missing_becomes_none() -> None:
    frame = pd.DataFrame({
        "d": ["2024-01-31", None], "t": pd.to_datetime(["2024-01-31 12:00", None], utc=True),
        "i": [np.int64(3), None], "f": [0.5, np.nan], "b": [True, None], "s": ["x", None],
    })  # fmt: skip
    assert ns._python_values(frame["d"], ns.DATE) == [dt.date(2024, 1, 31), None]
    assert ns._python_values(frame["t"], ns.TIMESTAMP) == [dt.datetime(2024, 1, 31, 12), None]
    assert ns._python_values(frame["i"], ns.INT) == [3, None]
    assert type(ns._python_values(frame["i"], ns.INT)[0]) is int
    assert ns._python_values(frame["f"], ns.FLOAT) == [0.5, None]
    assert ns._python_values(frame["b"], ns.BOOL) == [True, None]
    assert ns._python_values(pd.Series(["false", "TRUE"]), ns.BOOL) == [False, True]
    assert ns._python_values(frame["s"], ns.STRING) == ["x", None]


def test_column_arrays_match_the_embedded_types() -> None:
    dates = ns._column_array([dt.date(2024, 1, 1), None], ns.DATE)
    assert dates.dtype == np.dtype("datetime64[D]") and np.isnat(dates[1])
    assert ns._column_array([1, 2], ns.INT).dtype == np.int64
    assert np.isnan(ns._column_array([1, None], ns.INT)[1])


# -- connection and credentials ---------------------------------------------------------------
def test_from_env_needs_uri_and_password() -> None:
    with pytest.raises(StoreUnavailable, match="NEO4J_URI"):
        ns.Neo4jStore.from_env(environ={"NEO4J_PASSWORD": "x"})
    with pytest.raises(StoreUnavailable, match="NEO4J_PASSWORD"):
        ns.Neo4jStore.from_env(environ={"NEO4J_URI": "bolt://localhost:7687"})


def test_unreachable_server_is_store_unavailable_without_leaking_the_password() -> None:
    env = {"NEO4J_URI": "bolt://127.0.0.1:1", "NEO4J_USER": "neo4j",
           "NEO4J_PASSWORD": "s3cret-pw-123"}
    with pytest.raises(StoreUnavailable) as info:
        ns.Neo4jStore.from_env(environ=env, max_retry_time_s=0.1)
    assert "s3cret-pw-123" not in str(info.value) and "127.0.0.1:1" in str(info.value)
    assert info.value.__cause__ is None  # the driver's error (with its config) is not chained


def test_messages_never_show_uri_credentials() -> None:
    store = ns.Neo4jStore("bolt://neo4j:hunter22@db:7687", driver=FakeDriver())
    assert "hunter22" not in repr(store) and "hunter22" not in store.uri


# -- in-database features ---------------------------------------------------------------------
def test_features_frame_matches_the_igraph_columns() -> None:
    """GDS-style raw values (unnormalised PageRank, 0 clustering below 2 friends) → same frame."""
    ids = pd.Index([f"u{i}" for i in range(7)], name="user_id")
    src, dst = np.array([0, 1, 2, 2, 4]), np.array([1, 2, 0, 3, 5])
    graph = FriendGraph.from_arrays(EdgeArrays(src, dst, ids, ids))
    expected = position_features(graph)
    a = graph.adjacency.toarray()
    degree = a.sum(axis=1)
    transition = (a / np.where(degree > 0, degree, 1)[:, None]).T
    raw_pagerank = np.linalg.solve(np.eye(7) - 0.85 * transition, np.full(7, 0.15))  # GDS form
    clustering = np.nan_to_num(expected["clustering"].to_numpy())  # GDS gives 0, not NaN
    component = [0, 0, 0, 0, 4, 4, 6]
    rows = []
    for i, user in enumerate(ids):
        rows += [(user, "pagerank", raw_pagerank[i]), (user, "component", component[i]),
                 (user, "kcore", int(expected["coreness"].iloc[i])),
                 (user, "clustering", clustering[i]), (user, "community", i // 3),
                 (user, "degree", int(degree[i]))]
    got = ns.features_frame(rows)
    assert list(got.columns) == list(ns.GDS_FEATURE_COLUMNS)
    pd.testing.assert_frame_equal(got[expected.columns], expected, check_exact=False, rtol=1e-6)
