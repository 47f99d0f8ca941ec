"""In-database features (GDS): the calls ``gds_features`` makes, and the igraph comparison.

Without a server, :class:`test_neo4j_fake.FakeDriver` records every call, checks
every ``gds.*`` name against GDS 2.13's published list and every configuration
against the Community Edition's 4-thread limit, and computes the algorithms
with networkx on the projection the statement describes. With ``NEO4J_URI``
set (a Neo4j 5.26 with GDS 2.13), the last test compares GDS with igraph on a
real server.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import neo4j
import numpy as np
import pandas as pd
import pytest
from test_neo4j_fake import GDS_NAME, FakeDriver, fake_store, gds_names

from creditgraph.errors import QueryError, StoreUnavailable
from creditgraph.graph.neo4j.gds import gds_features, has_gds
from creditgraph.graph.neo4j.statements import GDS_MAX_CONCURRENCY, cypher_gds_personalized_pagerank
from creditgraph.graph.neo4j.store import Neo4jStore
from creditgraph.graph.network import FriendGraph
from creditgraph.scoring.features.position import position_features

# Two triangles joined by a bridge, a tail, a reversed duplicate, a pair and an isolate.
IDS = [f"u{i}" for i in range(10)]
PAIRS = [(0, 1), (1, 2), (2, 0), (2, 3), (3, 4), (4, 5), (5, 3), (5, 6), (1, 0), (7, 8)]


def load(store: Neo4jStore) -> None:
    store.upsert_nodes("User", pd.DataFrame({"user_id": IDS}))
    store.upsert_edges(
        "FRIEND",
        pd.DataFrame({"src": [IDS[a] for a, _ in PAIRS], "dst": [IDS[b] for _, b in PAIRS]}),
    )


@pytest.fixture
def fake() -> Iterator[tuple[Neo4jStore, FakeDriver]]:
    store, driver = fake_store(batch_size=100)
    store.ensure_schema()
    load(store)
    driver.log.clear()
    driver.server.calls.clear()
    driver.sessions.clear()
    yield store, driver


# -- without a server -------------------------------------------------------------------------
def test_gds_features_send_only_gds_213_procedures_in_order(fake) -> None:
    store, driver = fake
    gds_features(store)
    names = [c.name for c in driver.calls]
    assert names == [
        "gds_version", "gds_project:FRIEND",
        "gds_mutate:pagerank", "gds_mutate:component", "gds_mutate:kcore",
        "gds_mutate:clustering", "gds_mutate:degree", "gds_mutate:leiden",
        "gds_write", "gds_drop", "gds_read",
    ]  # fmt: skip
    listed = gds_names()
    sent = {name for call in driver.calls for name in GDS_NAME.findall(call.cypher)}
    assert sent and sent <= listed, sent - listed
    assert driver.server.catalog == {}  # the projection is gone


def test_projection_is_native_undirected_and_single(fake) -> None:
    store, driver = fake
    gds_features(store)
    (project,) = driver.named("gds_project")
    assert (
        "gds.graph.project($graph, 'User', {FRIEND: {orientation: 'UNDIRECTED', "
        "aggregation: 'SINGLE'}}" in project.cypher
    )
    assert "DISTINCT" not in project.cypher and "MATCH" not in project.cypher  # not Cypher
    assert project.via == "auto-commit"  # GDS manages its own transactions; never retried


def test_results_are_read_back_in_one_match_in_a_read_transaction(fake) -> None:
    store, driver = fake
    gds_features(store)
    (read,) = driver.named("gds_read")
    assert read.cypher.startswith("MATCH (u:User) WHERE u.user_id IS NOT NULL\nRETURN u.user_id")
    assert read.mode == neo4j.READ_ACCESS and read.via == "execute_read"
    assert driver.calls.index(read) > driver.calls.index(driver.named("gds_drop")[0])
    assert not any("asNode" in c.cypher or "nodeProperties.stream" in c.cypher
                   for c in driver.calls)  # fmt: skip
    (version,) = driver.named("gds_version")
    assert version.mode == neo4j.READ_ACCESS


def test_concurrency_one_only_for_community_detection(fake) -> None:
    store, driver = fake
    gds_features(store, seed=7)
    configs = {c.name.split(":")[1]: c.params["config"] for c in driver.named("gds_mutate")}
    assert configs["leiden"] == {"concurrency": 1, "mutateProperty": "community", "randomSeed": 7}
    for algo in ("pagerank", "component", "kcore", "clustering", "degree"):
        assert configs[algo]["concurrency"] == GDS_MAX_CONCURRENCY == 4, algo
    assert driver.named("gds_project")[0].params["concurrency"] == 4
    assert driver.named("gds_write")[0].params["concurrency"] == 4
    with pytest.raises(QueryError, match="concurrency must be 1 to 4"):
        gds_features(store, concurrency=8)


def test_louvain_is_single_threaded_too(fake) -> None:
    store, driver = fake
    gds_features(store, community="louvain", concurrency=2)
    configs = {c.name.split(":")[1]: c.params["config"] for c in driver.named("gds_mutate")}
    assert configs["louvain"] == {"concurrency": 1, "mutateProperty": "community"}
    assert configs["pagerank"]["concurrency"] == 2


def test_features_match_the_igraph_path_on_the_same_graph(fake) -> None:
    store, driver = fake
    expected = position_features(FriendGraph.from_arrays(store.export_edges("FRIEND")))
    got = gds_features(store).reindex(expected.index)
    np.testing.assert_allclose(got["pagerank_scaled"], expected["pagerank_scaled"], rtol=1e-6)
    for column in ("component_size", "coreness"):
        assert got[column].tolist() == expected[column].tolist(), column
    np.testing.assert_allclose(got["clustering"], expected["clustering"], equal_nan=True)
    assert got.loc["u0", "community"] == got.loc["u1", "community"] == got.loc["u2", "community"]
    written = driver.server.nodes["User"]["u0"]
    assert {"gds_pagerank", "gds_component", "gds_kcore", "gds_clustering", "gds_community",
            "gds_degree"} <= set(written)  # fmt: skip


def test_seeds_add_personalized_pagerank(fake) -> None:
    store, driver = fake
    got = gds_features(store, seeds=["u0", "ghost"], ppr_column="ppr_defaulters")
    (ppr,) = driver.named("gds_personalized_pagerank")
    assert ppr.params["seeds"] == ["ghost", "u0"] and ppr.params["concurrency"] == 4
    assert driver.named("gds_write")[0].params["properties"]["ppr"] == "gds_ppr"
    assert driver.named("gds_read")[0].name == "gds_read:ppr"
    assert got["ppr_defaulters"].idxmax() == "u0"  # the restart node ranks first
    assert got["ppr_defaulters"].sum() == pytest.approx(len(IDS))


def test_empty_seed_set_is_refused_not_ordinary_pagerank(fake) -> None:
    store, driver = fake
    with pytest.raises(QueryError, match="empty seed list"):
        gds_features(store, seeds=[])
    assert not driver.named("gds_project")  # refused before anything was projected
    with pytest.raises(QueryError, match="none of the 2 seed users exists"):
        gds_features(store, seeds=["ghost", "nobody"])
    assert driver.named("gds_drop") and driver.server.catalog == {}  # dropped on the error
    assert not driver.named("gds_write")  # nothing written
    assert "WHERE size(sources) > 0" in cypher_gds_personalized_pagerank()


def test_projection_is_dropped_when_an_algorithm_fails(fake) -> None:
    store, driver = fake
    driver.server.fail_on = "gds_mutate:kcore"
    with pytest.raises(QueryError, match="kcore failed"):
        gds_features(store)
    assert driver.named("gds_drop") and driver.server.catalog == {}
    assert not driver.named("gds_write")


def test_one_native_relationship_type_and_no_gds_is_unavailable(fake) -> None:
    store, driver = fake
    with pytest.raises(QueryError, match="one relationship type natively"):
        gds_features(store, ("FRIEND", "TRANSFER"))
    assert gds_features(store, ("FRIEND",)).shape[0] == len(IDS)  # a one-type sequence is fine
    driver.server.gds_version = None
    with pytest.raises(StoreUnavailable, match="Graph Data Science"):
        gds_features(store)


# -- with a Neo4j 5.26 + GDS 2.13 server ------------------------------------------------------
@pytest.fixture
def server() -> Iterator[Neo4jStore]:
    opened = Neo4jStore.from_env(progress=False)
    with opened._new_session() as session:  # as in test_store_contract: never wipe real data
        nodes = session.run("MATCH (n) RETURN count(n) AS n").single()["n"]
        if nodes > 1_000:
            opened.close()
            pytest.skip(f"refusing to empty a Neo4j database with {nodes} nodes")
        session.run("MATCH (n) DETACH DELETE n").consume()
    if not has_gds(opened):
        opened.close()
        pytest.skip("the Neo4j server has no Graph Data Science plugin")
    opened.ensure_schema()
    yield opened
    opened.close()


@pytest.mark.neo4j
@pytest.mark.skipif(
    not os.environ.get("NEO4J_URI"),
    reason="Neo4j GDS comparison did not run: NEO4J_URI is not set "
    "(docker compose up -d neo4j, then export NEO4J_URI/NEO4J_PASSWORD from .env)",
)
def test_gds_features_match_igraph(server: Neo4jStore) -> None:
    load(server)
    expected = position_features(FriendGraph.from_arrays(server.export_edges("FRIEND")))
    got = gds_features(server, "FRIEND", seeds=["u0"]).reindex(expected.index)
    np.testing.assert_allclose(got["pagerank_scaled"], expected["pagerank_scaled"], rtol=1e-4)
    for column in ("component_size", "coreness"):
        assert got[column].tolist() == expected[column].tolist(), column
    np.testing.assert_allclose(got["clustering"], expected["clustering"], equal_nan=True)
    # Communities are labels: compare the partition, not the numbers.
    assert got.loc["u0", "community"] == got.loc["u1", "community"] == got.loc["u2", "community"]
    assert got.loc["u0", "community"] != got.loc["u7", "community"]
    assert got["default_ppr"].idxmax() == "u0"
    written = server.query("MATCH (n:User) WHERE n.gds_pagerank IS NOT NULL RETURN count(n) AS n")
    assert written["n"].iloc[0] == len(IDS)
    kcore = server.query("MATCH (n:User {user_id: 'u0'}) RETURN n.gds_kcore AS k")
    assert kcore["k"].iloc[0] == expected.loc["u0", "coreness"]
    with pytest.raises(QueryError, match="none of the 1 seed users"):
        gds_features(server, "FRIEND", seeds=["ghost"])
    with server._new_session(read=True) as session:
        left = session.run("CALL gds.graph.list() YIELD graphName RETURN count(*) AS n").single()
    assert left["n"] == 0  # every projection dropped, also after the error
