"""Neo4jStore without a server: statements, batching, work functions, values, errors.

The driver is :class:`test_neo4j_fake.FakeDriver`, a fake that executes every
statement the store may send against an in-memory graph, checks each one's
parameters against its ``$names``, records the access mode of every session
and refuses writes in READ transactions as a server would. What the
statements do on a real server is covered by the server-backed contract tests
(``tests/test_store_contract.py``) and their text by the Cypher linter
(``tests/test_cypher_lint.py``).
"""

from __future__ import annotations

import copy
import datetime as dt
import re

import neo4j
import numpy as np
import pandas as pd
import pytest
from test_neo4j_fake import FakeDriver, FakeTx, fake_store

from creditgraph.errors import QueryError, ReadOnlyViolation, StoreUnavailable
from creditgraph.graph.embedded import EmbeddedStore
from creditgraph.graph.meta import write_meta
from creditgraph.graph.neo4j.gds import GDS_FEATURE_COLUMNS, features_frame
from creditgraph.graph.neo4j.statements import (
    all_statements,
    cypher_constraint,
    cypher_gds_project,
    cypher_upsert_edges,
    cypher_upsert_nodes,
    ident,
    node_type,
)
from creditgraph.graph.neo4j.store import Neo4jStore, _merge_edges, _run_single
from creditgraph.graph.neo4j.values import column_array, python_values
from creditgraph.graph.network import FriendGraph
from creditgraph.graph.schema import (
    BOOL,
    DATE,
    FLOAT,
    FRIEND,
    INT,
    NODE_TYPES,
    REL_TYPES,
    STRING,
    TIMESTAMP,
    USER,
)
from creditgraph.graph.store import EdgeArrays, GraphStore
from creditgraph.scoring.features.position import position_features

HOSTILE = "u1'}) DETACH DELETE n //"
READS = (
    "missing_keys:",
    "node_ids:",
    "export_edges:",
    "gds_version",
    "gds_read",
    "read_meta",
    "adhoc",
)


def calls(fake: FakeDriver, kind: str) -> list:
    return [entry for entry in fake.log if entry[0] == kind]


# -- statements -------------------------------------------------------------------------------
def test_all_statements_cover_every_label_and_relationship() -> None:
    names = [s.name for s in all_statements()]
    assert len(names) == len(set(names))
    for label in NODE_TYPES:
        for op in ("constraint", "upsert_nodes", "missing_keys", "node_ids", "write_properties"):
            assert f"{op}:{label}" in names
    for rel in REL_TYPES:
        assert f"upsert_edges:{rel}" in names and f"export_edges:{rel}" in names
    for op in (
        "gds_version",
        "gds_project:FRIEND",
        "gds_mutate:pagerank",
        "gds_write",
        "gds_drop",
        "gds_personalized_pagerank",
        "gds_read",
        "gds_read:ppr",
        "index:User.community",
        "index:User.signup_date",
        "read_meta",
    ):
        assert op in names


def test_every_statement_declares_exactly_the_parameters_it_uses() -> None:
    for name, cypher, params in all_statements():
        used = set(re.findall(r"\$([A-Za-z_]\w*)", cypher))
        assert used == set(params), name


def test_loads_merge_in_batches_with_two_matches_and_no_values_in_text() -> None:
    nodes, edges = cypher_upsert_nodes(USER), cypher_upsert_edges(FRIEND)
    assert nodes.startswith("UNWIND $rows AS row") and "MERGE (n:User {user_id: row.key})" in nodes
    assert "CREATE" not in nodes and "CREATE" not in edges  # MERGE only: safe to re-run
    assert "MATCH (a:User {user_id: row.src})\nMATCH (b:User {user_id: row.dst})" in edges
    assert "), (" not in edges  # never a comma (cartesian) pattern
    assert (
        "CREATE CONSTRAINT user_user_id_unique IF NOT EXISTS FOR (n:User) REQUIRE "
        "n.user_id IS UNIQUE" == cypher_constraint(USER)
    )


def test_identifiers_are_validated_before_reaching_query_text() -> None:
    for bad in ("User) DETACH DELETE (n", "a b", "1x", "", "n`"):
        with pytest.raises(QueryError):
            ident(bad)
    with pytest.raises(QueryError, match="unknown node label"):
        cypher_upsert_nodes(node_type("Person"))
    with pytest.raises(QueryError, match="User-User"):
        cypher_gds_project("PAYS")


