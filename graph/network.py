"""The relationships exported once as arrays, and the one undirected graph built from them.

:class:`GraphData` reads every relationship type the analyses use from any
store once (integer arrays, see :class:`graph.store.EdgeArrays`), turns the
user–merchant ones into 0/1 incidence matrices (:func:`incidence`) and builds
one :class:`FriendGraph` from the friendships. :class:`FriendGraph` keeps a
symmetric scipy CSR adjacency (fast sparse products for neighbour aggregation
and PageRank) and, lazily, an igraph view of the same edges for the algorithms
written in C (see :mod:`graph.algorithms`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import igraph as ig
import numpy as np
import pandas as pd
import scipy.sparse as sp

from creditgraph.graph.store import EdgeArrays, GraphStore


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
        """Local clustering coefficient per node, NaN below 2 neighbours (computed once, shared)."""
        return np.asarray(self.igraph.transitivity_local_undirected(mode="nan"), dtype=float)

    def neighbour_sum(self, values: np.ndarray) -> np.ndarray:
        """Sum of ``values`` (one column, or several as (n, k)) over each node's neighbours."""
        return self.adjacency @ values

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


@dataclass
class GraphData:
    """Every relationship the analyses read, as arrays, plus the friendship graph.

    ``pays`` and ``owns`` are users × merchants incidence matrices (1 where
    the user paid / owns the merchant); ``devices`` (USES: user → device) and
    ``transfers`` (TRANSFER, with ``amount``) stay as edge arrays.
    """

    friends: EdgeArrays
    transfers: EdgeArrays
    devices: EdgeArrays
    pays: sp.csr_matrix
    owns: sp.csr_matrix
    graph: FriendGraph

    @classmethod
    def export(cls, store: GraphStore) -> GraphData:
        friends = store.export_edges("FRIEND", ("since", "src_interactions", "dst_interactions"))
        pays = store.export_edges("PAYS")
        owns = store.export_edges("OWNS")
        shape = (len(pays.source_ids), len(pays.target_ids))
        return cls(
            friends=friends,
            transfers=store.export_edges("TRANSFER", ("amount",)),
            devices=store.export_edges("USES"),
            pays=incidence(pays.src, pays.dst, shape),
            owns=incidence(owns.src, owns.dst, shape),
            graph=FriendGraph.from_arrays(friends),
        )


def incidence(src: np.ndarray, dst: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """A 0/1 rows × columns matrix from relationship arrays (repeated pairs count once)."""
    matrix = sp.csr_matrix((np.ones(len(src)), (src, dst)), shape=shape)
    matrix.data[:] = 1.0
    return matrix


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
