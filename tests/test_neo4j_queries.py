"""Investigations that must behave on Neo4j as on the embedded store (issue 15, defect 6).

A friendship may be stored both ways (``a->b`` and ``b->a``); an undirected
match then sees each friend twice, so counts must be of distinct users.
``shortestPath()`` raises on Neo4j when both ends are the same node, and a
variable-length match enumerates every path before filtering, so
``friend_cluster`` uses a breadth-first shortest-path search. The embedded
store runs these texts here; the Neo4j texts are parsed by Neo4j's own parser
(``tests/test_cypher_lint.py``) and, with ``NEO4J_URI`` set, run on the server
and compared with the embedded answers.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Iterator

import networkx as nx
import pandas as pd
import pytest

from creditgraph import queries
from creditgraph.graph.embedded import EmbeddedStore
from creditgraph.graph.store import GraphStore

# a⇄b stored both ways, a-b-c-d-a a cycle, e alone; b and d defaulted.
USERS = ["a", "b", "c", "d", "e"]
FRIENDS = [("a", "b"), ("b", "a"), ("b", "c"), ("c", "d"), ("d", "a")]
CALLS = {
    "defaulter_exposure": {},
    "top_pagerank": {"community": 1},
    "shortest_friend_path": {"from_user": "a", "to_user": "a"},
    "friend_cluster": {"user_id": "a", "hops": 3},
}


def build(store: GraphStore, users: list[str], friends: list[tuple[str, str]]) -> None:
    store.ensure_schema()
    store.upsert_nodes("User", pd.DataFrame({
        "user_id": users, "defaulted": [u in ("b", "d") for u in users],
    }))  # fmt: skip
    store.upsert_edges("FRIEND", pd.DataFrame(friends, columns=["src", "dst"]))
    n = len(users)
    store.write_properties("User", pd.DataFrame({
        "score": [600.0 + i for i in range(n)], "pd": [0.1] * n, "community": [1] * n,
        "pagerank": [float(n - i) for i in range(n)],
    }, index=pd.Index(users, name="user_id")))  # fmt: skip


@pytest.fixture(scope="module")
def embedded() -> Iterator[EmbeddedStore]:
    store = EmbeddedStore(None)
    build(store, USERS, FRIENDS)
    yield store
    store.close()


def test_defaulter_exposure_counts_a_friend_stored_both_ways_once(embedded) -> None:
    found = queries.run(embedded, "defaulter_exposure", min_defaulted=0).set_index("user_id")
    # a's friends are b (stored both ways) and d: 2 friends, both defaulted
    assert found.loc["a", ["friends", "defaulted_friends"]].tolist() == [2, 2]
    assert found.loc["b", ["friends", "defaulted_friends"]].tolist() == [2, 0]


def test_top_pagerank_counts_distinct_friends(embedded) -> None:
    top = queries.run(embedded, "top_pagerank", community=1, limit=5)
    assert top.set_index("user_id")["friends"].to_dict() == {"a": 2, "b": 2, "c": 2, "d": 2,
                                                              "e": 0}  # fmt: skip


def test_shortest_path_from_a_user_to_themself_is_empty_in_both_dialects(embedded) -> None:
    assert queries.run(embedded, "shortest_friend_path", from_user="a", to_user="a").empty
    text = queries.describe("shortest_friend_path").text("neo4j")
    body = "\n".join(line for line in text.splitlines() if not line.startswith("//"))
    guard, search = body.find("WHERE a <> b"), body.find("shortestPath(")
    assert 0 <= guard < search, "Neo4j raises on shortestPath() between a node and itself"
    assert queries.run(embedded, "shortest_friend_path", from_user="a", to_user="c")[
        "hops"].tolist() == [2]  # fmt: skip


def test_friend_cluster_on_neo4j_is_a_breadth_first_search() -> None:
    text = queries.describe("friend_cluster").text("neo4j")
    assert re.search(r"SHORTEST 1 \(u:User \{user_id: \$user_id\}\)-\[:FRIEND\]-\{1,3\}", text)
    assert "*1..3" not in text  # no enumeration of every path up to 3 hops


def test_friend_cluster_reaches_each_user_once_at_its_distance(embedded) -> None:
    found = queries.run(embedded, "friend_cluster", user_id="a", hops=3)
    assert list(zip(found["user_id"], found["hops"], strict=True)) == [
        ("b", 1), ("d", 1), ("c", 2)]  # fmt: skip


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_friend_cluster_matches_breadth_first_distances(seed: int) -> None:
    rng = random.Random(seed)
    users = [f"u{i:02d}" for i in range(30)]
    pairs = {(rng.choice(users), rng.choice(users)) for _ in range(45)}
    pairs = [(s, d) for s, d in pairs if s != d]
    pairs += [(d, s) for s, d in pairs[:10]]  # some stored both ways
    store = EmbeddedStore(None)
    build(store, users, pairs)
    graph = nx.Graph(pairs)
    centre = users[seed]
    for hops in (1, 2, 3, 5):
        got = queries.run(store, "friend_cluster", user_id=centre, hops=hops, limit=1000)
        want = (
            {
                u: d
                for u, d in nx.single_source_shortest_path_length(
                    graph, centre, cutoff=min(hops, 3)
                ).items()
                if u != centre
            }
            if centre in graph
            else {}
        )
        assert dict(zip(got["user_id"], got["hops"], strict=True)) == want, hops
    store.close()


# -- the Neo4j texts on a server --------------------------------------------------------------
@pytest.mark.neo4j
@pytest.mark.skipif(
    not os.environ.get("NEO4J_URI"),
    reason="Neo4j query comparison did not run: NEO4J_URI is not set "
    "(docker compose up -d neo4j, then export NEO4J_URI/NEO4J_PASSWORD from .env)",
)
@pytest.mark.parametrize("name", sorted(CALLS))
def test_neo4j_text_answers_as_the_embedded_text(embedded, name: str) -> None:
    from test_store_contract import _open_neo4j

    server = _open_neo4j()
    try:
        build(server, USERS, FRIENDS)
        got = queries.run(server, name, **CALLS[name])
    finally:
        server.close()
    want = queries.run(embedded, name, **CALLS[name])
    assert got.astype(object).where(got.notna(), None).values.tolist() == (
        want.astype(object).where(want.notna(), None).values.tolist()
    )