def test_only_listed_statements_are_sent_and_values_stay_parameters() -> None:
    store, fake = fake_store()
    store.ensure_schema()
    store.upsert_nodes("User", pd.DataFrame({"user_id": [HOSTILE, "u2"], "city": [HOSTILE, "x"]}))
    store.upsert_edges("FRIEND", pd.DataFrame({"src": [HOSTILE], "dst": ["u2"]}))
    store.write_properties("User", pd.DataFrame({"score": [700.0]}, index=[HOSTILE]))
    store.export_edges("FRIEND")
    known = {s.cypher for s in all_statements()}
    sent = [(call.cypher, call.params) for call in fake.calls]
    assert sent and all(cypher in known for cypher, _ in sent)
    assert all(HOSTILE not in cypher for cypher, _ in sent)
    assert any(HOSTILE in repr(params) for _, params in sent)
    assert fake.server.nodes["User"][HOSTILE]["city"] == HOSTILE  # stored as a value


def test_ensure_schema_adds_indexes_for_what_investigations_look_up() -> None:
    store, fake = fake_store()
    store.ensure_schema()
    assert "CREATE INDEX user_community IF NOT EXISTS FOR (n:User) ON (n.community)" in (
        fake.server.schema
    )
    assert "CREATE INDEX user_signup_date IF NOT EXISTS FOR (n:User) ON (n.signup_date)" in (
        fake.server.schema
    )
    assert len(fake.server.schema) == len(NODE_TYPES) + 2  # one constraint a label + 2 indexes
    # schema changes cannot share a transaction: one write transaction each
    assert [c.via for c in fake.calls] == ["execute_write"] * len(fake.server.schema)


# -- batching and work functions --------------------------------------------------------------
def test_upsert_nodes_sends_batches_to_execute_write() -> None:
    store, fake = fake_store(batch_size=2)
    frame = pd.DataFrame({"user_id": [f"u{i}" for i in range(5)], "age": [30, 31, 32, 33, 34]})
    assert store.upsert_nodes("User", frame) == 5
    writes = calls(fake, "execute_write")
    assert [work for _, work, _, _ in writes] == [_run_single] * 3
    assert [len(args[1]["rows"]) for _, _, args, _ in writes] == [2, 2, 1]
    assert all(args[0] == cypher_upsert_nodes(USER) for _, _, args, _ in writes)
    assert writes[0][2][1]["rows"][0] == {"key": "u0", "props": {"age": 30}}
    report = store.reports[-1]
    assert (report.kind, report.name, report.rows, report.changed, report.batches) == (
        "nodes",
        "User",
        5,
        5,
        3,
    )
    assert store.upsert_nodes("User", frame.assign(age=[30, 31, 32, 33, 99])) == 1  # one changed


def test_batch_size_defaults_to_ten_thousand_and_is_validated() -> None:
    assert Neo4jStore("bolt://x", driver=FakeDriver()).batch_size == 10_000
    with pytest.raises(ValueError, match="batch_size"):
        Neo4jStore("bolt://x", driver=FakeDriver(), batch_size=0)


def test_duplicate_keys_last_wins_and_unknown_columns_are_dropped() -> None:
    store, fake = fake_store(batch_size=10)
    frame = pd.DataFrame({"user_id": ["u1", "u1"], "age": [30, 31], "secret_name": ["a", "b"]})
    store.upsert_nodes("User", frame)
    ((_, _, args, _),) = calls(fake, "execute_write")
    assert args[1]["rows"] == [{"key": "u1", "props": {"age": 31}}]


def test_upsert_edges_checks_endpoints_in_a_read_then_writes_batches() -> None:
    store, fake = fake_store(batch_size=2)
    store.upsert_nodes("User", pd.DataFrame({"user_id": ["u1", "u2", "u3"]}))
    fake.log.clear()
    frame = pd.DataFrame(
        {"src": ["u1", "u2", "u3"], "dst": ["u2", "u3", "u1"], "src_interactions": [1, 2, 3]}
    )
    assert store.upsert_edges("FRIEND", frame) == 3
    reads, writes = calls(fake, "execute_read"), calls(fake, "execute_write")
    assert reads and all(
        work is _run_single and mode == neo4j.READ_ACCESS for _, work, _, mode in reads
    )
    assert [work for _, work, _, _ in writes] == [_merge_edges] * 2
    assert fake.log.index(reads[-1]) < fake.log.index(writes[0])
    assert fake.server.rels["FRIEND"][("u2", "u3")] == {"src_interactions": 2}


