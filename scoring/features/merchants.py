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

from creditgraph.graph.algorithms import co_member_mean, member_mean, member_totals
from creditgraph.graph.network import FriendGraph


def merchant_features(
    graph: FriendGraph, pays: sp.csr_matrix, owns: sp.csr_matrix, on_time_share: np.ndarray
) -> pd.DataFrame:
    """``pays``/``owns`` are users × merchants (0/1); ``on_time_share`` is aligned with
    ``graph.ids`` (NaN for thin-file users)."""
    return graph.frame({
        # Leave the user out of their own merchants' averages.
        "merchant_customer_on_time_share": co_member_mean(pays, on_time_share),
        "owned_customer_count": member_totals(owns, pays, np.ones(graph.n)),
        "owned_customer_on_time_share": member_mean(owns, pays, on_time_share),
    })  # fmt: skip
