"""Notebook-friendly views: a small friend cluster as a networkx graph, and its picture.

networkx is the readable view for one cluster (tens to hundreds of nodes);
the features never go through it.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import networkx as nx
import pandas as pd

from creditgraph.graph.store import GraphStore

_CLUSTER = """
MATCH (c:User {user_id: $user_id})-[:FRIEND*1..2]-(f:User)
RETURN DISTINCT f.user_id AS user_id
"""
_NODES = """
MATCH (u:User) WHERE u.user_id IN $ids
RETURN u.user_id AS user_id, u.score AS score, u.defaulted AS defaulted,
       u.signup_date AS signup_date
"""
_EDGES = """
MATCH (a:User)-[r:FRIEND]->(b:User) WHERE a.user_id IN $ids AND b.user_id IN $ids
RETURN a.user_id AS src, b.user_id AS dst, r.src_interactions + r.dst_interactions AS weight
"""


def friend_cluster(store: GraphStore, user_id: str, *, max_nodes: int = 300) -> nx.Graph:
    """The user's friends and friends of friends (at most ``max_nodes``) as a networkx graph.

    Nodes carry ``score``, ``defaulted`` and ``signup_date``; edges ``weight``
    (interactions in both directions). The centre is marked ``centre=True``.
    """
    ids = store.query(_CLUSTER, {"user_id": user_id})["user_id"].tolist()
    ids = [user_id, *[i for i in ids if i != user_id]][:max_nodes]
    nodes = store.query(_NODES, {"ids": ids}).set_index("user_id")
    edges = store.query(_EDGES, {"ids": ids})
    graph = nx.Graph()
    for uid, row in nodes.iterrows():  # a few hundred nodes at most: readability over speed
        graph.add_node(uid, score=_value(row.get("score")), defaulted=_value(row["defaulted"]),
                       signup_date=row["signup_date"], centre=uid == user_id)  # fmt: skip
    graph.add_weighted_edges_from(edges[["src", "dst", "weight"]].itertuples(index=False))
    return graph


def _value(value: object) -> object:
    return None if value is None or (isinstance(value, float) and pd.isna(value)) else value


def plot_cluster(graph: nx.Graph, *, ax: plt.Axes | None = None, seed: int = 42) -> plt.Axes:
    """Draw a cluster: colour = score (red low, green high), ring = known defaulter."""
    ax = ax or plt.subplots(figsize=(7, 6))[1]
    position = nx.spring_layout(graph, seed=seed)
    scores = [graph.nodes[n].get("score") or 350 for n in graph]
    drawn = nx.draw_networkx_nodes(
        graph, position, ax=ax, node_color=scores, cmap="RdYlGn", vmin=350, vmax=950,
        node_size=[260 if graph.nodes[n].get("centre") else 80 for n in graph],
        edgecolors=["black" if graph.nodes[n].get("defaulted") else "none" for n in graph],
        linewidths=1.5,
    )  # fmt: skip
    nx.draw_networkx_edges(graph, position, ax=ax, alpha=0.3)
    ax.figure.colorbar(drawn, ax=ax, label="score")
    ax.set_title(f"friend cluster: {graph.number_of_nodes()} users (black ring = defaulted)")
    ax.axis("off")
    return ax
