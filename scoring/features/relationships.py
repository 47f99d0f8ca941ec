"""The interpersonal-relationships factor: its graph families joined, from arrays exported once.

:func:`relationship_features` joins the label-free families (ties, position,
friends' character and previous own-file scores, communities, rings,
merchants); :func:`label_aware_features` adds the exposure family,
leakage-safe. Both read a :class:`graph.network.GraphData` (every
relationship exported once as arrays) and return frames indexed by user id
whose columns are declared in :mod:`scoring.dictionary`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from creditgraph.errors import DataMissing
from creditgraph.graph.algorithms import leiden
from creditgraph.graph.network import GraphData
from creditgraph.scoring.features.community import community_features
from creditgraph.scoring.features.exposure import LabelContext, exposure_features
from creditgraph.scoring.features.friends import friend_features
from creditgraph.scoring.features.merchants import merchant_features
from creditgraph.scoring.features.position import position_features
from creditgraph.scoring.features.rings import ring_features
from creditgraph.scoring.features.ties import tie_features


def relationship_features(
    data: GraphData, tabular: pd.DataFrame, as_of: pd.Timestamp, *, seed: int = 42,
    previous_scores: pd.DataFrame | None = None, communities: pd.Series | None = None,
) -> pd.DataFrame:  # fmt: skip
    """All label-free graph families for every user (``tabular`` indexed by user id).

    ``previous_scores`` is the latest scoring run (indexed by user id), if any.
    ``communities`` (a community id per user id, e.g. computed in the database)
    replaces the igraph Leiden partition: community size and density then
    describe those same communities.
    """
    graph = data.graph
    aligned = tabular.reindex(graph.ids)
    if communities is None:
        membership = leiden(graph, seed=seed)
    else:
        given = communities.reindex(graph.ids)
        if given.isna().any():
            missing = given.index[given.isna()][0]
            raise DataMissing(f"no community for user {missing!r} (of {int(given.isna().sum())})")
        membership = pd.factorize(given, sort=True)[0].astype(np.int64)
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


def label_aware_features(
    data: GraphData, features: pd.DataFrame, labels: pd.Series, train_ids: pd.Index, *,
    seed: int = 42,
) -> pd.DataFrame:  # fmt: skip
    """The exposure family: out-of-fold for ``train_ids`` (a row's own fold's label set),
    the mean over the K out-of-fold label sets for the rest (:mod:`.exposure`'s leakage
    rule).

    ``features`` must hold the ``community`` column of :func:`relationship_features`.
    On a Dask cluster :func:`scoring.distributed.exposure.cluster_exposure` gives the same
    columns, its counts computed by the workers.
    """
    community = features["community"].reindex(data.graph.ids).to_numpy(dtype=np.int64)
    context = LabelContext(data.graph, community, data.pays, data.owns)
    return exposure_features(context, labels, train_ids, seed=seed)
