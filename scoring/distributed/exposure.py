"""The exposure family on a Dask cluster, equal to :func:`scoring.features.label_aware_features`.

The leakage rule is the single machine's, stated once in :mod:`scoring.features.exposure`:
the driver draws the folds (:func:`~scoring.features.exposure.fold_table`: user id, fold
and label of the training users, a small frame) and sends them by user id; the workers
expand them into the K label sets (:func:`~scoring.features.exposure.label_sets`) and
join those over the edge lists. Each user's values then follow the rule
(:func:`~scoring.features.exposure.read_sets`): its own fold's set for a training user,
the mean over the K sets for any other, so a partition needs nothing but its users' rows.

- ``known_neighbours``, ``neighbour_default_share``, ``hop2_default_share``: two rounds of
  joins and group-bys over the friendship pairs (:func:`.neighbours.neighbour_sums`);
- ``community_default_rate``: a group-by of the users' ``community`` column, each
  community's totals then sent to every partition (one row per community);
- ``merchant_customer_default_rate``, ``owned_customer_default_rate``: joins and group-bys
  over the payments and merchants (:func:`.neighbours.member_totals`; a user paying a
  merchant often counts once, as in the PAYS incidence matrix);
- ``default_ppr``, ``trust_ppr``: personalised PageRank is a global iterative algorithm,
  so it runs once on the driver (:func:`~scoring.features.exposure.ppr_features`, as
  PageRank does for the features) and joins by user id.
"""

from __future__ import annotations

from collections.abc import Mapping

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd

from creditgraph.errors import InvalidArgument
from creditgraph.graph.network import FriendGraph
from creditgraph.scoring.distributed.neighbours import (
    SHUFFLE,
    both_directions,
    member_totals,
    neighbour_sums,
    owning,
    paying,
    undirected_pairs,
)
from creditgraph.scoring.distributed.tabular import TableParts, by_user, read_table
from creditgraph.scoring.features.exposure import (
    COLUMNS,
    FOLDS,
    fold_table,
    label_sets,
    ppr_features,
    ratio,
    read_sets,
)

# The edge lists the family joins over, and the columns read from them.
EDGES = {"friendships": ["src", "dst"], "payments": ["user_id", "merchant_id"],
         "merchants": ["owner_id", "merchant_id"]}  # fmt: skip


def exposure_edges(parts: TableParts) -> dict[str, dd.DataFrame]:
    """The history's edge lists the family reads (those present), read by the workers."""
    return {name: read_table(parts[name], columns) for name, columns in EDGES.items()
            if name in parts}  # fmt: skip


def cluster_exposure(
    users: dd.DataFrame, graph: FriendGraph, edges: Mapping[str, dd.DataFrame],
    labels: pd.Series, train_ids: pd.Index, *, seed: int, folds: int = FOLDS,
) -> dd.DataFrame:  # fmt: skip
    """The exposure columns of every user of ``users`` (indexed by user id, known divisions,
    a ``community`` column), partitioned as ``users``.

    ``graph`` is the driver's (the PageRanks; the folds drawn over its nodes, as on one
    machine); ``edges`` is :func:`exposure_edges`; ``labels`` (1 = bad) and ``train_ids``
    as for :func:`scoring.features.label_aware_features`. The joins shuffle into the
    partitions of ``users``: cut it in a few large user ranges, not in scoring chunks.
    """
    if not users.known_divisions:
        raise InvalidArgument("the users' frame must be cut at known user-id divisions "
                              "(e.g. by scoring.distributed.tabular.by_user)")  # fmt: skip
    table = fold_table(graph.ids, labels, train_ids, folds=folds, seed=seed)
    ppr = ppr_features(graph, table, folds=folds).rename_axis("user_id")
    divisions = users.divisions
    with dask.config.set({"dataframe.convert-string": False}):  # ids stay as the features'
        sets = by_user(table.reset_index(), divisions)
        walks = by_user(ppr.reset_index(), divisions)
    known = sets.map_partitions(label_columns, folds, meta=label_columns(sets._meta, folds))
    base = users[["community"]].join(sets[["fold"]], how="left").join(walks, how="left")
    communities = community_totals(users, known)
    joined = base.map_partitions(_with_totals, communities, align_dataframes=False,
                                 meta=_with_totals(base._meta, communities._meta))  # fmt: skip
    for totals in edge_totals(edges, known):
        joined = joined.join(by_user(totals.reset_index(), divisions), how="left")
    return joined.map_partitions(_finish, folds, meta=_finish(joined._meta, folds))


