"""Observation dates: the cut-off that keeps the performance window out of every feature."""

from __future__ import annotations

import pandas as pd


def observation_dates(tables: dict[str, pd.DataFrame]) -> pd.Series:
    """Each user's observation date: from the labels file, else the latest history date."""
    users = tables["users"]["user_id"]
    if "labels" in tables:
        dates = tables["labels"].set_index("user_id")["observation_date"]
        fallback = dates.max()
    else:
        dates = pd.Series(dtype="datetime64[ns]")
        fallback = max(
            pd.to_datetime(tables[name][column]).max()
            for name, column in (
                ("repayments", "due_date"),
                ("bills", "month"),
                ("balances", "month"),
                ("payments", "date"),
            )
            if name in tables
        )
    observed = pd.to_datetime(users.map(dates)).fillna(fallback)
    return pd.Series(
        observed.to_numpy(), index=pd.Index(users, name="user_id"), name="observation_date"
    )


def before_observation(
    frame: pd.DataFrame, date_column: str, observed: pd.Series, user_column: str = "user_id"
) -> pd.DataFrame:
    """Rows dated on or before their user's observation date."""
    cutoff = frame[user_column].map(observed)
    return frame[pd.to_datetime(frame[date_column]) <= cutoff]
