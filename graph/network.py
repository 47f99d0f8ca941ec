"""One undirected friendship graph built once from exported arrays and shared by every family.

The adjacency is a symmetric scipy CSR matrix (fast sparse products for
neighbour aggregates and PageRank); an igraph view of the same edges is made
lazily for the algorithms written in C (clustering, coreness, communities).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import igraph as ig
import numpy as np
import pandas as pd
import scipy.sparse as sp

from creditgraph.graph.store import EdgeArrays


@dataclass
class FriendGraph:
    """Undirected simple graph over ``ids`` with a symmetric 0/1 adjacency."""

    ids: pd.Index
    adjacency: sp.csr_matrix
    edges: np.ndarray = field(repr=False)  # (m, 2) unique undirected pairs, i < j

    @classmethod
    def from_arrays(cls, arrays: EdgeArrays) -> FriendGraph:
        """Symmetrise, drop self-loops and duplicate pairs."""
        n = len(arrays.source_ids)
        lo = np.minimum(arrays.src, arrays.dst)
        hi = np.maximum(arrays.src, arrays.dst)
        keep = lo != hi
        pairs = distinct_pairs(lo[keep], hi[keep])
        rows = np.concatenate([pairs[:, 0], pairs[:, 1]])
        cols = np.concatenate([pairs[:, 1], pairs[:, 0]])
        adjacency = sp.csr_matrix(
            (np.ones(len(rows), dtype=np.float64), (rows, cols)), shape=(n, n)
        )
        return cls(arrays.source_ids, adjacency, pairs)

    @property
    def n(self) -> int:
        return self.adjacency.shape[0]

    @cached_property
    def degree(self) -> np.ndarray:
        return np.asarray(self.adjacency.sum(axis=1)).ravel()

    @cached_property
    def igraph(self) -> ig.Graph:
        # Two plain lists zipped into pairs convert ~3x faster than the (m, 2) array
        # (which igraph reads row by row); same edges in the same order.
        edges = zip(self.edges[:, 0].tolist(), self.edges[:, 1].tolist(), strict=True)
        return ig.Graph(n=self.n, edges=edges, directed=False)

    @cached_property
    def local_transitivity(self) -> np.ndarray:
        """Local clustering coefficient per node, NaN below 2 friends (computed once, shared)."""
        return np.asarray(self.igraph.transitivity_local_undirected(mode="nan"), dtype=float)

    def neighbour_mean(self, values: np.ndarray) -> np.ndarray:
        """Mean of each column of ``values`` over a node's neighbours, ignoring missing values.

        Returns NaN where a node has no neighbour with a value.
        """
        values = np.asarray(values, dtype=np.float64)
        single = values.ndim == 1
        values = values.reshape(len(values), -1)
        known = ~np.isnan(values)
        total = self.adjacency @ np.where(known, values, 0.0)
        count = self.adjacency @ known.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        return mean.ravel() if single else mean

    def neighbour_min(self, values: np.ndarray) -> np.ndarray:
        """Smallest of ``values`` (1-D) over a node's neighbours, ignoring missing values.

        Returns NaN where a node has no neighbour with a value.
        """
        csr = self.adjacency
        gathered = np.asarray(values, dtype=np.float64)[csr.indices]
        gathered[np.isnan(gathered)] = np.inf
        lowest = np.full(self.n, np.inf)
        rows = np.flatnonzero(np.diff(csr.indptr) > 0)
        if len(rows):
            lowest[rows] = np.minimum.reduceat(gathered, csr.indptr[rows])
        lowest[np.isinf(lowest)] = np.nan
        return lowest

    def frame(self, columns: dict[str, np.ndarray]) -> pd.DataFrame:
        """Columns aligned with ``ids`` as a DataFrame indexed by id."""
        return pd.DataFrame(columns, index=self.ids)


def distinct_pairs(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``np.unique(np.stack([lo, hi], axis=1), axis=0)`` for non-negative integer pairs.

    Same rows in the same (lexicographic) order and dtype, via one sort of
    int64 keys ``lo * base + hi``: several times faster than ``np.unique`` with
    ``axis=0`` (a sort of void records) at millions of pairs.
    """
    dtype = np.result_type(lo, hi)
    if len(lo) == 0:
        return np.zeros((0, 2), dtype=dtype)
    base = int(max(lo.max(), hi.max())) + 1
    key = np.sort(lo.astype(np.int64) * base + hi.astype(np.int64))
    key = key[np.concatenate([[True], key[1:] != key[:-1]])]
    return np.stack([key // base, key % base], axis=1).astype(dtype, copy=False)