def test_unknown_endpoints_write_nothing() -> None:
    store, fake = fake_store()
    store.upsert_nodes("User", pd.DataFrame({"user_id": ["u1"]}))
    with pytest.raises(QueryError, match="1 unknown User nodes.*nobody"):
        store.upsert_edges("FRIEND", pd.DataFrame({"src": ["u1"], "dst": ["nobody"]}))
    assert not fake.named("upsert_edges") and fake.server.rels["FRIEND"] == {}


def test_work_functions_count_once_when_the_driver_retries() -> None:
    # The first attempt of every batch fails with a transient error and is retried.
    store, fake = fake_store(batch_size=2, fail_first=[False, True, False, True])
    frame = pd.DataFrame({"user_id": ["u1", "u2", "u3"]})
    assert store.upsert_nodes("User", frame) == 3  # not 5: nothing counted on failed tries
    assert len(calls(fake, "retry")) == 2
    assert store.reports[-1].changed == 3


def test_work_functions_are_pure() -> None:
    rows = [{"key": "u1", "props": {"age": 1}}]
    params = {"rows": rows}
    before = copy.deepcopy(params)
    results = []
    for _ in range(2):  # the same call on two identical servers: the same answer
        fake = FakeDriver()
        results.append(_run_single(FakeTx(fake, "WRITE", "explicit"),
                                   cypher_upsert_nodes(USER), params))  # fmt: skip
    assert results[0] == results[1] == {"changed": 1} and params == before


def test_atomic_publishes_bookkeeping_with_its_scores_or_nothing() -> None:
    # A bounded block of properties + bookkeeping; loads and published runs never use
    # atomic() on Neo4j (test_neo4j_load, test_neo4j_publish).
    store, fake = fake_store(batch_size=1)
    store.upsert_nodes("User", pd.DataFrame({"user_id": ["u1", "u2"]}))
    fake.log.clear()
    scores = pd.DataFrame({"score": [700.0, 650.0]}, index=pd.Index(["u1", "u2"]))
    with pytest.raises(RuntimeError), store.atomic():
        store.write_properties("User", scores)
        write_meta(store, score_run="R1")
        raise RuntimeError("boom")
    kinds = [entry[0] for entry in fake.log]
    assert kinds[0] == "begin" and kinds[-1] == "rollback" and "commit" not in kinds
    assert "execute_write" not in kinds  # no separate transactions inside the block
    assert "score" not in fake.server.nodes["User"]["u1"] and fake.server.nodes["Meta"] == {}
    fake.log.clear()
    with store.atomic(), store.atomic():  # nested blocks join the outer one
        write_meta(store, score_run="R2")
    assert [entry[0] for entry in fake.log] == ["begin", "run", "commit"]


def test_merge_edges_rolls_back_a_batch_that_lost_an_endpoint() -> None:
    fake = FakeDriver()
    fake.server.nodes["User"] = {"a": {"user_id": "a"}, "b": {"user_id": "b"}}
    rows = [{"src": "a", "dst": "b", "props": {}}, {"src": "a", "dst": "gone", "props": {}}]
    with pytest.raises(QueryError, match="rolled back"):
        fake.session().execute_write(_merge_edges, cypher_upsert_edges(FRIEND), rows)
    assert fake.server.rels["FRIEND"] == {}  # the batch's first edge went with it


