"""Observation dates: the cut-off that keeps the performance window out of every feature."""

from __future__ import annotations

import pandas as pd

from creditgraph.graph.membership import mapped

# Without labels, the latest date of these (table, column) pairs is everyone's observation date.
HISTORY_DATES = (("repayments", "due_date"), ("bills", "month"), ("balances", "month"),
                 ("payments", "date"))  # fmt: skip


def observation_dates(
    tables: dict[str, pd.DataFrame], fallback: pd.Timestamp | None = None
) -> pd.Series:
    """Each user's observation date: from the labels file, else :func:`fallback_date`.

    ``fallback`` is given when ``tables`` hold only some users' rows (one partition of a
    cluster run): it must be the whole data's, as :func:`fallback_date` computes it.
    """
    users = tables["users"]["user_id"]
    if "labels" in tables:
        dates = tables["labels"].set_index("user_id")["observation_date"]
    else:
        dates = pd.Series(dtype="datetime64[ns]")
    fallback = fallback_date(tables) if fallback is None else fallback
    observed = pd.to_datetime(pd.Series(mapped(users, dates), index=users.index)).fillna(fallback)
    return pd.Series(
        observed.to_numpy(), index=pd.Index(users, name="user_id"), name="observation_date"
    )


def fallback_date(tables: dict[str, pd.DataFrame]) -> pd.Timestamp:
    """The observation date of users without a label: the latest label's, else history's."""
    if "labels" in tables:
        return pd.Timestamp(tables["labels"]["observation_date"].max())
    return max(
        pd.to_datetime(tables[name][column]).max()
        for name, column in HISTORY_DATES
        if name in tables
    )


def before_observation(
    frame: pd.DataFrame, date_column: str, observed: pd.Series, user_column: str = "user_id"
) -> pd.DataFrame:
    """Rows dated on or before their user's observation date."""
    cutoff = mapped(frame[user_column], observed)  # NaT (never on or before) without a date
    return frame[pd.to_datetime(frame[date_column]).to_numpy() <= cutoff]
