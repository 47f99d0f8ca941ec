"""In-database features (GDS) agree with the igraph path on one graph (needs a server with GDS)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from graph.features.position import position_features
from graph.neo4j_store import Neo4jStore
from graph.network import FriendGraph

pytestmark = [
    pytest.mark.neo4j,
    pytest.mark.skipif(
        not os.environ.get("NEO4J_URI"),
        reason="Neo4j GDS comparison did not run: NEO4J_URI is not set "
        "(docker compose up -d neo4j, then export NEO4J_URI/NEO4J_PASSWORD from .env)",
    ),
]


@pytest.fixture
def store() -> Iterator[Neo4jStore]:
    opened = Neo4jStore.from_env(progress=False)
    with opened._new_session() as session:  # as in test_store_contract: never wipe real data
        nodes = session.run("MATCH (n) RETURN count(n) AS n").single()["n"]
        if nodes > 1_000:
            opened.close()
            pytest.skip(f"refusing to empty a Neo4j database with {nodes} nodes")
        session.run("MATCH (n) DETACH DELETE n").consume()
    if not opened.has_gds():
        opened.close()
        pytest.skip("the Neo4j server has no Graph Data Science plugin")
    opened.ensure_schema()
    yield opened
    opened.close()


def test_gds_features_match_igraph(store: Neo4jStore) -> None:
    # Two triangles joined by a bridge, a tail, a reversed duplicate, a pair and an isolate.
    ids = [f"u{i}" for i in range(10)]
    pairs = [(0, 1), (1, 2), (2, 0), (2, 3), (3, 4), (4, 5), (5, 3), (5, 6), (1, 0), (7, 8)]
    store.upsert_nodes("User", pd.DataFrame({"user_id": ids}))
    store.upsert_edges("FRIEND", pd.DataFrame({"src": [ids[a] for a, _ in pairs],
                                               "dst": [ids[b] for _, b in pairs]}))
    expected = position_features(FriendGraph.from_arrays(store.export_edges("FRIEND")))
    got = store.gds_features(("FRIEND",), write=True).reindex(expected.index)
    np.testing.assert_allclose(got["pagerank_scaled"], expected["pagerank_scaled"], rtol=1e-4)
    for column in ("component_size", "coreness"):
        assert got[column].tolist() == expected[column].tolist(), column
    np.testing.assert_allclose(got["clustering"], expected["clustering"], equal_nan=True)
    # Communities are labels: compare the partition, not the numbers.
    assert got.loc["u0", "community"] == got.loc["u1", "community"] == got.loc["u2", "community"]
    assert got.loc["u0", "community"] != got.loc["u7", "community"]
    written = store.query("MATCH (n:User) WHERE n.gds_pagerank IS NOT NULL RETURN count(n) AS n")
    assert written["n"].iloc[0] == len(ids)
    kcore = store.query("MATCH (n:User {user_id: 'u0'}) RETURN n.gds_kcore AS k")
    assert kcore["k"].iloc[0] == expected.loc["u0", "coreness"]
