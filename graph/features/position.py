"""Position in the network: PageRank, component size, local clustering, k-core.

| column | meaning | range |
|---|---|---|
| pagerank_scaled | PageRank × n (1 = average node) | ≥ 0 |
| component_size | nodes in the user's connected component | ≥ 1 |
| clustering | share of a user's friend pairs who are friends (NaN below 2 friends) | 0–1 |
| coreness | largest k such that the user is in the k-core | ≥ 0 |
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from creditgraph.graph.network import FriendGraph


def pagerank(
    adjacency: sp.csr_matrix,
    *,
    damping: float = 0.85,
    personalization: np.ndarray | None = None,
    tol: float = 1e-10,
    max_iter: int = 200,
    symmetric: bool = False,
) -> np.ndarray:
    """PageRank by power iteration (row = source), networkx's conventions.

    ``personalization`` may be one vector (n,) or several as columns (n, k):
    all k walks then share each sparse product. Dangling nodes spread their
    mass by the personalization (uniform by default), as networkx does.
    ``symmetric=True`` promises ``adjacency`` equals its transpose (an undirected
    graph, as :class:`FriendGraph` keeps it), which saves transposing it.
    """
    n = adjacency.shape[0]
    if n == 0:
        return np.zeros(0)
    if personalization is None:
        teleport = np.full((n, 1), 1.0 / n)
    else:
        teleport = np.asarray(personalization, dtype=float).reshape(n, -1)
        totals = teleport.sum(axis=0)
        teleport = np.divide(teleport, totals, out=np.zeros_like(teleport), where=totals > 0)
    out = np.asarray(adjacency.sum(axis=1)).ravel()
    inverse = np.divide(1.0, out, out=np.zeros(n), where=out > 0)
    if sp.issparse(adjacency) and adjacency.format == "csr" and adjacency.has_canonical_format:
        # transition[i, j] = adjacency[j, i] * inverse[j], each entry scaled once: the same
        # values and sorted layout as the general form below, without a sparse product
        # (and, when the matrix is its own transpose, without transposing it).
        structure = adjacency if symmetric else adjacency.T.tocsr()
        transition = sp.csr_matrix(
            (structure.data * inverse[structure.indices], structure.indices, structure.indptr),
            shape=(n, n),
        )
    else:
        transition = (sp.diags(inverse) @ adjacency).T.tocsr()
    dangling = out == 0
    any_dangling = bool(dangling.any())
    rest = (1 - damping) * teleport
    rank = teleport.copy()
    for _ in range(max_iter):  # iterations, not nodes: each step is one sparse product
        # new = damping * (transition @ rank + spill * teleport) + rest, in place (with no
        # dangling node the spill is 0 and adding 0.0 changes nothing).
        new = transition @ rank
        if any_dangling:
            new += rank[dangling].sum(axis=0) * teleport
        new *= damping
        new += rest
        np.subtract(new, rank, out=rank)  # the old rank is not needed any more
        converged = np.abs(rank, out=rank).sum(axis=0).max() < n * tol
        rank = new
        if converged:
            break
    return rank.ravel() if personalization is None or np.ndim(personalization) == 1 else rank


def position_features(graph: FriendGraph) -> pd.DataFrame:
    """Compute the position family for every node of ``graph``."""
    # igraph's components on the view built anyway for clustering/coreness: the same
    # partition as scipy's connected_components, which transposes the matrix first (~20x slower).
    labels = np.asarray(graph.igraph.connected_components().membership, dtype=np.int64)
    component_size = np.bincount(labels)[labels]
    clustering = graph.local_transitivity.copy()  # computed once, shared with rings
    coreness = np.asarray(graph.igraph.coreness(), dtype=float)
    return graph.frame(
        {
            "pagerank_scaled": pagerank(graph.adjacency, tol=1e-9, symmetric=True) * graph.n,
            "component_size": component_size.astype(float),
            "clustering": clustering,
            "coreness": coreness,
        }
    )
