"""Relationship and network-trust feature families, computed from arrays exported once.

:class:`GraphData` exports every relationship from any store once and builds
one CSR friendship graph. :func:`compute_graph_features` joins the
label-free families (ties, position, friends' character, communities, rings,
merchants); :func:`compute_exposure` adds the label-aware family, leakage-safe.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from creditgraph.graph.features.community import community_features, leiden
from creditgraph.graph.features.exposure import LabelContext, exposure_features
from creditgraph.graph.features.friends import friend_features
from creditgraph.graph.features.merchants import bipartite, merchant_features
from creditgraph.graph.features.position import position_features
from creditgraph.graph.features.rings import ring_features
from creditgraph.graph.features.ties import tie_features
from creditgraph.graph.network import FriendGraph
from creditgraph.graph.store import EdgeArrays, GraphStore


@dataclass
class GraphData:
    """Every relationship the features need, as arrays, plus the friendship graph."""

    friends: EdgeArrays
    transfers: EdgeArrays
    devices: EdgeArrays
    pays: sp.csr_matrix
    owns: sp.csr_matrix
    graph: FriendGraph

    @classmethod
    def export(cls, store: GraphStore) -> GraphData:
        friends = store.export_edges("FRIEND", ("since", "src_interactions", "dst_interactions"))
        pays = store.export_edges("PAYS")
        owns = store.export_edges("OWNS")
        shape = (len(pays.source_ids), len(pays.target_ids))
        return cls(
            friends=friends,
            transfers=store.export_edges("TRANSFER", ("amount",)),
            devices=store.export_edges("USES"),
            pays=bipartite(pays.src, pays.dst, shape),
            owns=bipartite(owns.src, owns.dst, shape),
            graph=FriendGraph.from_arrays(friends),
        )

    def label_context(self, community: np.ndarray | None) -> LabelContext:
        return LabelContext(self.graph, community, self.pays, self.owns)


def compute_graph_features(
    data: GraphData, tabular: pd.DataFrame, as_of: pd.Timestamp, *, seed: int = 42,
    previous_scores: pd.DataFrame | None = None,
) -> pd.DataFrame:  # fmt: skip
    """All label-free graph features for every user (``tabular`` indexed by user id).

    ``previous_scores`` is the latest scoring run (indexed by user id), if any.
    """
    graph = data.graph
    aligned = tabular.reindex(graph.ids)
    membership = leiden(graph, seed=seed)
    return pd.concat(
        [
            tie_features(graph, data.friends, data.transfers, as_of),
            position_features(graph),
            friend_features(graph, aligned, previous_scores),
            community_features(graph, membership),
            ring_features(graph, data.devices, data.transfers,
                          aligned["account_age_days"].to_numpy(dtype=float)),
            merchant_features(graph, data.pays, data.owns,
                              aligned["on_time_share"].to_numpy(dtype=float)),
        ],
        axis=1,
    )  # fmt: skip


def compute_exposure(
    data: GraphData, features: pd.DataFrame, labels: pd.Series, train_ids: pd.Index, *,
    seed: int = 42,
) -> pd.DataFrame:  # fmt: skip
    """Label-aware features: out-of-fold for ``train_ids``, training labels for the rest."""
    community = features["community"].reindex(data.graph.ids).to_numpy(dtype=np.int64)
    return exposure_features(data.label_context(community), labels, train_ids, seed=seed)
