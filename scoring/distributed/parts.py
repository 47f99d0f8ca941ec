"""Frames kept as Parquet parts that the workers write and read themselves.

A features build on a cluster is written by the workers, one part per user range
(``part-NNNNN.parquet``, ``user_id`` a column, rows sorted by it); scoring reads the
parts back on the workers and cuts them into the chunks one machine scores
(``chunk_size`` users in user-id order), so no frame of every user passes through the
driver. The driver decides only where each chunk starts: it reads the ``user_id``
column.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import dask
import dask.dataframe as dd
import pandas as pd

from creditgraph.scoring.distributed.tabular import by_user


def write_partitions(frame: dd.DataFrame, directory: Path, name: Callable[[int], str]) -> None:
    """Each partition of ``frame`` (indexed by user id) written as one part in ``directory``
    (partition ``i`` as ``name(i)``) by the worker that computes it."""
    frame.reset_index().to_parquet(str(directory), write_index=False, name_function=name,
                                   write_metadata_file=False)  # fmt: skip


def chunk_divisions(user_ids: pd.Series, chunk_size: int) -> tuple[str, ...]:
    """Boundaries of consecutive chunks of ``chunk_size`` users in user-id order: chunk ``i``
    is ``sorted(user_ids)[i * chunk_size : (i + 1) * chunk_size]``, as one machine cuts them."""
    ordered = user_ids.sort_values(ignore_index=True)
    starts = list(range(0, len(ordered), chunk_size))
    return tuple(str(ordered.iloc[i]) for i in [*starts, len(ordered) - 1])


def read_partitions(
    parts: Sequence[Path], divisions: Sequence[str], *, sorted_ranges: bool
) -> dd.DataFrame:
    """Parts (``user_id`` a column) read by the workers, indexed by user id and cut at
    ``divisions``. ``sorted_ranges``: each part holds a sorted range of user ids (a
    cluster's build), so cutting is a repartition; otherwise the rows are shuffled."""
    files = [str(part) for part in parts]
    # As pd.read_parquet reads them (Dask's own string conversion would change the dtypes).
    with dask.config.set({"dataframe.convert-string": False}):
        if sorted_ranges:
            frame = dd.read_parquet(files, index="user_id", calculate_divisions=True)
            return frame.repartition(divisions=list(divisions))
        return by_user(dd.read_parquet(files), divisions)
