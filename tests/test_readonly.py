"""The read-only guard: an allow-list of read clauses, checked before anything runs.

Every statement the project reads with (the query library in both dialects,
the README's examples, the stores' and views' own reads) must pass; every
statement that writes or administers (including ones a deny-list of write
keywords let through: ``COMMENT ON``, ``ANALYZE``, ``UNINSTALL``, ``SHOW``,
GDS/APOC function calls) must be refused. The embedded store opened read-only
refuses writes in the engine too.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from creditgraph import queries
from creditgraph.errors import QueryError, ReadOnlyViolation, StoreUnavailable
from creditgraph.graph import views
from creditgraph.graph.embedded import EmbeddedStore
from creditgraph.graph.readonly import check_read_only, with_limit

README = Path(__file__).resolve().parents[1] / "README.md"

WRITES = [
    "MATCH (m:Meta) // a comment\rCREATE (:Meta {name: 'x'}) RETURN m.name AS name",  # \r ends it
    "MATCH (u:User) SET u.score = 1",
    "MATCH (u:User) DETACH DELETE u",
    "CREATE (:User {user_id: 'x'})",
    "MERGE (u:User {user_id: 'x'})",
    "MATCH (u) REMOVE u.score",
    "COPY User FROM 'x.csv'",
    "DROP TABLE User",
    "ALTER TABLE User ADD x INT64",
    "MATCH (u:User) RETURN u; MATCH (v) DELETE v",
    "LOAD FROM 'file.csv' RETURN *",
    "CALL apoc.periodic.iterate('x', 'y', {})",
    "match (u:User) set u.score = 1",
    "MATCH (n) WITH n CALL { WITH n DELETE n } RETURN 1",
]
# Passed the old deny-list (issue 14 item 15, issue 15 item 5): not one of them is a read.
NOT_READS = [
    "COMMENT ON TABLE User IS 'pwned'",
    "ANALYZE",
    "UNINSTALL json",
    "SHOW TRANSACTIONS",
    "SHOW SETTINGS YIELD name, value RETURN name, value",
    "RETURN gds.graph.project('g', 'User', 'FRIEND') AS g",
    "RETURN apoc.create.uuid() AS id",
    "MATCH (u:User) RETURN GDS.graph.project('g', u, null) AS g",
    "RETURN nextval('user_seq') AS n",
    "EXPLAIN MATCH (n) RETURN n",
    "MATCH (n:User) RETURN n FINISH",
    "MATCH (n) WITH n AS x CLEAR x",
    "MATCH (n:User) RETURN 'a' AS `x` VACUUM",
    "RETURN 1 AS x UNION ALL SHOW TRANSACTIONS YIELD transactionId AS x RETURN x",
]
ADMIN = ["TERMINATE TRANSACTIONS 'neo4j-transaction-42'", "CALL threads=1",
         "EXPORT DATABASE '/tmp/copy'", "USE other MATCH (n) RETURN n"]  # fmt: skip


@pytest.mark.parametrize("cypher", WRITES + NOT_READS + ADMIN)
def test_non_read_statements_are_refused(cypher):
    with pytest.raises(ReadOnlyViolation):
        check_read_only(cypher)


def test_refusals_are_one_line_and_name_the_word():
    for cypher, word in [(NOT_READS[0], "COMMENT"), (NOT_READS[3], "SHOW"),
                         (NOT_READS[5], "gds.graph.project"), (ADMIN[0], "TERMINATE")]:  # fmt: skip
        with pytest.raises(ReadOnlyViolation) as refused:
            check_read_only(cypher)
        assert word in str(refused.value) and "\n" not in str(refused.value)


def _readme_examples() -> list[str]:
    """Every ``creditgraph cypher "…"`` and ``run_cypher(store, "…")`` statement in the README."""
    text = README.read_text(encoding="utf-8")
    found = re.findall(r'creditgraph cypher "((?:[^"\\]|\\.)*)"', text)
    found += re.findall(r'run_cypher\(store, "([^"]*)"', text)
    return [s.replace("\\$", "$") for s in found]


LIBRARY = {
    f"{spec.name}:{dialect}": spec.text(dialect)
    for spec in queries.list()
    for dialect in ("neo4j", "embedded")
}
OWN_READS = {
    "views.cluster": views._CLUSTER,
    "views.nodes": views._NODES,
    "views.edges": views._EDGES,
    "views.detailed_nodes": views._DETAILED_NODES,
    "views.devices": views._DEVICES,
    "views.transfers": views._TRANSFERS,
    "access.scores": "MATCH (u:User {user_id: $id}) RETURN u.score AS score, u.pd AS pd, "
    "u.scored_at AS scored_at, u.model_id AS model_id, u.reasons AS reasons",
    "meta": "MATCH (m:Meta) RETURN m.name AS name, m.value AS value",
    "embedded.table_info": "CALL table_info('User') RETURN name, type",
}
SYNTAX = [
    "MATCH (u:User) WHERE u.city = 'SET DELETE' RETURN u.user_id",
    "MATCH (u:User) // we never DELETE here\nRETURN u.user_id",
    "MATCH (u:User {user_id: $id}) RETURN u.score AS score;",
    "MATCH (u:User)-[:FRIEND]-(f) RETURN u.user_id, count(f) AS friends",
    "CALL show_tables() RETURN *",
    "CALL db.labels() YIELD label RETURN label",
    "MATCH (u:User) WHERE u.user_id STARTS WITH 'u0' OR u.city ENDS WITH 'x' RETURN u.user_id",
    "MATCH (u:User) WITH * RETURN count(*) AS n",
    "MATCH (u:User) RETURN u {.user_id, .score} AS card",
    "MATCH (u:User) WHERE EXISTS { MATCH (u)-[:FRIEND]-(:User) } RETURN u.user_id",
    "MATCH (u:User) RETURN COUNT { (u)-[:FRIEND]-() } AS friends, u.score * 2 AS twice",
    "MATCH (u:User) CALL { WITH u MATCH (u)-[:FRIEND]-(f) RETURN count(f) AS k } RETURN k",
    "MATCH (u:User) RETURN CASE WHEN u.score IS NOT NULL THEN 1 ELSE 0 END AS s "
    "ORDER BY s DESC SKIP 1 LIMIT 2",
    "MATCH (u:User) RETURN CASE u.city WHEN 'x' THEN 1 END AS s",
    "RETURN [x IN range(1, 3) WHERE x > 1 | x * 2] AS xs",
    "MATCH p = (a:User)-[:FRIEND* SHORTEST 1..6]-(b:User) RETURN length(p) AS hops",
    "MATCH p = (a:User)-[:FRIEND* (r, n | WHERE n.age > 30)]-(b:User) RETURN length(p) AS h",
    "MATCH (a:User)-[* TRAIL 1..2]-(b) RETURN b.user_id",
    "UNWIND $ids AS id OPTIONAL MATCH (u:User {user_id: id}) RETURN id, u.score AS score",
    "MATCH (u:User) RETURN u.user_id AS id UNION MATCH (m:Merchant) RETURN m.merchant_id AS id",
    "MATCH (u:User) RETURN u.note AS `delete`",
    "MATCH (u:User) RETURN u.score AS s ORDER BY s DESC NULLS LAST",
]


@pytest.mark.parametrize(
    "cypher",
    [*LIBRARY.values(), *OWN_READS.values(), *_readme_examples(), *SYNTAX],
    ids=[*LIBRARY, *OWN_READS, *[f"readme{i}" for i in range(len(_readme_examples()))],
         *[f"syntax{i}" for i in range(len(SYNTAX))]],
)  # fmt: skip
def test_reads_pass(cypher):
    check_read_only(cypher)


def test_readme_examples_are_found():
    assert len(_readme_examples()) >= 3  # the quickstart, the investigations section, Python


@pytest.mark.parametrize(
    ("cypher", "expected"),
    [
        ("MATCH (u) RETURN u", "MATCH (u) RETURN u LIMIT 5"),
        ("MATCH (u) RETURN u ORDER BY u.x // note",
         "MATCH (u) RETURN u ORDER BY u.x LIMIT 5 // note"),
        ("MATCH (u) RETURN u SKIP 2;", "MATCH (u) RETURN u SKIP 2 LIMIT 5;"),
        ("MATCH (u) WITH u LIMIT 2 RETURN u", "MATCH (u) WITH u LIMIT 2 RETURN u LIMIT 5"),
        ("MATCH (u) RETURN u LIMIT $limit", None),  # limits itself
        ("RETURN 1 AS a UNION ALL RETURN 2 AS a", None),  # LIMIT would bind the last part only
        ("MATCH (u) CALL { WITH u RETURN u AS v LIMIT 1 } RETURN v",
         "MATCH (u) CALL { WITH u RETURN u AS v LIMIT 1 } RETURN v LIMIT 5"),
        ("CALL db.labels() YIELD label", None),  # no RETURN to limit
    ],
)  # fmt: skip
def test_with_limit_appends_only_where_the_first_rows_stay_the_same(cypher, expected):
    assert with_limit(cypher, 5) == (cypher if expected is None else expected)


def test_injection_through_parameters_changes_nothing(memory_store):
    memory_store.upsert_nodes("User", pd.DataFrame({"user_id": ["a"], "age": [30]}))
    evil = "a'}) DETACH DELETE u //"
    rows = memory_store.query("MATCH (u:User {user_id: $id}) RETURN u.user_id AS id", {"id": evil})
    assert rows.empty
    assert memory_store.node_ids("User").tolist() == ["a"]


def _comments(path: Path) -> dict[str, str]:
    with EmbeddedStore(path) as store:
        tables = store.query("CALL show_tables() RETURN name, comment")
    return dict(zip(tables["name"], tables["comment"], strict=True))


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "graph"
    with EmbeddedStore(path) as store:
        store.ensure_schema()
        store.upsert_nodes("User", pd.DataFrame({"user_id": ["a"], "age": [30]}))
    return path


def test_comment_on_table_does_not_persist(store_path, monkeypatch):
    """Through the check, then (check switched off) through a read-only store: no comment."""
    with EmbeddedStore(store_path) as store, pytest.raises(ReadOnlyViolation, match="COMMENT"):
        store.query("COMMENT ON TABLE User IS 'pwned'")
    assert _comments(store_path)["User"] == ""
    monkeypatch.setattr("creditgraph.graph.embedded.check_read_only", lambda cypher: None)
    with EmbeddedStore(store_path, read_only=True) as store:
        with pytest.raises(QueryError, match="read-only"):
            store.query("COMMENT ON TABLE User IS 'pwned'")
        with pytest.raises(QueryError, match="read-only"):
            store.query("CREATE (:User {user_id: 'mallory'})")
        assert store.query("MATCH (u:User) RETURN u.user_id AS id")["id"].tolist() == ["a"]
    assert _comments(store_path)["User"] == ""
    with EmbeddedStore(store_path) as store:
        assert store.node_ids("User").tolist() == ["a"]


def test_read_only_needs_an_existing_store(tmp_path):
    with pytest.raises(StoreUnavailable, match="no embedded store"):
        EmbeddedStore(tmp_path / "missing", read_only=True)
    assert not (tmp_path / "missing").exists()
    with pytest.raises(StoreUnavailable, match="in-memory"):
        EmbeddedStore(None, read_only=True)
