"""Every feature family on a Dask cluster, equal to :func:`scoring.features.tabular_features`
⨝ :func:`scoring.features.relationship_features` on one machine (to 1e-9, every column).

- tabular families: the single-machine functions per user partition (:mod:`.tabular`);
- ties, friends' means and minimum, new friends, shared devices, reciprocal transfers,
  merchants' customer quality: partitioned joins and group-bys (:mod:`.neighbours`);
- PageRank, components, clustering, k-core, triangles and communities are global: they
  are computed once on one machine (igraph, or GDS with ``--in-database``: ``global_``)
  and joined by user id.
"""

from __future__ import annotations

from collections.abc import Sequence

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd

from creditgraph.graph.algorithms import leiden, triangle_counts
from creditgraph.graph.network import FriendGraph
from creditgraph.ingest.history import read_parts
from creditgraph.scoring.distributed.neighbours import (
    both_directions,
    merchant_quality,
    neighbour_means,
    shared_device_users,
    tie_totals,
    transfer_totals,
    undirected_pairs,
)
from creditgraph.scoring.distributed.tabular import (
    TableParts,
    by_user,
    partitioned_tables,
    read_table,
    sample_rows,
    tabular_on_partitions,
    user_divisions,
)
from creditgraph.scoring.features import observation_dates
from creditgraph.scoring.features.community import community_features
from creditgraph.scoring.features.dates import HISTORY_DATES, fallback_date
from creditgraph.scoring.features.friends import FRIEND_AVERAGED
from creditgraph.scoring.features.position import position_features
from creditgraph.scoring.features.rings import NEW_ACCOUNT_DAYS

TIES = ("friend_count", "interaction_strength", "reciprocity", "tie_age_days",
        "transfer_out_amount", "transfer_in_amount", "transfer_counterparties")  # fmt: skip
POSITION = ("pagerank_scaled", "component_size", "clustering", "coreness")
COMMUNITY = ("community", "community_size", "community_density")
RINGS = ("shared_device_users", "new_friends_share", "new_account_triangles",
         "reciprocal_transfer_partners")  # fmt: skip
MERCHANTS = ("merchant_customer_on_time_share", "owned_customer_count",
             "owned_customer_on_time_share")  # fmt: skip
# No edge of the kind: a count of 0 (the other columns stay NaN, as on one machine).
ZERO_WITHOUT_EDGES = ("friend_count", "interaction_strength", "transfer_out_amount",
                      "transfer_in_amount", "transfer_counterparties", "shared_device_users",
                      "reciprocal_transfer_partners", "owned_customer_count")  # fmt: skip


def global_features(
    graph: FriendGraph, *, seed: int, position: pd.DataFrame | None = None,
    communities: pd.Series | None = None,
) -> pd.DataFrame:  # fmt: skip
    """The global families on one machine, indexed by user id, plus ``triangles``.

    ``position`` and ``communities`` (from GDS) replace igraph's, as in
    :func:`scoring.features.relationship_features`.
    """
    if communities is None:
        membership = leiden(graph, seed=seed)
    else:
        membership = pd.factorize(communities.reindex(graph.ids), sort=True)[0].astype(np.int64)
    found = position_features(graph) if position is None else position.reindex(graph.ids)
    return pd.concat(
        [found[list(POSITION)], community_features(graph, membership),
         graph.frame({"triangles": triangle_counts(graph)})], axis=1,
    ).rename_axis("user_id")  # fmt: skip


