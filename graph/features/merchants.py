"""Merchants: who a user's merchants serve, and for owners, who their customers are.

| column | meaning | range |
|---|---|---|
| merchant_customer_on_time_share | on-time share of other customers of merchants paid | 0–1 |
| owned_customer_count | distinct customers of the merchants a user owns (0 for non-owners) | ≥ 0 |
| owned_customer_on_time_share | owners: mean on-time share of their customers | 0–1 |
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from creditgraph.graph.network import FriendGraph


def bipartite(src: np.ndarray, dst: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """A 0/1 users × merchants matrix from relationship arrays."""
    matrix = sp.csr_matrix((np.ones(len(src)), (src, dst)), shape=shape)
    matrix.data[:] = 1.0
    return matrix


def merchant_features(
    graph: FriendGraph, pays: sp.csr_matrix, owns: sp.csr_matrix, on_time_share: np.ndarray
) -> pd.DataFrame:
    """``on_time_share`` is aligned with ``graph.ids`` (NaN for thin-file users)."""
    known = ~np.isnan(on_time_share)
    value = np.where(known, on_time_share, 0.0)
    merchant_sum, merchant_known = pays.T @ value, pays.T @ known.astype(float)
    # Leave the user out of their own merchants' averages.
    paid_sum = pays @ merchant_sum - (pays.sum(axis=1).A1 * value)
    paid_known = pays @ merchant_known - (pays.sum(axis=1).A1 * known)
    customers = pays.T @ np.ones(graph.n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return graph.frame({
            "merchant_customer_on_time_share": np.where(paid_known > 0, paid_sum / paid_known,
                                                        np.nan),
            "owned_customer_count": owns @ customers,
            "owned_customer_on_time_share": np.where(
                owns @ merchant_known > 0, (owns @ merchant_sum) / (owns @ merchant_known), np.nan
            ),
        })  # fmt: skip
