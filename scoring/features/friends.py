"""Friends' character: what a user's friends look like on the tabular factors.

| column | meaning | range |
|---|---|---|
| friends_mean_<feature> | mean of <feature> over friends who have it | as the feature |
| friends_thin_file_share | share of friends with no repayment history | 0–1 |
| friends_past_default_share | share of friends 90+ days late before the as-of date | 0–1 |
| friends_prev_score_mean | mean of friends' own-file scores in the previous run | ~350–950 |
| friends_prev_score_min | lowest own-file score among friends in the previous run | ~350–950 |

The means and shares use history only (never the outcome labels), so they
cannot leak. The previous-score columns come from the model of the previous
run (trained on outcomes known then). They use each friend's *own-file* score,
its score without the interpersonal relationships points (``score -
f_relationships``), which depends on that model and the friend's own records
only: a user's features never feed back into themselves through a friend's
score, and no label reaches them through a friend's exposure features. Both
columns are NaN until a model has scored the graph once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from creditgraph.graph.network import FriendGraph

# Tabular features whose friends' mean is informative (the other families' columns).
FRIEND_AVERAGED = (
    "on_time_share", "max_days_late", "shortfall_ratio", "bill_late_share",
    "balance_mean", "products_held", "account_age_days", "real_name_verified",
)  # fmt: skip


def friend_features(
    graph: FriendGraph, tabular: pd.DataFrame, previous_scores: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Neighbour aggregates of ``tabular`` (indexed by user id) over the friendship graph.

    ``previous_scores`` (indexed by user id, with ``score`` and ``f_relationships``)
    is the latest written scoring run, when there is one.
    """
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
    own_file = np.full(graph.n, np.nan)
    if previous_scores is not None:
        previous = previous_scores.reindex(graph.ids)
        own_file = (previous["score"] - previous["f_relationships"]).to_numpy(dtype=float)
    columns["friends_prev_score_mean"] = graph.neighbour_mean(own_file)
    columns["friends_prev_score_min"] = graph.neighbour_min(own_file)
    return graph.frame(columns)
