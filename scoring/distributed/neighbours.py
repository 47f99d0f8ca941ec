"""Neighbour aggregates as partitioned joins and group-bys over the edge lists.

The same numbers as the single-machine families (:mod:`scoring.features.ties`,
``friends``, ``rings``, ``merchants``, and the counts of ``exposure`` through
:mod:`.exposure`), which compute them as sparse products on one machine: here each
edge list is joined to the per-user values of its other end and grouped by user, so
no machine holds the whole graph. Every aggregate is a Dask frame indexed by user id
holding only users with at least one edge; the caller fills what "no edge" means (0
for counts, NaN for means).
"""

from __future__ import annotations

import dask.dataframe as dd
import numpy as np
import pandas as pd

SHUFFLE = "tasks"  # small partitions in the tests; p2p pays off only at millions of rows


def undirected_pairs(edges: dd.DataFrame) -> dd.DataFrame:
    """Distinct unordered pairs (``lo`` < ``hi``) of ``edges``, self-loops dropped."""
    pairs = _ordered(edges)
    return pairs[pairs["lo"] != pairs["hi"]].drop_duplicates(shuffle_method=SHUFFLE)


def both_directions(pairs: dd.DataFrame) -> dd.DataFrame:
    """Each unordered pair as two rows ``user_id`` → ``other``."""
    forward = pairs.rename(columns={"lo": "user_id", "hi": "other"})
    backward = pairs.rename(columns={"hi": "user_id", "lo": "other"})
    return dd.concat([forward, backward[["user_id", "other"]]])


def neighbour_means(
    links: dd.DataFrame, values: dd.DataFrame, lowest: tuple[str, ...] = ()
) -> dd.DataFrame:
    """Per user: ``degree``, the mean of each column of ``values`` over the other ends that
    have one (``mean_<column>``), and the smallest for the columns in ``lowest``
    (``min_<column>``); NaN where no other end has a value.

    ``links`` holds ``user_id`` → ``other`` rows; ``values`` is indexed by user id.
    """
    columns = list(values.columns)
    joined = values_of(links, "other", values)

    def terms(part: pd.DataFrame) -> pd.DataFrame:
        out = {"user_id": part["user_id"], "degree": np.ones(len(part))}
        for c in columns:
            known = part[c].notna()
            out[f"sum_{c}"] = part[c].where(known, 0.0).astype(float)
            out[f"known_{c}"] = known.astype(float)
        out.update({f"min_{c}": part[c].astype(float) for c in lowest})
        return pd.DataFrame(out, index=part.index)

    spread = joined.map_partitions(terms, meta=terms(joined._meta))
    how = {c: "sum" for c in spread.columns if c != "user_id"}
    how.update({f"min_{c}": "min" for c in lowest})
    totals = spread.groupby("user_id").agg(how, shuffle_method=SHUFFLE)

    def means(part: pd.DataFrame) -> pd.DataFrame:
        out = {"degree": part["degree"]}
        for c in columns:
            known = part[f"known_{c}"]
            out[f"mean_{c}"] = (part[f"sum_{c}"] / known.where(known > 0)).astype(float)
        out.update({f"min_{c}": part[f"min_{c}"] for c in lowest})
        return pd.DataFrame(out, index=part.index)

    return totals.map_partitions(means, meta=means(totals._meta))


def values_of(rows: dd.DataFrame, key: str, values: dd.DataFrame) -> dd.DataFrame:
    """``rows`` with the ``values`` (indexed by user id) of the user in their ``key`` column
    (NaN where it has none): a left join."""
    if values.known_divisions:
        # The rows move onto the values' user ranges and join partition by partition. Not
        # ``merge(right_index=True)``: Dask 2026.8 takes a right side that is itself a join
        # of aligned frames as already hash-partitioned (its partition mapping names the
        # index, ``None``, which is also what ``right_on`` is) and shuffles only the left
        # side; when both sides have as many partitions, rows meet the wrong users.
        on_key = rows.set_index(key, divisions=list(values.divisions), shuffle_method=SHUFFLE)
        return on_key.join(values, how="left")
    return rows.merge(values, left_on=key, right_index=True, how="left", shuffle_method=SHUFFLE)


