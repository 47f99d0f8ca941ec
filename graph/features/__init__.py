"""Relationship and network-trust feature families, computed from arrays exported once.

``compute_graph_features`` is the single entry point: it exports the edges
from any store, builds one :class:`graph.network.FriendGraph`, and joins the
families (ties, position, friends' character) into one frame indexed by user id.
"""

from __future__ import annotations

import pandas as pd

from graph.features.friends import friend_features
from graph.features.position import position_features
from graph.features.ties import tie_features
from graph.network import FriendGraph
from graph.store import GraphStore


def compute_graph_features(
    store: GraphStore, tabular: pd.DataFrame, as_of: pd.Timestamp
) -> pd.DataFrame:
    """All graph features for every user in ``store``.

    ``tabular`` holds the users' tabular features (indexed by user id); the
    friends' family averages some of them over each user's friends.
    """
    friends = store.export_edges("FRIEND", ("since", "src_interactions", "dst_interactions"))
    transfers = store.export_edges("TRANSFER", ("amount",))
    graph = FriendGraph.from_arrays(friends)
    return pd.concat(
        [
            tie_features(graph, friends, transfers, as_of),
            position_features(graph),
            friend_features(graph, tabular),
        ],
        axis=1,
    )
