"""Ties: how many friends, how strong and how reciprocal the ties are, and p2p money flows.

| column | meaning | range |
|---|---|---|
| friend_count | number of friends | ≥ 0 |
| interaction_strength | interactions over all ties, both directions, last 12 months | ≥ 0 |
| reciprocity | share of ties where both sides started interactions (NaN with no friends) | 0–1 |
| tie_age_days | mean age of the user's friendships at the as-of date (NaN with no friends) | ≥ 0 |
| transfer_out_amount / transfer_in_amount | p2p money sent / received | ≥ 0 |
| transfer_counterparties | distinct people sent to or received from | ≥ 0 |
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from creditgraph.graph.algorithms import incident_totals, partner_counts
from creditgraph.graph.network import FriendGraph
from creditgraph.graph.store import EdgeArrays


def tie_features(
    graph: FriendGraph, friends: EdgeArrays, transfers: EdgeArrays | None, as_of: pd.Timestamp
) -> pd.DataFrame:
    """Compute the ties family; ``friends`` must carry since/src_interactions/dst_interactions."""
    n = graph.n
    src, dst = friends.src, friends.dst
    a = np.nan_to_num(friends.properties["src_interactions"].astype(float))
    b = np.nan_to_num(friends.properties["dst_interactions"].astype(float))
    mutual = ((a > 0) & (b > 0)).astype(float)
    ties = incident_totals(src, dst, n)
    since = pd.to_datetime(friends.properties["since"])
    age_days = np.asarray((as_of - since).days, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        reciprocity = incident_totals(src, dst, n, mutual) / ties
        tie_age = incident_totals(src, dst, n, age_days) / ties
    columns = {
        "friend_count": graph.degree,
        "interaction_strength": incident_totals(src, dst, n, a + b),
        "reciprocity": reciprocity,
        "tie_age_days": tie_age,
    }
    columns.update(_transfer_columns(transfers, n))
    return graph.frame(columns)


def _transfer_columns(transfers: EdgeArrays | None, n: int) -> dict[str, np.ndarray]:
    if transfers is None or len(transfers) == 0:
        zero = np.zeros(n)
        return {
            "transfer_out_amount": zero,
            "transfer_in_amount": zero,
            "transfer_counterparties": zero,
        }
    amount = np.nan_to_num(transfers.properties["amount"].astype(float))
    return {
        "transfer_out_amount": np.bincount(transfers.src, weights=amount, minlength=n),
        "transfer_in_amount": np.bincount(transfers.dst, weights=amount, minlength=n),
        "transfer_counterparties": partner_counts(transfers.src, transfers.dst, n),
    }