def test_write_properties_batches_and_refuses_odd_property_names() -> None:
    store, fake = fake_store(batch_size=2)
    store.upsert_nodes("User", pd.DataFrame({"user_id": ["u1", "u2"]}))
    fake.log.clear()
    scores = pd.DataFrame(
        {"score": [700.0, 650.5, 500.0], "model_id": ["m", "m", "m"]},
        index=pd.Index(["u1", "u2", "u3"], name="user_id"),
    )
    assert store.write_properties("User", scores) == 2  # u3 does not exist
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
    assert fake.log == [] and fake.sessions == []
    cypher = "MATCH (n:User) WHERE n.age > $age RETURN n.user_id AS id"
    fake.server.adhoc[cypher] = [{"id": "u1"}]
    assert store.query(cypher, {"age": 3})["id"].tolist() == ["u1"]
    assert fake.sessions == [neo4j.READ_ACCESS] and fake.calls[-1].via == "execute_read"


def test_every_read_runs_in_a_read_session_and_a_read_transaction() -> None:
    store, fake = fake_store()
    store.ensure_schema()
    store.upsert_nodes("User", pd.DataFrame({"user_id": ["u1", "u2"]}))
    store.upsert_edges("FRIEND", pd.DataFrame({"src": ["u1"], "dst": ["u2"]}))
    store.node_ids("User")
    store.export_edges("FRIEND", ("since",))
    reads = [c for c in fake.calls if c.name.startswith(READS)]
    assert {c.name.split(":")[0] for c in reads} == {"missing_keys", "node_ids", "export_edges"}
    assert all(c.mode == neo4j.READ_ACCESS and c.via == "execute_read" for c in reads)
    writes = [c for c in fake.calls if c not in reads]
    assert writes and all(c.mode == neo4j.WRITE_ACCESS for c in writes)
    read_sessions = [e for e in calls(fake, "execute_read")]
    assert all(mode == neo4j.READ_ACCESS for *_, mode in read_sessions)


def _friend_world(store: GraphStore) -> None:
    store.ensure_schema()
    store.upsert_nodes("User", pd.DataFrame({"user_id": ["u3", "u1", "u4", "u2", "u5"]}))
    store.upsert_edges("FRIEND", pd.DataFrame({
        "src": ["u3", "u1", "u2", "u2", "u4"], "dst": ["u1", "u2", "u1", "u3", "u5"],
        "since": pd.to_datetime(["2021-01-01", "2022-02-02", None, "2020-05-05", "2019-01-01"]),
        "src_interactions": [3, None, 5, 1, 0],
    }))  # fmt: skip


def test_export_reads_keys_and_edges_in_one_read_transaction_in_chunks() -> None:
    store, fake = fake_store()
    _friend_world(store)
    fake.log.clear()
    store.fetch_rows = 2
    before = len(fake.calls)
    store.export_edges("FRIEND", ("since",))
    transactions = calls(fake, "execute_read")
    assert len(transactions) == 1  # keys and edges seen at one point in time
    names = [c.name for c in fake.calls[before:]]
    assert names == ["node_ids:User", "export_edges:FRIEND"]
    edges = fake.server.results[-1]
    assert edges.fetch_sizes and set(edges.fetch_sizes) == {2}  # chunks, never one big list


def test_export_matches_the_embedded_store_array_for_array() -> None:
    store, _ = fake_store()
    store.fetch_rows = 2  # several chunks, one concatenation
    embedded = EmbeddedStore(None)
    for each in (store, embedded):
        _friend_world(each)
    props = ("since", "src_interactions")
    got, want = store.export_edges("FRIEND", props), embedded.export_edges("FRIEND", props)
    embedded.close()
    assert got.source_ids.equals(want.source_ids) and got.source_ids.name == "user_id"
    np.testing.assert_array_equal(got.src, want.src)
    np.testing.assert_array_equal(got.dst, want.dst)
    assert got.src.dtype == got.dst.dtype == np.int64
    for p in props:
        assert got.properties[p].dtype == want.properties[p].dtype, p
        np.testing.assert_array_equal(got.properties[p], want.properties[p])


def test_export_refuses_an_edge_whose_end_is_not_in_the_key_list() -> None:
    store, fake = fake_store()
    _friend_world(store)
    fake.server.nodes["User"][None] = {"age": 40}  # a User without a key (loaded by hand)
    fake.server.rels["FRIEND"][("u1", None)] = {}
    with pytest.raises(QueryError, match="end node whose User key is not among"):
        store.export_edges("FRIEND")  # never position -1, i.e. the last user


