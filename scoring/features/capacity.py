"""Fulfilment capacity: balances and financial products before the observation date.

| column | meaning |
|---|---|
| balance_mean / balance_min | mean and lowest month-end balance |
| balance_trend | mean of the last three months minus mean of the first three, over the mean |
| products_held | financial products held at the latest month |
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from creditgraph.scoring.features.dates import before_observation


def capacity_features(tables: dict[str, pd.DataFrame], observed: pd.Series) -> pd.DataFrame:
    if "balances" not in tables:
        return pd.DataFrame(index=observed.index)
    rows = before_observation(tables["balances"], "month", observed).sort_values(
        ["user_id", "month"], kind="stable"
    )
    grouped = rows.groupby("user_id")
    position = grouped.cumcount()
    from_end = grouped["month"].transform("size") - position - 1
    balance = rows["balance"].astype(float)
    first = balance.where(position < 3).groupby(rows["user_id"]).mean()
    last = balance.where(from_end < 3).groupby(rows["user_id"]).mean()
    mean = grouped["balance"].mean()
    out = pd.DataFrame({
        "balance_mean": mean,
        "balance_min": grouped["balance"].min(),
        "balance_trend": (last - first) / np.maximum(mean.abs(), 1.0),
        "products_held": grouped["products"].last().astype(float),
    })  # fmt: skip
    return out.reindex(observed.index)