def distributed_features(
    parts: TableParts, user_ids: pd.Series, global_: pd.DataFrame, *, partitions: int,
    previous_scores: pd.DataFrame | None = None,
) -> dd.DataFrame:  # fmt: skip
    """Tabular ⨝ relationship features of every user as a Dask frame indexed by user id.

    ``parts`` are the history tables' Parquet files (the workers read them), ``user_ids``
    the users table's id column (:func:`.tabular.read_user_ids`), ``global_`` is
    :func:`global_features`; ``previous_scores`` (indexed by user id) is the published
    run, if any.
    """
    # What the driver reads, all of it small: the users' id column (given: the partition
    # divisions), the labels' user_id and observation_date columns (the fallback date and
    # the date ties are aged to), and the rows of the first 200 users of each per-user
    # table (the dtypes of the result: :func:`.tabular.sample_rows`). Without labels the
    # fallback date is a maximum computed on the cluster. Every history row is read by the
    # workers (``dd.read_parquet``); the task graph holds paths, not tables.
    divisions = user_divisions(user_ids, partitions)
    fallback, as_of = observation_bounds(parts, user_ids)
    tabular = tabular_on_partitions(
        partitioned_tables(parts, divisions), fallback, sample_rows(parts, user_ids)
    )
    edges = {name: read_table(parts[name])
             for name in ("friendships", "transfers", "payments", "merchants", "devices")
             if name in parts}  # fmt: skip
    values = _friend_values(tabular, previous_scores, divisions)
    aggregates: list[dd.DataFrame | dd.Series] = []
    if "friendships" in edges:
        links = both_directions(undirected_pairs(edges["friendships"]))
        aggregates += [neighbour_means(links, values, lowest=("own_file",)),
                       tie_totals(edges["friendships"], as_of)]  # fmt: skip
    if "transfers" in edges:
        aggregates.append(transfer_totals(edges["transfers"]))
    if "devices" in edges:
        aggregates.append(shared_device_users(edges["devices"]))
    if "payments" in edges and "on_time_share" in tabular.columns:
        owners = edges.get("merchants", dd.from_pandas(
            pd.DataFrame({"owner_id": pd.Series(dtype=str), "merchant_id": pd.Series(dtype=str)}),
            npartitions=1))  # fmt: skip
        aggregates.append(merchant_quality(edges["payments"], owners, tabular["on_time_share"]))
    # Every part is moved onto the users' partitions (ranges of user ids) before joining:
    # joins of aligned partitions, never hash joins of frames partitioned differently.
    joined = tabular
    for part in [global_, *aggregates]:
        frame = part.to_frame() if isinstance(part, dd.Series | pd.Series) else part
        joined = joined.join(by_user(frame.reset_index(), divisions), how="left")
    present = [c for c in FRIEND_AVERAGED if c in tabular.columns]
    columns = [*tabular.columns, *TIES, *POSITION,
               *(f"friends_mean_{c}" for c in present), "friends_thin_file_share",
               "friends_past_default_share", "friends_prev_score_mean", "friends_prev_score_min",
               *COMMUNITY, *RINGS, *MERCHANTS]  # fmt: skip
    return joined.map_partitions(_finish, present, columns, meta=_finish(joined._meta, present,
                                                                          columns))  # fmt: skip


def observation_bounds(parts: TableParts, user_ids: pd.Series) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(fallback date, latest observation date) of the whole data, as
    :func:`scoring.features.observation_dates` gives them on one machine."""
    if "labels" in parts:
        labels = read_parts(parts["labels"], columns=["user_id", "observation_date"])
        dates = {"users": user_ids.to_frame(), "labels": labels}
        fallback = fallback_date(dates)
        return fallback, pd.Timestamp(observation_dates(dates, fallback).max())
    # No labels: everyone's date is the history's latest, one maximum per column on the cluster.
    latest = [dd.to_datetime(read_table(parts[name], columns=[column])[column]).max()
              for name, column in HISTORY_DATES if name in parts]  # fmt: skip
    fallback = pd.Timestamp(max(dask.compute(*latest)))
    return fallback, fallback


def _friend_values(
    tabular: dd.DataFrame, previous: pd.DataFrame | None, divisions: Sequence[str]
) -> dd.DataFrame:
    """The per-user values friends are averaged over, indexed by user id."""
    present = [c for c in FRIEND_AVERAGED if c in tabular.columns]
    flags = [c for c in ("thin_file", "past_default") if c in tabular.columns]

    def pick(part: pd.DataFrame) -> pd.DataFrame:
        out = part[present + flags].astype(float)
        out["new"] = (part["account_age_days"].to_numpy(dtype=float) < NEW_ACCOUNT_DAYS) * 1.0
        return out

    values = tabular.map_partitions(pick, meta=pick(tabular._meta))
    if previous is None:
        return values.assign(own_file=np.nan)
    own = (previous["score"] - previous["f_relationships"]).astype(float).rename("own_file")
    return values.join(by_user(own.rename_axis("user_id").reset_index(), divisions),
                       how="left")  # fmt: skip


def _finish(part: pd.DataFrame, present: list[str], columns: list[str]) -> pd.DataFrame:
    """One partition's columns named and filled as the single-machine families leave them."""
    out = part.copy()
    for name in ZERO_WITHOUT_EDGES:
        source = {"friend_count": "degree"}.get(name, name)
        out[name] = out[source].fillna(0.0).astype(float) if source in out else 0.0
    ties = out["ties"] if "ties" in out else pd.Series(np.nan, index=out.index)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["reciprocity"] = out.get("mutual", np.nan) / ties.where(ties > 0)
        out["tie_age_days"] = out.get("age_days", np.nan) / ties.where(ties > 0)
    for c in present:
        out[f"friends_mean_{c}"] = out.get(f"mean_{c}", np.nan)
    out["friends_thin_file_share"] = out.get("mean_thin_file", np.nan)
    out["friends_past_default_share"] = out.get("mean_past_default", np.nan)
    out["friends_prev_score_mean"] = out.get("mean_own_file", np.nan)
    out["friends_prev_score_min"] = out.get("min_own_file", np.nan)
    out["new_friends_share"] = out.get("mean_new", np.nan)
    new = (out["account_age_days"].to_numpy(dtype=float) < NEW_ACCOUNT_DAYS) * 1.0
    out["new_account_triangles"] = new * out["triangles"]
    for name in ("merchant_customer_on_time_share", "owned_customer_on_time_share"):
        if name not in out:
            out[name] = np.nan
    out["community"] = out["community"].astype(np.int64)
    return out[columns]