def test_export_survives_a_retry_without_duplicating_chunks() -> None:
    store, fake = fake_store()
    _friend_world(store)
    store.fetch_rows = 2
    clean = store.export_edges("FRIEND")
    fake.fail_first = [False, True]  # the edge statement fails once; the driver retries
    again = store.export_edges("FRIEND")
    assert calls(fake, "retry")
    np.testing.assert_array_equal(again.src, clean.src)
    np.testing.assert_array_equal(again.dst, clean.dst)


def test_node_ids_in_key_order_from_a_read_transaction() -> None:
    store, fake = fake_store()
    _friend_world(store)
    assert store.node_ids("User").tolist() == ["u1", "u2", "u3", "u4", "u5"]
    assert fake.calls[-1].via == "execute_read" and fake.calls[-1].mode == neo4j.READ_ACCESS


def test_store_satisfies_the_protocol() -> None:
    store, _ = fake_store()
    assert isinstance(store, GraphStore) and store.dialect == "neo4j"


# -- values -----------------------------------------------------------------------------------
def test_values_become_driver_types_and_missing_becomes_none() -> None:
    frame = pd.DataFrame({
        "d": ["2024-01-31", None], "t": pd.to_datetime(["2024-01-31 12:00", None], utc=True),
        "i": [np.int64(3), None], "f": [0.5, np.nan], "b": [True, None], "s": ["x", None],
    })  # fmt: skip
    assert python_values(frame["d"], DATE) == [dt.date(2024, 1, 31), None]
    assert python_values(frame["t"], TIMESTAMP) == [dt.datetime(2024, 1, 31, 12), None]
    assert python_values(frame["i"], INT) == [3, None]
    assert type(python_values(frame["i"], INT)[0]) is int
    assert python_values(frame["f"], FLOAT) == [0.5, None]
    assert python_values(frame["b"], BOOL) == [True, None]
    assert python_values(pd.Series(["false", "TRUE"]), BOOL) == [False, True]
    assert python_values(frame["s"], STRING) == ["x", None]


def test_column_arrays_match_the_embedded_types() -> None:
    dates = column_array([dt.date(2024, 1, 1), None], DATE)
    assert dates.dtype == np.dtype("datetime64[D]") and np.isnat(dates[1])
    assert column_array([1, 2], INT).dtype == np.int64
    assert np.isnan(column_array([1, None], INT)[1])


# -- connection and credentials ---------------------------------------------------------------
def test_from_env_needs_uri_and_password() -> None:
    with pytest.raises(StoreUnavailable, match="NEO4J_URI"):
        Neo4jStore.from_env(environ={"NEO4J_PASSWORD": "x"})
    with pytest.raises(StoreUnavailable, match="NEO4J_PASSWORD"):
        Neo4jStore.from_env(environ={"NEO4J_URI": "bolt://localhost:7687"})


def test_unreachable_server_is_store_unavailable_without_leaking_the_password() -> None:
    env = {
        "NEO4J_URI": "bolt://127.0.0.1:1",
        "NEO4J_USER": "neo4j",
        "NEO4J_PASSWORD": "s3cret-pw-123",
    }
    with pytest.raises(StoreUnavailable) as info:
        Neo4jStore.from_env(environ=env, max_retry_time_s=0.1)
    assert "s3cret-pw-123" not in str(info.value) and "127.0.0.1:1" in str(info.value)
    assert info.value.__cause__ is None  # the driver's error (with its config) is not chained


def test_messages_never_show_uri_credentials() -> None:
    store = Neo4jStore("bolt://neo4j:hunter22@db:7687", driver=FakeDriver())
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
    wide = pd.DataFrame({  # what MATCH (u:User) RETURN u.user_id, u.gds_... reads back
        "user_id": list(reversed(ids)), "pagerank": raw_pagerank[::-1],
        "component": [6, 4, 4, 0, 0, 0, 0], "kcore": expected["coreness"].astype(int)[::-1],
        "clustering": clustering[::-1], "community": [2, 1, 1, 1, 0, 0, 0],
        "degree": degree[::-1].astype(float),
    })  # fmt: skip
    got = features_frame(wide)
    assert list(got.columns) == list(GDS_FEATURE_COLUMNS)
    pd.testing.assert_frame_equal(got[expected.columns], expected, check_exact=False, rtol=1e-6)