def neighbour_sums(links: dd.DataFrame, values: dd.DataFrame) -> dd.DataFrame:
    """Per user, the sum of each column of ``values`` (indexed by user id; missing: 0) over
    the other ends of their ``links`` (``user_id`` → ``other`` rows): the adjacency's
    product ``A @ values`` of :meth:`graph.network.FriendGraph.neighbour_sum`."""
    joined = values_of(links, "other", values).fillna(0.0)
    return joined.groupby("user_id")[list(values.columns)].sum(shuffle_method=SHUFFLE)


def member_totals(outer: dd.DataFrame, members: dd.DataFrame, values: dd.DataFrame) -> dd.DataFrame:
    """Per user of ``outer``, the sum of each column of ``values`` (indexed by user id;
    missing: 0) over the ``members`` of the merchants in their ``outer`` rows, a member
    counted once per merchant: :func:`graph.algorithms.member_totals` as joins. ``outer``
    and ``members`` hold distinct ``user_id``, ``merchant_id`` rows (:func:`paying`)."""
    columns = list(values.columns)
    valued = values_of(members, "user_id", values).fillna(0.0)
    per_merchant = valued.groupby("merchant_id")[columns].sum(shuffle_method=SHUFFLE)
    reach = outer.merge(per_merchant, left_on="merchant_id", right_index=True,
                        shuffle_method=SHUFFLE)  # fmt: skip
    return reach.groupby("user_id")[columns].sum(shuffle_method=SHUFFLE)


def paying(payments: dd.DataFrame) -> dd.DataFrame:
    """Distinct ``user_id``, ``merchant_id`` rows of the payments: a user pays a merchant
    once however often (the PAYS incidence matrix of :class:`graph.network.GraphData`)."""
    return payments[["user_id", "merchant_id"]].drop_duplicates(shuffle_method=SHUFFLE)


def owning(merchants: dd.DataFrame) -> dd.DataFrame:
    """Distinct ``user_id`` (the owner), ``merchant_id`` rows of the merchants that have one
    (the OWNS incidence matrix)."""
    # Renamed before the shuffle: Dask 2026.8 cannot rename the output of a drop_duplicates
    # that a merge then reads (the rename's partition mapping looks up a column ``None``).
    owns = merchants[["owner_id", "merchant_id"]].rename(columns={"owner_id": "user_id"})
    return owns.dropna().drop_duplicates(shuffle_method=SHUFFLE)


def tie_totals(friendships: dd.DataFrame, as_of: pd.Timestamp) -> dd.DataFrame:
    """Per user, over the friendships touching them (as stored, both ends): ``ties``,
    ``interaction_strength``, ``mutual`` and ``age_days`` totals."""

    def ends(part: pd.DataFrame) -> pd.DataFrame:
        a = part["src_interactions"].astype(float).fillna(0.0).to_numpy()
        b = part["dst_interactions"].astype(float).fillna(0.0).to_numpy()
        age = np.asarray((as_of - pd.to_datetime(part["since"])).dt.days, dtype=float)
        values = {"ties": np.ones(len(part)), "interaction_strength": a + b,
                  "mutual": ((a > 0) & (b > 0)).astype(float), "age_days": age}  # fmt: skip
        return pd.concat([pd.DataFrame({"user_id": part[end].to_numpy(), **values})
                          for end in ("src", "dst")], ignore_index=True)  # fmt: skip

    spread = friendships.map_partitions(ends, meta=ends(friendships._meta))
    return spread.groupby("user_id").sum(shuffle_method=SHUFFLE)


def transfer_totals(transfers: dd.DataFrame) -> dd.DataFrame:
    """Per user: money sent and received, distinct counterparties (either direction; a
    transfer to oneself counts at both ends) and reciprocal partners (both directions)."""
    amount = transfers.assign(amount=transfers["amount"].fillna(0.0))
    sent, received = (
        amount[[end, "amount"]].rename(columns={end: "user_id"})
        .groupby("user_id")["amount"].sum(shuffle_method=SHUFFLE)
        for end in ("src", "dst")
    )  # fmt: skip
    directed = transfers[["src", "dst"]].drop_duplicates(shuffle_method=SHUFFLE)
    pairs = _ordered(directed)  # one row per direction a pair was used in
    partners = _per_end(pairs.drop_duplicates(shuffle_method=SHUFFLE), self_twice=True)
    apart = pairs[pairs["lo"] != pairs["hi"]]
    directions = apart.groupby(["lo", "hi"]).size(shuffle_method=SHUFFLE).rename("n").reset_index()
    reciprocal = _per_end(directions[directions["n"] == 2][["lo", "hi"]], self_twice=False)
    return side_by_side([
        sent.rename("transfer_out_amount"), received.rename("transfer_in_amount"),
        partners.rename("transfer_counterparties"),
        reciprocal.rename("reciprocal_transfer_partners"),
    ])  # fmt: skip


