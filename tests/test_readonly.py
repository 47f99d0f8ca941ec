"""The read-only guard refuses writes before they run and lets reads through."""

from __future__ import annotations

import pytest

from creditgraph.errors import ReadOnlyViolation
from graph.readonly import check_read_only


@pytest.mark.parametrize(
    "cypher",
    [
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
    ],
)
def test_writes_are_refused(cypher):
    with pytest.raises(ReadOnlyViolation):
        check_read_only(cypher)


@pytest.mark.parametrize(
    "cypher",
    [
        "MATCH (u:User) WHERE u.city = 'SET DELETE' RETURN u.user_id",
        "MATCH (u:User) // we never DELETE here\nRETURN u.user_id",
        "MATCH (u:User {user_id: $id}) RETURN u.score AS score;",
        "MATCH (u:User)-[:FRIEND]-(f) RETURN u.user_id, count(f) AS friends",
        "CALL show_tables() RETURN *",
    ],
)
def test_reads_pass(cypher):
    check_read_only(cypher)


def test_injection_through_parameters_changes_nothing(memory_store):
    import pandas as pd

    memory_store.upsert_nodes("User", pd.DataFrame({"user_id": ["a"], "age": [30]}))
    evil = "a'}) DETACH DELETE u //"
    rows = memory_store.query("MATCH (u:User {user_id: $id}) RETURN u.user_id AS id", {"id": evil})
    assert rows.empty
    assert memory_store.node_ids("User").tolist() == ["a"]
