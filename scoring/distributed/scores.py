"""Scores, five factors and reasons on a Dask cluster, chunk by chunk, the model sent once.

The model is scattered to every worker once (``broadcast``); each partition of the
model inputs is one chunk of the single-machine run (the same rows in the same
order) and is scored by the same function, so the scores are identical. The inputs
travel inside the task graph, not as data held by one worker: when a worker dies,
the scheduler reruns its chunks elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import dask
import dask.dataframe as dd
import pandas as pd

from creditgraph.scoring.model import CreditModel

if TYPE_CHECKING:
    from distributed import Client

# (model, model inputs of some users, scored_at) -> scores, factors, reasons of those users
Scorer = Callable[[CreditModel, pd.DataFrame, pd.Timestamp], pd.DataFrame]


def scored_chunks(
    client: Client, model: CreditModel, inputs: pd.DataFrame, score: Scorer, *,
    chunk_size: int, scored_at: pd.Timestamp, skip: frozenset[int] = frozenset(),
) -> Iterator[tuple[int, pd.DataFrame]]:  # fmt: skip
    """(chunk number, its scores) as chunks finish, for every chunk not in ``skip``.

    Chunk ``i`` is ``inputs.iloc[i * chunk_size : (i + 1) * chunk_size]``.
    """
    from distributed import as_completed

    # Dask would turn strings (the user ids) into Arrow strings: the scores must come back
    # exactly as one machine computes them, dtypes included.
    with dask.config.set({"dataframe.convert-string": False}):
        chunks = dd.from_pandas(inputs, chunksize=chunk_size, sort=False)
    shared = client.scatter(model, broadcast=True, hash=False)
    meta = score(model, inputs.iloc[:1], scored_at).iloc[:0]
    scored = chunks.map_partitions(_score_partition, shared, scored_at, score, meta=meta,
                                   align_dataframes=False)  # fmt: skip
    parts = scored.to_delayed()
    wanted = [i for i in range(len(parts)) if i not in skip]
    futures = client.compute([parts[i] for i in wanted])
    number = {future.key: i for future, i in zip(futures, wanted, strict=True)}
    for future, frame in as_completed(futures, with_results=True):
        yield number[future.key], frame


def _score_partition(
    frame: pd.DataFrame, model: CreditModel, scored_at: pd.Timestamp, score: Scorer
) -> pd.DataFrame:
    return score(model, frame, scored_at)
