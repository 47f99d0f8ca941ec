"""Tabular families on user partitions: each partition holds its users' history rows.

The workers read every history table from its Parquet parts (``dd.read_parquet``);
each table is then moved to the partition of its user (a Dask shuffle on ``user_id``
into the same user ranges), and :func:`scoring.features.tabular_features` itself runs
on each partition: the per-user code is the single-machine code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import dask
import dask.dataframe as dd
import pandas as pd

from creditgraph.ingest.history import read_parts
from creditgraph.scoring.features import observation_dates, tabular_features

# The history tables the tabular families read, one row per user or per user's event.
PER_USER_TABLES = ("users", "labels", "repayments", "bills", "balances", "payments",
                   "public_records")  # fmt: skip
# A table's Parquet files (oldest part first; the table is their concatenation), by name.
TableParts = Mapping[str, Sequence[Path]]


def read_table(parts: Sequence[Path], columns: list[str] | None = None) -> dd.DataFrame:
    """One history table as a Dask frame: its parts (split by row group) read by the workers.

    Columns get the dtypes ``pd.read_parquet`` gives on one machine: Dask's own string
    conversion would make text ``string`` (missing = ``pd.NA``) where pandas reads ``str``
    (missing = NaN), and the families compare, fill and join on those columns.
    """
    with dask.config.set({"dataframe.convert-string": False}):  # fixed when the graph is built
        return dd.read_parquet([str(part) for part in parts], columns=columns)


def read_user_ids(parts: TableParts) -> pd.Series:
    """The users table's ``user_id`` column, in table order (read on the driver: one column)."""
    return read_parts(parts["users"], columns=["user_id"])["user_id"]


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


def partitioned_tables(parts: TableParts, divisions: Sequence[str]) -> dict[str, dd.DataFrame]:
    """The per-user history tables, read by the workers and shuffled onto the user partitions."""
    return {name: by_user(read_table(parts[name]), divisions)
            for name in PER_USER_TABLES if name in parts}  # fmt: skip


def sample_rows(
    parts: TableParts, user_ids: pd.Series, users: int = 200
) -> dict[str, pd.DataFrame]:
    """The rows of the ``users`` smallest user ids of every per-user table (to read dtypes from).

    Read here, on the driver, through the filter ``user_id in those ids``: Parquet
    row-group statistics skip every row group that cannot hold one, so when a part is in
    user order (the synthetic world's are) this reads about one row group per part; parts
    in another order are scanned, though only the matching rows are kept.
    """
    first = pd.Series(user_ids.unique()).sort_values(ignore_index=True).iloc[:users]
    return {name: read_parts(parts[name], where=("user_id", first))
            for name in PER_USER_TABLES if name in parts}  # fmt: skip


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
