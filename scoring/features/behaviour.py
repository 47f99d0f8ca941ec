"""Behaviour and preference: spending with merchants and paying bills.

| column | meaning |
|---|---|
| payment_count / payment_amount | merchant payments and their total, before observation |
| merchant_diversity | distinct merchants paid |
| bill_late_share | share of bills paid late |
| bill_mean_days_late | mean delay over bills |
| bill_kinds | distinct kinds of utility bill in the user's name |
"""

from __future__ import annotations

import pandas as pd

from creditgraph.scoring.features.dates import before_observation


def behaviour_features(tables: dict[str, pd.DataFrame], observed: pd.Series) -> pd.DataFrame:
    parts = []
    if "payments" in tables:
        paid = before_observation(tables["payments"], "date", observed).groupby("user_id")
        parts.append(pd.DataFrame({
            "payment_count": paid.size().astype(float),
            "payment_amount": paid["amount"].sum(),
            "merchant_diversity": paid["merchant_id"].nunique().astype(float),
        }))  # fmt: skip
    if "bills" in tables:
        bills = before_observation(tables["bills"], "month", observed)
        days = bills["days_late"].astype(float)
        grouped = bills.assign(late=(days > 0).astype(float), days=days).groupby("user_id")
        parts.append(pd.DataFrame({
            "bill_late_share": grouped["late"].mean(),
            "bill_mean_days_late": grouped["days"].mean(),
            "bill_kinds": grouped["kind"].nunique().astype(float),
        }))  # fmt: skip
    out = (
        pd.concat(parts, axis=1).reindex(observed.index)
        if parts
        else pd.DataFrame(index=observed.index)
    )
    # No payment record means zero payments (a fact), unlike bills where it means unknown.
    for column in ("payment_count", "payment_amount", "merchant_diversity"):
        if column in out:
            out[column] = out[column].fillna(0.0)
    return out
