"""Scores, five factors and reasons on a Dask cluster, chunk by chunk, the model sent once.

The model is one task of the graph, fetched once by each worker that scores a chunk;
each partition of the model inputs is one chunk of the single-machine run (the same
rows in the same order) and is scored by the same function, so the scores are
identical. What becomes
of a chunk's scores is decided on the worker (``finish``): kept there as a part of
the run (the driver then hears only how many rows), or sent back. When a worker
dies, the scheduler reruns its chunks elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TypeVar

import dask
import dask.dataframe as dd
import pandas as pd

from creditgraph.scoring.model import CreditModel

if TYPE_CHECKING:
    from distributed import Client

# (model, model inputs of some users, scored_at) -> scores, factors, reasons of those users
Scorer = Callable[[CreditModel, pd.DataFrame, pd.Timestamp], pd.DataFrame]
T = TypeVar("T")
# (chunk number, its scores, its model inputs) -> what the driver gets back; runs on a worker
Finish = Callable[[int, pd.DataFrame, pd.DataFrame], T]


def as_chunks(inputs: pd.DataFrame, chunk_size: int) -> dd.DataFrame:
    """Model inputs held by the driver as partitions of ``chunk_size`` rows, in order."""
    # Dask would turn strings (the user ids) into Arrow strings: the scores must come back
    # exactly as one machine computes them, dtypes included.
    with dask.config.set({"dataframe.convert-string": False}):
        return dd.from_pandas(inputs, chunksize=chunk_size, sort=False)


def returned(_chunk: int, scores: pd.DataFrame, _inputs: pd.DataFrame) -> pd.DataFrame:
    """A :data:`Finish` that sends the chunk's scores back to the driver."""
    return scores


def scored_chunks(
    client: Client, model: CreditModel, chunks: dd.DataFrame, score: Scorer,
    finish: Finish[T], *, scored_at: pd.Timestamp, skip: frozenset[int] = frozenset(),
) -> Iterator[tuple[int, T]]:  # fmt: skip
    """(chunk number, ``finish``'s result) as chunks are scored, for every partition of
    ``chunks`` (chunk ``i``: partition ``i``) not in ``skip``."""
    from distributed import as_completed

    # The model is a task of the graph, not scattered data: a worker that dies holding it
    # loses nothing, the scheduler computes it again (a scattered model cannot be).
    shared = dask.delayed(model, name=f"credit-model-{model.model_id}", traverse=False)
    parts = chunks.to_delayed()
    wanted = [i for i in range(len(parts)) if i not in skip]
    work = dask.delayed(_score_chunk)
    futures = client.compute([work(parts[i], i, shared, scored_at, score, finish)
                              for i in wanted])  # fmt: skip
    number = {future.key: i for future, i in zip(futures, wanted, strict=True)}
    for future, result in as_completed(futures, with_results=True):
        yield number[future.key], result


def chunk_digests(
    client: Client, chunks: dd.DataFrame, digest: Callable[[pd.DataFrame], str]
) -> list[str]:
    """``digest`` of every chunk, computed where the chunk is (the driver gets strings)."""
    work = dask.delayed(digest)
    digests: list[str] = client.gather(client.compute([work(p) for p in chunks.to_delayed()]))
    return digests


def _score_chunk(
    inputs: pd.DataFrame, chunk: int, model: CreditModel, scored_at: pd.Timestamp,
    score: Scorer, finish: Finish[T],
) -> T:  # fmt: skip
    return finish(chunk, score(model, inputs, scored_at), inputs)
