"""One contract, every reachable store: what the rest of creditgraph relies on.

The embedded store (in memory) always runs. Neo4j runs when ``NEO4J_URI`` is
set (with ``NEO4J_PASSWORD``, optionally ``NEO4J_USER``/``NEO4J_DATABASE``);
otherwise its cases are skipped with the reason, never passed silently. The
Neo4j cases empty the database first and refuse to when it holds more than a
test's worth of nodes, so pointing them at real data cannot wipe it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pandas as pd
import pytest

from creditgraph.errors import QueryError, ReadOnlyViolation
from creditgraph.graph.store import GraphStore

NEO4J_SKIP_REASON = (
    "Neo4j contract tests did not run: NEO4J_URI is not set "
    "(docker compose up -d neo4j, then export NEO4J_URI/NEO4J_PASSWORD from .env)"
)
MAX_NODES_TO_WIPE = 1_000

STORES = [
    pytest.param("embedded", id="embedded"),
    pytest.param(
        "neo4j",
        id="neo4j",
        marks=[
            pytest.mark.neo4j,
            pytest.mark.skipif(not os.environ.get("NEO4J_URI"), reason=NEO4J_SKIP_REASON),
        ],
    ),
]


def _open_neo4j() -> GraphStore:
    from creditgraph.graph.neo4j.store import Neo4jStore

    store = Neo4jStore.from_env(batch_size=2, progress=False)  # tiny batches: several per load
    with store._new_session() as session:
        nodes = session.run("MATCH (n) RETURN count(n) AS n").single()["n"]
        if nodes > MAX_NODES_TO_WIPE:
            store.close()
            pytest.skip(
                f"refusing to empty a Neo4j database with {nodes} nodes; "
                "point NEO4J_URI at a test server"
            )
        session.run("MATCH (n) DETACH DELETE n").consume()
    return store


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> Iterator[GraphStore]:
    if request.param == "embedded":
        from creditgraph.graph.embedded import EmbeddedStore

        opened: GraphStore = EmbeddedStore(None)
    else:
        opened = _open_neo4j()
    opened.ensure_schema()
    yield opened
    opened.close()


def users(*ids: str, **columns: list) -> pd.DataFrame:
    frame = pd.DataFrame({"user_id": list(ids)})
    for name, values in columns.items():
        frame[name] = values
    return frame


def world(store: GraphStore) -> None:
    """u1-u2-u3 in a chain, u4 isolated; one merchant."""
    store.upsert_nodes(
        "User",
        users("u1", "u2", "u3", "u4", age=[30, 41, 25, 52], city=["A", "B", "A", "C"]),
    )
    store.upsert_nodes("Merchant", pd.DataFrame({"merchant_id": ["m1"], "category": ["food"]}))
    store.upsert_edges(
        "FRIEND",
        pd.DataFrame(
            {
                "src": ["u1", "u2"],
                "dst": ["u2", "u3"],
                "since": pd.to_datetime(["2023-01-05", "2024-03-01"]),
                "src_interactions": [5, 7],
                "dst_interactions": [1, 0],
            }
        ),
    )


def test_ensure_schema_is_idempotent(store: GraphStore) -> None:
    store.ensure_schema()
    store.ensure_schema()
    assert store.upsert_nodes("User", users("u1")) == 1


def test_upsert_nodes_counts_inserts_then_nothing_then_changes(store: GraphStore) -> None:
    frame = users("u1", "u2", "u3", age=[30, 41, 25], city=["A", "B", "A"])
    assert store.upsert_nodes("User", frame) == 3
    assert store.upsert_nodes("User", frame) == 0
    changed = frame.copy()
    changed.loc[1, "city"] = "Z"
    assert store.upsert_nodes("User", changed) == 1
    assert store.upsert_nodes("User", users("u4")) == 1
    assert sorted(store.node_ids("User")) == ["u1", "u2", "u3", "u4"]
    got = store.query("MATCH (n:User) WHERE n.user_id = $id RETURN n.city AS city", {"id": "u2"})
    assert got["city"].tolist() == ["Z"]


def test_upsert_edges_is_idempotent(store: GraphStore) -> None:
    world(store)
    friends = pd.DataFrame({"src": ["u1", "u2"], "dst": ["u2", "u3"], "src_interactions": [5, 7]})
    assert store.upsert_edges("FRIEND", friends) == 0  # same values as world()
    friends.loc[0, "src_interactions"] = 6
    assert store.upsert_edges("FRIEND", friends) == 1
    assert store.upsert_edges("FRIEND", pd.DataFrame({"src": ["u3"], "dst": ["u4"]})) == 1
    assert len(store.export_edges("FRIEND")) == 3


def test_upsert_edges_rejects_unknown_endpoints(store: GraphStore) -> None:
    world(store)
    with pytest.raises(QueryError, match="unknown"):
        store.upsert_edges("FRIEND", pd.DataFrame({"src": ["u1"], "dst": ["nobody"]}))
    assert len(store.export_edges("FRIEND")) == 2  # nothing was written


def test_bulk_load_removes_the_named_relationships_first(store: GraphStore) -> None:
    world(store)
    gone = pd.DataFrame({"src": ["u1", "u3", "u4"], "dst": ["u2", "u2", "u1"]})  # 1 stored
    again = pd.DataFrame({"src": ["u2"], "dst": ["u3"], "since": pd.to_datetime(["2024-03-01"])})
    written = store.bulk_load({}, {"FRIEND": again}, load_id="L2", removed={"FRIEND": gone})
    assert written.removed == {"FRIEND": 1}
    edges = store.export_edges("FRIEND")
    pairs = zip(edges.source_ids[edges.src], edges.target_ids[edges.dst], strict=True)
    assert list(pairs) == [("u2", "u3")]
    repeated = store.bulk_load({}, {}, load_id="L3", removed={"FRIEND": gone})
    assert repeated.removed == {"FRIEND": 0}


def test_node_ids_and_export_edges_align_with_isolated_nodes(store: GraphStore) -> None:
    world(store)
    ids = store.node_ids("User")
    assert sorted(ids) == ["u1", "u2", "u3", "u4"]  # the isolated u4 keeps a position
    edges = store.export_edges("FRIEND")
    assert list(edges.source_ids) == list(ids) and list(edges.target_ids) == list(ids)
    pairs = {
        (edges.source_ids[s], edges.target_ids[d])
        for s, d in zip(edges.src, edges.dst, strict=True)
    }
    assert pairs == {("u1", "u2"), ("u2", "u3")}
    pays = store.export_edges("PAYS")
    assert len(pays) == 0 and list(pays.target_ids) == ["m1"]


def test_export_edges_returns_properties(store: GraphStore) -> None:
    world(store)
    edges = store.export_edges("FRIEND", ("src_interactions", "since"))
    by_pair = {
        (edges.source_ids[s], edges.target_ids[d]): (int(n), pd.Timestamp(t))
        for s, d, n, t in zip(
            edges.src,
            edges.dst,
            edges.properties["src_interactions"],
            edges.properties["since"],
            strict=True,
        )
    }
    assert by_pair == {
        ("u1", "u2"): (5, pd.Timestamp("2023-01-05")),
        ("u2", "u3"): (7, pd.Timestamp("2024-03-01")),
    }


def test_write_properties_adds_new_columns(store: GraphStore) -> None:
    world(store)
    scores = pd.DataFrame(
        {"score": [712.5, 540.0], "model_id": ["m-1", "m-1"], "risk_band": [2, 5]},
        index=pd.Index(["u1", "u3"], name="user_id"),
    )
    store.write_properties("User", scores)
    got = store.query(
        "MATCH (n:User) RETURN n.user_id AS id, n.score AS score, n.model_id AS model, "
        "n.risk_band AS band ORDER BY id"
    )
    assert got["id"].tolist() == ["u1", "u2", "u3", "u4"]
    assert got.loc[[0, 2], "score"].tolist() == [712.5, 540.0]
    assert got.loc[[0, 2], "band"].tolist() == [2, 5]
    assert got.loc[0, "model"] == "m-1" and pd.isna(got.loc[1, "score"])


def test_query_is_read_only_and_takes_parameters(store: GraphStore) -> None:
    world(store)
    got = store.query(
        "MATCH (n:User) WHERE n.age >= $min_age RETURN n.user_id AS id ORDER BY id",
        {"min_age": 40},
    )
    assert got["id"].tolist() == ["u2", "u4"]
    for write in (
        "CREATE (n:User {user_id: 'x'})",
        "MATCH (n:User) SET n.age = 1",
        "MATCH (n:User) DETACH DELETE n",
        "MERGE (n:User {user_id: $id}) RETURN n",
    ):
        with pytest.raises(ReadOnlyViolation):
            store.query(write, {"id": "x"})
    assert sorted(store.node_ids("User")) == ["u1", "u2", "u3", "u4"]


def test_atomic_rolls_back_on_error(store: GraphStore) -> None:
    world(store)
    with pytest.raises(RuntimeError, match="boom"), store.atomic():
        store.upsert_nodes("User", users("u5", "u6"))
        store.upsert_edges("FRIEND", pd.DataFrame({"src": ["u5"], "dst": ["u6"]}))
        raise RuntimeError("boom")
    assert sorted(store.node_ids("User")) == ["u1", "u2", "u3", "u4"]
    assert len(store.export_edges("FRIEND")) == 2
    with store.atomic():  # and a block that succeeds lands
        store.upsert_nodes("User", users("u5"))
    assert "u5" in set(store.node_ids("User"))