def _ordered(edges: dd.DataFrame) -> dd.DataFrame:
    """Each ``src``/``dst`` edge as its unordered pair (``lo`` ≤ ``hi``)."""
    first = edges["src"].where(edges["src"] < edges["dst"], edges["dst"])
    second = edges["dst"].where(edges["src"] < edges["dst"], edges["src"])
    return dd.concat([first.rename("lo"), second.rename("hi")], axis=1)


def _per_end(pairs: dd.DataFrame, *, self_twice: bool) -> dd.Series:
    """Pairs counted at both of their ends (a pair of a user with itself: twice, or not)."""
    if not self_twice:
        pairs = pairs[pairs["lo"] != pairs["hi"]]
    ends = dd.concat([pairs["lo"].rename("user_id"), pairs["hi"].rename("user_id")]).to_frame()
    return ends.groupby("user_id").size(shuffle_method=SHUFFLE)


def shared_device_users(devices: dd.DataFrame) -> dd.Series:
    """Per user, the other users seen on any of their devices (each counted once)."""
    uses = devices[["user_id", "device_id"]].drop_duplicates(shuffle_method=SHUFFLE)
    pairs = uses.merge(uses, on="device_id", suffixes=("", "_other"), shuffle_method=SHUFFLE)
    pairs = pairs[pairs["user_id"] != pairs["user_id_other"]][["user_id", "user_id_other"]]
    distinct = pairs.drop_duplicates(shuffle_method=SHUFFLE)
    return distinct.groupby("user_id").size(shuffle_method=SHUFFLE).rename("shared_device_users")


def merchant_quality(
    payments: dd.DataFrame, merchants: dd.DataFrame, on_time: dd.Series
) -> dd.DataFrame:
    """Per user: ``merchant_customer_on_time_share`` (other customers of the merchants paid,
    a customer counted once per shared merchant), and for owners
    ``owned_customer_count`` and ``owned_customer_on_time_share`` of their merchants."""
    pays = paying(payments)
    own = on_time.rename("value").to_frame()
    valued = pays.merge(own, left_on="user_id", right_index=True, how="left",
                        shuffle_method=SHUFFLE)  # fmt: skip
    valued = valued.assign(known=valued["value"].notnull().astype(float),
                           value=valued["value"].fillna(0.0), customers=1.0)  # fmt: skip
    per_merchant = valued.groupby("merchant_id")[["value", "known", "customers"]].sum(
        shuffle_method=SHUFFLE
    )
    reach = pays.merge(per_merchant, left_on="merchant_id", right_index=True,
                       shuffle_method=SHUFFLE)  # fmt: skip
    reach = (
        reach.assign(merchants=1.0)
        .groupby("user_id")[["value", "known", "merchants"]]
        .sum(shuffle_method=SHUFFLE)
    )
    mine = reach.join(own, rsuffix="_own", how="left", shuffle_method=SHUFFLE)

    def co_members(part: pd.DataFrame) -> pd.Series:
        mine_value = part["value_own"]
        known = mine_value.notna().astype(float)
        total = part["value"] - part["merchants"] * mine_value.fillna(0.0)
        count = part["known"] - part["merchants"] * known
        return (total / count.where(count > 0)).rename("merchant_customer_on_time_share")

    shares = mine.map_partitions(co_members, meta=co_members(mine._meta))
    owned = owning(merchants).merge(per_merchant, left_on="merchant_id", right_index=True,
                                    shuffle_method=SHUFFLE)  # fmt: skip
    owned = owned.groupby("user_id")[["value", "known", "customers"]].sum(shuffle_method=SHUFFLE)
    owned_share = (owned["value"] / owned["known"].where(owned["known"] > 0)).rename(
        "owned_customer_on_time_share"
    )
    return side_by_side([shares, owned["customers"].rename("owned_customer_count"), owned_share])


def side_by_side(columns: list[dd.Series]) -> dd.DataFrame:
    """Per-user series as one frame (outer join on user id: a user may lack any of them)."""
    joined = columns[0].to_frame()
    for column in columns[1:]:
        joined = joined.join(column.to_frame(), how="outer", shuffle_method=SHUFFLE)
    return joined
