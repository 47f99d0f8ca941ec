"""Notebook-friendly views: a small set of users as a networkx graph, and its picture.

networkx is the readable view for one cluster (tens to hundreds of nodes);
the features never go through it. :func:`friend_cluster` is a user's friends;
:func:`subgraph` is any set of users with their friendships, transfers and the
devices they share, one edge ``kind`` each.
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
_DETAILED_NODES = """
MATCH (u:User) WHERE u.user_id IN $ids
RETURN u.user_id AS user_id, u.score AS score, u.pd AS pd, u.defaulted AS defaulted,
       u.pagerank AS pagerank, u.community AS community, u.signup_date AS signup_date
"""
_DEVICES = """
MATCH (u:User)-[:USES]->(d:Device) WHERE u.user_id IN $ids
RETURN u.user_id AS user_id, d.device_id AS device_id
"""
_TRANSFERS = """
MATCH (a:User)-[r:TRANSFER]->(b:User) WHERE a.user_id IN $ids AND b.user_id IN $ids
RETURN a.user_id AS src, b.user_id AS dst, r.n AS transfers, r.amount AS amount,
       r.first_date AS first_date, r.last_date AS last_date
"""
# Node and edge kinds of :func:`subgraph`.
USER, DEVICE = "User", "Device"
FRIEND, TRANSFER, USES = "FRIEND", "TRANSFER", "USES"
_EDGES = """
MATCH (a:User)-[r:FRIEND]->(b:User) WHERE a.user_id IN $ids AND b.user_id IN $ids
RETURN a.user_id AS src, b.user_id AS dst, r.src_interactions + r.dst_interactions AS weight,
       r.since AS since
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


def subgraph(
    store: GraphStore, user_ids: list[str], *, shared_devices: bool = True, transfers: bool = True
) -> nx.MultiGraph:
    """``user_ids`` with the friendships and transfers among them and the devices they share.

    Users carry ``kind="User"`` and their stored properties (``score``, ``pd``,
    ``defaulted``, ``pagerank``, ``community``, ``signup_date``; None where not
    written). A device used by at least two of the users becomes a
    ``kind="Device"`` node keyed ``device:<device_id>``. Edges carry ``kind``:
    ``FRIEND`` (``weight``: interactions both ways, ``since``; one edge per pair),
    ``TRANSFER`` (``src``, ``dst``, ``transfers``, ``amount``, ``first_date``,
    ``last_date``; direction kept in ``src``/``dst``)
    and ``USES``. Unknown ids are left out.
    """
    ids = list(dict.fromkeys(user_ids))
    graph = nx.MultiGraph()
    for row in store.query(_DETAILED_NODES, {"ids": ids}).to_dict("records"):
        graph.add_node(row.pop("user_id"), kind=USER, **{k: _value(v) for k, v in row.items()})
    for src, dst, weight, since in store.query(_EDGES, {"ids": ids}).itertuples(index=False):
        if not any(e["kind"] == FRIEND for e in graph.get_edge_data(src, dst, default={}).values()):
            graph.add_edge(src, dst, kind=FRIEND, weight=_value(weight), since=_value(since))
    if transfers:
        for row in store.query(_TRANSFERS, {"ids": ids}).to_dict("records"):
            row = {k: _value(v) for k, v in row.items()}
            graph.add_edge(row["src"], row["dst"], kind=TRANSFER, **row)
    if shared_devices:
        uses = store.query(_DEVICES, {"ids": ids})
        shared = uses[uses.groupby("device_id")["user_id"].transform("nunique") >= 2]
        for user, device in shared.itertuples(index=False):
            graph.add_node(f"device:{device}", kind=DEVICE, device_id=device)
            graph.add_edge(user, f"device:{device}", kind=USES)
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
