"""Credit history: repayment of loans and credit cards before the observation date.

| column | meaning |
|---|---|
| thin_file | 1 when the user has no repayment record at all |
| accounts | distinct loan / card accounts |
| credit_months | months from the first instalment due to the observation date |
| on_time_share | share of instalments paid on time (days_late = 0) |
| max_days_late | longest delay on any instalment |
| late_30_count / late_90_count | instalments 30+ / 90+ days late |
| shortfall_ratio | 1 − paid / due over all instalments |
| months_since_delinquency | months since the last 30+ day delay (NaN if never) |
| past_default | 1 when any instalment was 90+ days late (used by friends' features) |
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from creditgraph.scoring.features.dates import before_observation


def credit_history_features(tables: dict[str, pd.DataFrame], observed: pd.Series) -> pd.DataFrame:
    index = observed.index
    if "repayments" not in tables:
        return pd.DataFrame({"thin_file": 1.0, "past_default": 0.0}, index=index)
    rows = before_observation(tables["repayments"], "due_date", observed)
    days = rows["days_late"].astype(float)
    due = pd.to_datetime(rows["due_date"])
    late30 = days >= 30
    frame = rows.assign(
        on_time=(days == 0).astype(float),
        late30=late30.astype(float),
        late90=(days >= 90).astype(float),
        days=days,
        due_date=due,
        delinquent_date=due.where(late30),
    )
    grouped = frame.groupby("user_id")
    paid, owed = grouped["amount_paid"].sum(), grouped["amount_due"].sum()
    out = pd.DataFrame(
        {
            "accounts": grouped["account_id"].nunique().astype(float),
            "on_time_share": grouped["on_time"].mean(),
            "max_days_late": grouped["days"].max(),
            "late_30_count": grouped["late30"].sum(),
            "late_90_count": grouped["late90"].sum(),
            "shortfall_ratio": (1 - paid / owed.where(owed > 0)).clip(lower=0),
            "first_due": grouped["due_date"].min(),
            "last_delinquency": grouped["delinquent_date"].max(),
        }
    ).reindex(index)
    month = np.timedelta64(30, "D") / np.timedelta64(1, "D")
    out["credit_months"] = (observed - out.pop("first_due")).dt.days / month
    out["months_since_delinquency"] = (observed - out.pop("last_delinquency")).dt.days / month
    out["thin_file"] = out["accounts"].isna().astype(float)
    out["past_default"] = (out["late_90_count"].fillna(0) > 0).astype(float)
    return out
