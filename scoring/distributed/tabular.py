"""Tabular families on user partitions: each partition holds its users' history rows.

Every history table is moved to the partition of its user (a Dask shuffle on
``user_id`` into the same user ranges), then :func:`scoring.features.tabular_features`
itself runs on each partition: the per-user code is the single-machine code.
"""

from __future__ import annotations

from collections.abc import Sequence

import dask.dataframe as dd
import pandas as pd

from creditgraph.scoring.features import observation_dates, tabular_features

# The history tables the tabular families read, one row per user or per user's event.
PER_USER_TABLES = ("users", "labels", "repayments", "bills", "balances", "payments",
                   "public_records")  # fmt: skip


def user_divisions(user_ids: pd.Series, partitions: int) -> tuple[str, ...]:
    """Boundaries of ``partitions`` ranges of sorted user ids, about equal in users."""
    ordered = pd.Series(user_ids.unique()).sort_values(ignore_index=True)
    partitions = max(1, min(partitions, len(ordered)))
    cuts = [len(ordered) * i // partitions for i in range(partitions)] + [len(ordered) - 1]
    return tuple(str(ordered.iloc[i]) for i in cuts)


def by_user(frame: pd.DataFrame | dd.DataFrame, divisions: Sequence[str],
            column: str = "user_id") -> dd.DataFrame:  # fmt: skip
    """``frame`` indexed by ``column`` and shuffled into the user ranges of ``divisions``."""
    if isinstance(frame, pd.DataFrame):
        frame = dd.from_pandas(frame, npartitions=len(divisions) - 1, sort=False)
    return frame.set_index(column, divisions=list(divisions), shuffle_method="tasks")


def partitioned_tables(
    tables: dict[str, pd.DataFrame], divisions: Sequence[str]
) -> dict[str, dd.DataFrame]:
    """The per-user history tables, each shuffled onto the same user partitions."""
    return {name: by_user(tables[name], divisions) for name in PER_USER_TABLES if name in tables}


def sample_rows(tables: dict[str, pd.DataFrame], users: int = 200) -> dict[str, pd.DataFrame]:
    """The rows of the first ``users`` users of every per-user table (to read dtypes from)."""
    chosen = tables["users"]["user_id"].iloc[:users]
    return {name: tables[name][tables[name]["user_id"].isin(chosen)]
            for name in PER_USER_TABLES if name in tables}  # fmt: skip


def tabular_on_partitions(
    parts: dict[str, dd.DataFrame], fallback: pd.Timestamp, sample: dict[str, pd.DataFrame]
) -> dd.DataFrame:
    """:func:`tabular_features` per user partition (``fallback``: the whole data's date).

    ``sample`` holds a few users' rows of every table: the columns and dtypes of the
    result are read from them (pandas cannot compute some families on no rows at all).
    """
    names = list(parts)

    def one(*frames: pd.DataFrame) -> pd.DataFrame:
        tables = {name: frame.reset_index() for name, frame in zip(names, frames, strict=True)}
        return tabular_features(tables, observation_dates(tables, fallback))

    meta = one(*(sample[name].set_index("user_id") for name in names)).iloc[:0]
    return dd.map_partitions(one, *(parts[name] for name in names), meta=meta,
                             align_dataframes=False)  # fmt: skip
