"""Friends' character: what a user's friends look like on the tabular factors.

| column | meaning | range |
|---|---|---|
| friends_mean_<feature> | mean of <feature> over friends who have it | as the feature |
| friends_thin_file_share | share of friends with no repayment history | 0–1 |
| friends_past_default_share | share of friends 90+ days late before the as-of date | 0–1 |

These use history only (never the outcome labels), so they cannot leak.
"""

from __future__ import annotations

import pandas as pd

from graph.network import FriendGraph

# Tabular features whose friends' mean is informative (names from scoring.features).
FRIEND_AVERAGED = (
    "on_time_share", "max_days_late", "shortfall_ratio", "bill_late_share",
    "balance_mean", "products_held", "account_age_days", "real_name_verified",
)  # fmt: skip


def friend_features(graph: FriendGraph, tabular: pd.DataFrame) -> pd.DataFrame:
    """Neighbour aggregates of ``tabular`` (indexed by user id) over the friendship graph."""
    aligned = tabular.reindex(graph.ids)
    present = [c for c in FRIEND_AVERAGED if c in aligned.columns]
    means = graph.neighbour_mean(aligned[present].to_numpy(dtype=float))
    columns = {f"friends_mean_{c}": means[:, i] for i, c in enumerate(present)}
    for flag, name in (
        ("thin_file", "friends_thin_file_share"),
        ("past_default", "friends_past_default_share"),
    ):
        if flag in aligned:
            columns[name] = graph.neighbour_mean(aligned[flag].to_numpy(dtype=float))
    return graph.frame(columns)