def label_columns(part: pd.DataFrame, folds: int) -> pd.DataFrame:
    """``known_j`` and ``bad_j`` (0/1) of each user of ``part`` (a :func:`fold_table`'s rows)
    under each label set j."""
    bad, known = label_sets(part, folds)
    names = [f"{kind}_{j}" for kind in ("known", "bad") for j in range(folds)]
    return pd.DataFrame(np.hstack([known, bad]).astype(float), index=part.index, columns=names)


def community_totals(users: dd.DataFrame, known: dd.DataFrame) -> dd.DataFrame:
    """Per community, the totals of :func:`label_columns` over its members, in one partition.

    Sent whole to every partition of users: communities are far fewer than users, where a
    join by community would move every user's row there and back.
    """
    members = users[["community"]].join(known, how="left").fillna(0.0)
    totals = members.groupby("community")[list(known.columns)].sum(shuffle_method=SHUFFLE)
    return totals.add_prefix("community_").repartition(npartitions=1)


def _with_totals(part: pd.DataFrame, totals: pd.DataFrame) -> pd.DataFrame:
    return part.join(totals, on="community")


def edge_totals(edges: Mapping[str, dd.DataFrame], known: dd.DataFrame) -> list[dd.DataFrame]:
    """Per user, the totals of :func:`label_columns` over the friends (``hop1_``), the 2-hop
    walks (``hop2_``), the customers of the merchants paid (``paid_``) and owned
    (``owned_``), for the edge lists present."""
    divisions = known.divisions
    found = []
    if "friendships" in edges:
        links = both_directions(undirected_pairs(edges["friendships"]))
        hop1 = neighbour_sums(links, known)
        hop2 = neighbour_sums(links, by_user(hop1.reset_index(), divisions))
        found += [hop1.add_prefix("hop1_"), hop2.add_prefix("hop2_")]
    if "payments" in edges:
        pays = paying(edges["payments"])
        found.append(member_totals(pays, pays, known).add_prefix("paid_"))
        if "merchants" in edges:
            owned = member_totals(owning(edges["merchants"]), pays, known)
            found.append(owned.add_prefix("owned_"))
    return found


def _sets(part: pd.DataFrame, prefix: str, sets: int) -> np.ndarray:
    """The values of ``<prefix>_0`` … ``<prefix>_<K-1>`` of each row (NaN where it has none)."""
    return part.reindex(columns=[f"{prefix}_{j}" for j in range(sets)]).to_numpy(dtype=float)


def _finish(part: pd.DataFrame, sets: int) -> pd.DataFrame:
    """The exposure columns of one partition, as :func:`label_aware_features` leaves them."""
    fold = part["fold"].to_numpy(dtype=float)

    def share(prefix: str) -> np.ndarray:
        return read_sets(ratio(_sets(part, f"{prefix}_bad", sets),
                               _sets(part, f"{prefix}_known", sets)), fold)  # fmt: skip

    neighbours = read_sets(np.nan_to_num(_sets(part, "hop1_known", sets)), fold)  # no friend: 0
    columns = {
        "known_neighbours": neighbours, "neighbour_default_share": share("hop1"),
        "hop2_default_share": share("hop2"), "default_ppr": part["default_ppr"],
        "trust_ppr": part["trust_ppr"], "community_default_rate": share("community"),
        "merchant_customer_default_rate": share("paid"),
        "owned_customer_default_rate": share("owned"),
    }  # fmt: skip
    return pd.DataFrame(columns, index=part.index)[list(COLUMNS)]
